"""The evaluate stage in the release flow: the whole local release with a gate (ModelOpt FP8 PTQ on this CPU,
the CPU OpenAI smoke server, lm-eval), and what the stage's task does with a failed verdict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.evaluate.task_sets import greedy_answers, write_task_set
from trtllm_oci.checkpoint.modelopt_ptq import TINY_CALIBRATION_TEXTS
from trtllm_oci.evaluate.gate import QualityGateFailedError, compare
from trtllm_oci.evaluate.harness import HarnessScores
from trtllm_oci.release.serving import free_port
from trtllm_oci.serving.openai_server import OpenAIServerSpec, choose_openai_server, start_openai_server
from trtllm_oci.spec import parse_spec

pytestmark = pytest.mark.prefect

SERVED = "tiny"


def gate_spec(source: Path, task_set: Path, calibration: Path, on_fail: str):
    return parse_spec({
        "name": f"tiny-fp8-gated-{on_fail}", "model": {"local_dir": str(source)},
        "quantization": {"method": "fp8", "calib_size": len(TINY_CALIBRATION_TEXTS),
                         "calib_dataset": {"local_dir": str(calibration)}},
        "serving": {"backend": "pytorch", "served_model_name": SERVED},
        # Within the tiny model's 512-token context: a longer max_seq_len is refused by the plan's checks.
        "build": {"max_seq_len": 512, "max_input_len": 256},
        "benchmark": {"enabled": False},
        "evaluation": {"task_set": {"local_dir": str(task_set)}, "tasks": ["tiny_ppl", "tiny_qa"],
                       "max_drop": {"word_perplexity": 0.05, "exact_match": 0.25}, "on_fail": on_fail},
    })


def test_the_release_flow_gates_a_quantized_release(prefect_api: str, tiny_model_dir: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from trtllm_oci.build.host import BuildHost
    from trtllm_oci.flows.release import release

    monkeypatch.setenv("TRTLLM_OCI_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TRTLLM_OCI_CACHE", str(tmp_path / "home" / "engines"))
    calibration = tmp_path / "calibration"
    calibration.mkdir()
    (calibration / "texts.txt").write_text("\n".join(TINY_CALIBRATION_TEXTS) + "\n", encoding="utf-8")
    server_spec = OpenAIServerSpec(checkpoint_dir=tiny_model_dir, served_model_name=SERVED, port=free_port(),
                                   startup_timeout_s=240)
    with start_openai_server(server_spec, choice=choose_openai_server("cpu-smoke")) as server:
        task_set = write_task_set(tmp_path / "task-set", greedy_answers(server.base_url, SERVED, tiny_model_dir))
    out = tmp_path / "out"

    # A local runner without a GPU quantizes on this CPU (the smoke path of the pytorch backend).
    report = release(gate_spec(tiny_model_dir, task_set, calibration, "fail"), out_dir=str(out),
                     build_host=BuildHost(runner="local"))

    assert report.quality is not None and report.quality["verdict"] == "passed", report.quality
    assert {(m["task"], m["metric"]) for m in report.quality["metrics"]} >= {("tiny_ppl", "word_perplexity"),
                                                                             ("tiny_qa", "exact_match")}
    markdown = (out / "report.md").read_text()
    assert "## Quality gate" in markdown and "Verdict: **passed**" in markdown and "| tiny_qa | exact_match |" in markdown
    assert json.loads((out / "quality.json").read_text())["verdict"] == "passed"
    assert list((tmp_path / "home" / "baselines").glob("*.json")), "the source's scores were not kept"


def verdict_with(candidate_em: float, on_fail: str):
    def scores(em: float) -> HarnessScores:
        return HarnessScores(harness="lm-eval 0.4.13; gate protocol 1", scores={"qa": {"exact_match": em}},
                             higher_is_better={"qa": {"exact_match": True}}, samples={"qa": 8})

    return compare(scores(1.0), scores(candidate_em), {"exact_match": 0.1}, on_fail, source_label="source",
                   candidate_label="candidate", baseline_key="k", baseline_reused=True)


@pytest.mark.parametrize("on_fail", ["fail", "mark"])
def test_the_evaluate_task_stops_a_failed_release_or_marks_it(prefect_api: str, tiny_model_dir: Path,
                                                              tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              on_fail: str) -> None:
    from prefect import flow

    import trtllm_oci.tasks.evaluate as evaluate_tasks

    failed = verdict_with(0.5, on_fail)
    # The domain stage below the task is tested for real in test_quality_gate_cpu.py; here only the task's
    # handling of its verdict.
    monkeypatch.setattr(evaluate_tasks, "run_quality_gate", lambda *args, **kwargs: failed)
    spec = gate_spec(tiny_model_dir, tmp_path / "tasks", tmp_path / "calibration", on_fail)

    @flow
    def gate_only():
        return evaluate_tasks.evaluate_quality_task(spec, None, None, None, tmp_path)

    state = gate_only(return_state=True)
    if on_fail == "fail":
        assert state.is_failed()
        with pytest.raises(QualityGateFailedError, match=r"qa exact_match dropped 50\.00% .*limit of 10\.00%"):
            state.result()
    else:
        assert state.is_completed()
        assert state.result().status == "failed (marked)"
