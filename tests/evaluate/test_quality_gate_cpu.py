"""The whole quality gate on CPU, for real: the tiny model (source) against its ModelOpt FP8 checkpoint and a
deliberately broken copy, each served by the CPU OpenAI smoke server and scored by lm-eval's local-completions.

Not TensorRT-LLM: the smoke server dequantizes the FP8 weights and computes in float32, so what is measured
here is the FP8 weight rounding, not FP8 kernels.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.evaluate.task_sets import QA_PROMPTS, greedy_answers, write_task_set
from trtllm_oci.backends import backend_for
from trtllm_oci.checkpoint.modelopt_ptq import (
    TINY_CALIBRATION_TEXTS,
    CalibrationTexts,
    KvCacheQuant,
    PtqMethod,
    PtqRequest,
    run_ptq,
)
from trtllm_oci.evaluate.endpoint import check_prompt_logprobs
from trtllm_oci.evaluate.gate import QualityGateFailedError
from trtllm_oci.hub.snapshot import use_local_model
from trtllm_oci.release.evaluate import QUALITY_JSON, QUALITY_MD, prepare_evaluation, run_quality_gate
from trtllm_oci.release.serving import free_port, pytorch_serving_options
from trtllm_oci.report import ReleaseReport, report_markdown
from trtllm_oci.serving.openai_server import OpenAIServerSpec, choose_openai_server, start_openai_server
from trtllm_oci.settings import Settings
from trtllm_oci.spec import ReleaseSpec, parse_spec
from trtllm_oci.tiny_model import make_tiny_llama

SERVED = "tiny"
LIMITS = {"word_perplexity": 0.05, "bits_per_byte": 0.05, "exact_match": 0.25}
BROKEN_SCALE = 4.0


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("quality")


@pytest.fixture(scope="module")
def source(root) -> Path:
    return make_tiny_llama(root / "tiny")


@pytest.fixture(scope="module")
def fp8(source, root) -> Path:
    request = PtqRequest(model_dir=source, output_dir=root / "tiny-fp8", method=PtqMethod.FP8,
                         kv_cache=KvCacheQuant.NONE, calibration=CalibrationTexts(texts=TINY_CALIBRATION_TEXTS),
                         device="cpu", calib_seq_len=64, batch_size=4)
    return run_ptq(request).output_dir


@pytest.fixture(scope="module")
def broken(fp8, root) -> Path:
    """The FP8 checkpoint with every weight scale multiplied: each dequantized linear weight is 4x too large."""
    from safetensors.torch import load_file, save_file

    out = root / "tiny-fp8-broken"
    shutil.copytree(fp8, out)
    tensors = load_file(str(out / "model.safetensors"))
    scaled = [name for name in tensors if name.endswith(".weight_scale")]
    assert scaled  # the export has per-tensor weight scales to break
    for name in scaled:
        tensors[name] = tensors[name] * BROKEN_SCALE
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    return out


@pytest.fixture(scope="module")
def source_server(source, root):
    spec = OpenAIServerSpec(checkpoint_dir=source, served_model_name=SERVED, port=free_port(), startup_timeout_s=240)
    with start_openai_server(spec, choice=choose_openai_server("cpu-smoke"), log_path=root / "source.log") as server:
        yield server


@pytest.fixture(scope="module")
def task_set(source_server, source, root) -> Path:
    answers = greedy_answers(source_server.base_url, SERVED, source)
    return write_task_set(root / "task-set", answers)


@pytest.fixture(scope="module")
def settings(root) -> Settings:
    return Settings(home=root / "home", cache=root / "home" / "engines")


@pytest.fixture(scope="module")
def spec(source, task_set) -> ReleaseSpec:
    return parse_spec({
        "name": "tiny-fp8-gate", "model": {"local_dir": str(source)}, "quantization": {"method": "fp8"},
        "serving": {"backend": "pytorch", "served_model_name": SERVED},
        "evaluation": {"task_set": {"local_dir": str(task_set)}, "tasks": ["tiny_ppl", "tiny_qa"],
                       "max_drop": LIMITS, "on_fail": "fail"},
    })


@pytest.fixture(scope="module")
def prepared(spec, settings):
    return prepare_evaluation(spec, settings, token=None)


def serving_for(checkpoint: Path, spec: ReleaseSpec, source: Path, out: Path):
    """The release's serving configuration for `checkpoint`, as the assemble stage writes it."""
    return backend_for("pytorch").write_serving_config(checkpoint, use_local_model(source), out,
                                                        pytorch_serving_options(spec))


@pytest.fixture(scope="module")
def fp8_gate(spec, prepared, fp8, source, settings, root):
    lines: list[str] = []
    serving = serving_for(fp8, spec, source, root / "release-fp8" / "repository")
    verdict = run_quality_gate(spec, prepared, serving, use_local_model(source), settings, lines.append,
                               root / "release-fp8")
    return verdict, lines


@pytest.fixture(scope="module")
def broken_gate(fp8_gate, spec, prepared, broken, source, settings, root):
    lines: list[str] = []
    serving = serving_for(broken, spec, source, root / "release-broken" / "repository")
    verdict = run_quality_gate(spec, prepared, serving, use_local_model(source), settings, lines.append,
                               root / "release-broken")
    return verdict, lines


def row(verdict, task: str, metric: str):
    return next(r for r in verdict.rows if (r.task, r.metric) == (task, metric))


def test_the_smoke_server_returns_prompt_logprobs_as_lm_eval_reads_them(source_server):
    check_prompt_logprobs(f"{source_server.base_url}/v1/completions", SERVED, ["tiny_ppl"], "smoke server")


def test_the_task_set_is_checked_with_its_metrics_and_directions(prepared):
    by_name = {t.name: t for t in prepared.tasks}
    assert by_name["tiny_ppl"].output_type == "loglikelihood_rolling" and by_name["tiny_ppl"].docs == 4
    assert by_name["tiny_ppl"].higher_is_better == {"word_perplexity": False, "byte_perplexity": False,
                                                    "bits_per_byte": False}
    assert by_name["tiny_qa"].higher_is_better == {"exact_match": True}
    assert by_name["tiny_qa"].docs == len(QA_PROMPTS)
    assert prepared.reads_prompt_logprobs == ["tiny_ppl"] and prepared.harness.startswith("lm-eval 0.4.")


def test_fp8_passes_the_gate_against_its_source(fp8_gate, root):
    verdict, lines = fp8_gate
    assert verdict.passed and verdict.status == "passed", verdict.message()
    qa = row(verdict, "tiny_qa", "exact_match")
    assert qa.source == 1.0  # the answers are the source's own
    assert 0.75 <= qa.candidate <= 1.0 and qa.drop == pytest.approx(1.0 - qa.candidate)
    ppl = row(verdict, "tiny_ppl", "word_perplexity")
    assert ppl.source > 1 and ppl.candidate > 1 and ppl.source != ppl.candidate  # FP8 moved it, a little
    assert abs(ppl.drop) < LIMITS["word_perplexity"] and ppl.limit == LIMITS["word_perplexity"]
    assert ppl.drop == pytest.approx((ppl.candidate - ppl.source) / ppl.source)  # lower is better
    assert row(verdict, "tiny_ppl", "byte_perplexity").limit is None  # reported, not gated
    assert not verdict.baseline_reused and any("measuring the source" in line for line in lines)
    assert "CPU OpenAI smoke server" in verdict.source and "CPU OpenAI smoke server" in verdict.candidate
    written = json.loads((root / "release-fp8" / QUALITY_JSON).read_text())
    assert written["verdict"] == "passed" and len(written["metrics"]) == len(verdict.rows)
    assert "| tiny_qa | exact_match |" in (root / "release-fp8" / QUALITY_MD).read_text()


def test_a_broken_checkpoint_fails_naming_metric_drop_and_limit(broken_gate):
    verdict, lines = broken_gate
    assert not verdict.passed and verdict.status == "failed"
    qa = row(verdict, "tiny_qa", "exact_match")
    assert qa.source == 1.0 and qa.candidate < 0.75 and not qa.passed
    failure = next(f for f in verdict.failures if "exact_match" in f)
    assert f"dropped {qa.drop:.2%}" in failure and "limit of 25.00%" in failure and "tiny_qa" in failure
    error = QualityGateFailedError(verdict)
    assert "exact_match" in str(error) and f"{qa.drop:.2%}" in str(error) and "25.00%" in str(error)
    assert "before deploying" in str(error)


def test_the_second_gate_reuses_the_baseline_without_serving_the_source(fp8_gate, broken_gate, settings):
    fp8_verdict, _ = fp8_gate
    verdict, lines = broken_gate
    assert verdict.baseline_reused and verdict.baseline_key == fp8_verdict.baseline_key
    assert not any("measuring the source" in line for line in lines)
    assert sum(1 for line in lines if "serving" in line and "tiny" in line and "with" in line) == 1
    assert row(verdict, "tiny_qa", "exact_match").source == row(fp8_verdict, "tiny_qa", "exact_match").source
    assert (settings.baselines_dir / f"{verdict.baseline_key}.json").is_file()


def test_the_report_has_the_quality_table(broken_gate, root):
    verdict, _ = broken_gate
    report = ReleaseReport(release_id="tiny-fp8-gate", model="tiny", model_commit="local-x", plan=None,
                           engine_key="k" * 64, engine_uri="file:///x", engine_cache_hit=False, backend="pytorch",
                           repository=root, quality=verdict.event_payload())
    markdown = report_markdown(report)
    assert "## Quality gate" in markdown and "Verdict: **failed**" in markdown
    assert "| tiny_qa | exact_match | 1 |" in markdown and "**FAIL**" in markdown
    assert "source scores from the baseline cache" in markdown
