"""The report every release run ends with: what was built, where, cache hits, endpoint, benchmark headline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field


class ReleaseReport(BaseModel):
    release_id: str
    model: str
    model_commit: str
    plan: str | None = Field(description="the planner's verdict in words, or None without a target shape")
    engine_key: str
    engine_uri: str
    engine_cache_hit: bool
    backend: str
    backend_description: str | None = None
    served_by: str | None = Field(default=None, description="what served the local benchmark, e.g. tritonserver")
    repository: Path
    image: str | None = None
    deployment_id: str | None = None
    endpoint: str | None = None
    benchmark: dict[str, Any] | None = None
    quality: dict[str, Any] | None = Field(
        default=None, description="the quality gate's verdict: verdict, harness, metrics rows (evaluate.gate)")
    result_files: dict[str, str] = Field(default_factory=dict)


def _fmt(value: Any) -> str:
    return f"{value:,.2f}" if isinstance(value, float) else str(value)


def report_markdown(report: ReleaseReport) -> str:
    if report.backend == "reference":
        backend = "CPU reference backend (PyTorch on CPU, **not TensorRT-LLM**; a smoke test of the pipeline)"
    else:
        backend = report.backend_description or "TensorRT-LLM"
    served_by = report.served_by or "local Triton"
    if "not TensorRT-LLM" in served_by:
        served_by = served_by.replace("not TensorRT-LLM", "**not TensorRT-LLM**")
    lines = [
        f"# Release {report.release_id}",
        "",
        "| | |",
        "|---|---|",
        f"| model | `{report.model}` (commit `{report.model_commit}`) |",
        f"| backend | {backend} |",
        f"| capacity plan | {report.plan or 'no target shape to plan against'} |",
        f"| artifact | `{report.engine_key[:16]}…` {'reused from the cache' if report.engine_cache_hit else 'built'} "
        f"at `{report.engine_uri}` |",
        f"| model repository | `{report.repository}` |",
        f"| serving image | `{report.image or 'none (local target)'}` |",
        f"| endpoint | {report.endpoint or f'{served_by} on this host (stopped after the benchmark)'} |",
    ]
    if report.deployment_id:
        lines.append(f"| model deployment | `{report.deployment_id}` |")
    if report.benchmark:
        lines += ["", "## Benchmark headline", "", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {_fmt(v)} |" for k, v in report.benchmark.items()]
    if report.quality:
        lines += ["", "## Quality gate", "", *_quality_lines(report.quality)]
    if report.result_files:
        lines += ["", "## Results", ""]
        lines += [f"- {name}: `{path}`" for name, path in report.result_files.items()]
    return "\n".join(lines) + "\n"


def _quality_lines(quality: dict[str, Any]) -> list[str]:
    reused = ", source scores from the baseline cache" if quality.get("baseline_reused") else ""
    lines = [f"Verdict: **{quality['verdict']}** ({quality['harness']}{reused})", "",
             "| task | metric | source | quantized | drop | limit | result |", "|---|---|---|---|---|---|---|"]
    for row in quality["metrics"]:
        limit = row["limit"]
        result = "—" if limit is None else ("pass" if row["passed"] else "**FAIL**")
        lines.append(f"| {row['task']} | {row['metric']} | {row['source']:.6g} | {row['candidate']:.6g} | "
                     f"{row['drop']:+.2%} | {'not gated' if limit is None else f'{limit:.2%}'} | {result} |")
    lines += [f"- {failure}" for failure in quality.get("failures", [])]
    return lines
