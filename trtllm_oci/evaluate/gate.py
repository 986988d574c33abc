"""The verdict: the candidate's scores against the source's, each gated metric within its allowed drop.

A drop is relative to the source and signed so that positive is worse, whatever the metric's direction:
(source - candidate) / source for a metric where higher is better (exact_match, acc), (candidate - source) /
source where lower is better (word_perplexity, bits_per_byte). A source score of 0 leaves nothing to divide
by; the drop is then the absolute change (only bounded metrics such as exact_match reach 0).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from trtllm_oci.errors import ArtifactError, InputError
from trtllm_oci.evaluate.harness import HarnessScores, TaskInfo

OnFail = Literal["fail", "mark"]


class MetricComparison(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    task: str
    metric: str
    higher_is_better: bool
    source: float
    candidate: float
    drop: float = Field(description="Relative change toward worse (negative: the candidate scored better)")
    limit: float | None = Field(description="The allowed drop; None: reported, not gated")

    @property
    def passed(self) -> bool:
        return self.limit is None or self.drop <= self.limit

    def failure(self) -> str:
        arrow = "higher is better" if self.higher_is_better else "lower is better"
        return (f"{self.task} {self.metric} dropped {self.drop:.2%} (source {self.source:.6g}, quantized "
                f"{self.candidate:.6g}; {arrow}), above its limit of {self.limit:.2%}")


class QualityVerdict(BaseModel):
    """The gate's outcome: every compared metric, what failed, and what a failure does."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    passed: bool
    on_fail: OnFail
    rows: list[MetricComparison]
    harness: str
    source: str = Field(description="What was measured as the source, e.g. the model and its commit")
    candidate: str = Field(description="What was measured as the quantized release")
    baseline_key: str
    baseline_reused: bool = Field(description="The source's scores came from the baseline cache (not served)")

    @property
    def failures(self) -> list[str]:
        return [row.failure() for row in self.rows if not row.passed]

    @property
    def status(self) -> Literal["passed", "failed", "failed (marked)"]:
        if self.passed:
            return "passed"
        return "failed" if self.on_fail == "fail" else "failed (marked)"

    def message(self) -> str:
        if self.passed:
            gated = sum(1 for r in self.rows if r.limit is not None)
            return f"quality gate passed: {gated} gated metric(s) within their limits ({self.harness})"
        return "quality gate failed: " + "; ".join(self.failures)

    def event_payload(self) -> dict[str, object]:
        return {"verdict": self.status, "passed": self.passed, "on_fail": self.on_fail, "harness": self.harness,
                "baseline_key": self.baseline_key, "baseline_reused": self.baseline_reused,
                "failures": self.failures,
                "metrics": [{"task": r.task, "metric": r.metric, "source": r.source, "candidate": r.candidate,
                             "drop": r.drop, "limit": r.limit, "passed": r.passed} for r in self.rows]}


class QualityGateFailedError(ArtifactError):
    """The quantized artifact scored worse than its source by more than a limit allows."""

    def __init__(self, verdict: QualityVerdict) -> None:
        super().__init__(f"{verdict.message()}. The release stops before deploying it: quantize differently (another "
                         "method, more calibration data, an FP8 KV cache off), raise evaluation.max_drop for that "
                         "metric, or set evaluation.on_fail: mark to deploy it marked as failed")
        self.verdict = verdict


def relative_drop(source: float, candidate: float, higher_is_better: bool) -> float:
    worse = source - candidate if higher_is_better else candidate - source
    return worse / abs(source) if source != 0 else worse


def check_limits_cover_metrics(limits: dict[str, float], tasks: list[TaskInfo], field: str = "evaluation.max_drop") -> None:
    """Every limit names a metric some task reports; at least one limit (a gate that gates nothing is a typo)."""
    reported = sorted({m for t in tasks for m in t.higher_is_better})
    unknown = sorted(set(limits) - set(reported))
    if unknown:
        raise InputError(f"{field} names {unknown}, which no task of the set reports; the tasks report {reported}")
    if not limits:
        raise InputError(f"{field} is empty: give an allowed drop for at least one of {reported}")


def compare(source: HarnessScores, candidate: HarnessScores, limits: dict[str, float], on_fail: OnFail, *,
            source_label: str, candidate_label: str, baseline_key: str, baseline_reused: bool) -> QualityVerdict:
    """Each metric both runs scored, with its drop and limit (limits apply to every task reporting the metric)."""
    if source.harness != candidate.harness:
        raise ArtifactError(f"the baseline was measured with {source.harness!r} and the candidate with "
                            f"{candidate.harness!r}; scores of different harness versions are not compared")
    rows: list[MetricComparison] = []
    for task, metrics in candidate.scores.items():
        for metric, value in sorted(metrics.items()):
            if metric not in source.scores.get(task, {}):
                continue
            higher = candidate.higher_is_better.get(task, {}).get(metric, True)
            base = source.scores[task][metric]
            rows.append(MetricComparison(task=task, metric=metric, higher_is_better=higher, source=base,
                                         candidate=value, drop=relative_drop(base, value, higher),
                                         limit=limits.get(metric)))
    missing = sorted(set(limits) - {r.metric for r in rows})
    if missing:
        raise ArtifactError(f"the gate's metrics {missing} are missing from the scores (source has "
                            f"{source.scores}, candidate {candidate.scores}); the harness did not report them")
    return QualityVerdict(passed=all(r.passed for r in rows), on_fail=on_fail, rows=rows, harness=candidate.harness,
                          source=source_label, candidate=candidate_label, baseline_key=baseline_key,
                          baseline_reused=baseline_reused)


def verdict_markdown(verdict: QualityVerdict) -> str:
    """The quality table the release report shows beside the benchmark table."""
    lines = [f"Verdict: **{verdict.status}** ({verdict.harness}; source {verdict.source}"
             f"{', baseline from the cache' if verdict.baseline_reused else ''}; candidate {verdict.candidate})", "",
             "| task | metric | source | quantized | drop | limit | result |", "|---|---|---|---|---|---|---|"]
    for r in verdict.rows:
        limit = f"{r.limit:.2%}" if r.limit is not None else "not gated"
        result = "—" if r.limit is None else ("pass" if r.passed else "**FAIL**")
        lines.append(f"| {r.task} | {r.metric}{'' if r.higher_is_better else ' (lower is better)'} | {r.source:.6g} | "
                     f"{r.candidate:.6g} | {r.drop:+.2%} | {limit} | {result} |")
    return "\n".join(lines)
