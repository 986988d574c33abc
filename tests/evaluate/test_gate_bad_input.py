"""Bad input to the quality gate: each a clear error before anything is served (spec load, or the
evaluation set's check right after the model download)."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest

from tests.evaluate.task_sets import write_task_set
from tests.standins.openai_server import OpenAIStandIn
from trtllm_oci.errors import InputError, SpecError
from trtllm_oci.evaluate import harness
from trtllm_oci.evaluate.endpoint import PromptLogprobsMissingError, check_prompt_logprobs
from trtllm_oci.evaluate.harness import HarnessMissingError, TaskSetLoadError, UnknownTaskError
from trtllm_oci.release import evaluate as release_evaluate
from trtllm_oci.release.evaluate import prepare_evaluation
from trtllm_oci.serving.openai_server import OpenAIServerKind, ServerChoice
from trtllm_oci.settings import Settings
from trtllm_oci.spec import parse_spec

SHA = "0123456789abcdef0123456789abcdef01234567"


def spec_with(evaluation: dict, **over) -> dict:
    base = {"model": {"local_dir": "/models/tiny"}, "quantization": {"method": "fp8"},
            "evaluation": {"task_set": {"local_dir": "/tasks"}, "tasks": ["tiny_qa"],
                           "max_drop": {"exact_match": 0.1}, **evaluation}}
    return {**base, **over}


@pytest.mark.parametrize("limit", [0, 0.0, -0.1, 1.5, 2])
def test_a_limit_outside_0_1_is_refused_at_load(limit):
    with pytest.raises(SpecError) as err:
        parse_spec(spec_with({"max_drop": {"exact_match": 0.1, "word_perplexity": limit}}))
    message = str(err.value)
    assert "evaluation.max_drop" in message and "word_perplexity" in message and "(0, 1]" in message
    assert "exact_match" not in message.split("word_perplexity")[0].split("max_drop")[1]  # only the bad one


def test_a_limit_of_exactly_1_is_allowed():
    assert parse_spec(spec_with({"max_drop": {"exact_match": 1}})).evaluation.max_drop == {"exact_match": 1}


def test_a_gate_on_a_release_without_quantization_is_refused():
    with pytest.raises(SpecError, match="no quantization .*set quantization.method"):
        parse_spec(spec_with({}, quantization={"method": "none"}))
    # A quantized KV cache alone is a quantization worth gating.
    assert parse_spec(spec_with({}, quantization={"kv_cache_dtype": "fp8"})).evaluation is not None


def test_a_gate_on_a_triton_served_release_is_refused():
    with pytest.raises(SpecError, match="OpenAI-compatible /v1/completions .*backend tensorrt"):
        parse_spec(spec_with({}, serving={"backend": "tensorrt"}, trtllm_version="1.2.1",
                             quantization={"method": "fp8"}))
    with pytest.raises(SpecError, match="frontend openai"):
        parse_spec(spec_with({}, serving={"backend": "pytorch", "frontend": "triton"}))


@pytest.mark.parametrize(("task_set", "fragment"), [
    ({"hf_dataset": "org/evals", "revision": "main"}, "commit sha (40 hex characters), got 'main'"),
    ({"hf_dataset": "org/evals"}, "got None"),
    ({"hf_dataset": "org/evals", "revision": SHA, "local_dir": "/tasks"}, "exactly one of local_dir or hf_dataset"),
    ({"local_dir": "/tasks", "revision": SHA}, "revision applies to hf_dataset only"),
    ({"hf_dataset": "not a repo", "revision": SHA}, "not a Hugging Face dataset id"),
])
def test_a_task_set_must_be_local_or_pinned(task_set, fragment):
    with pytest.raises(SpecError, match="evaluation.task_set") as err:
        parse_spec(spec_with({"task_set": task_set}))
    assert fragment in str(err.value)


def test_a_pinned_hub_task_set_and_repeated_tasks():
    spec = parse_spec(spec_with({"task_set": {"hf_dataset": "org/evals", "revision": SHA}}))
    assert spec.evaluation.task_set.origin == f"hf:org/evals@{SHA}"
    with pytest.raises(SpecError, match="evaluation.tasks: .*'tiny_qa'.* more than once"):
        parse_spec(spec_with({"tasks": ["tiny_qa", "tiny_qa"]}))


# ------------------------------------------------------------------ the evaluation set, checked before serving


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(home=tmp_path / "home", cache=tmp_path / "home" / "engines")


@pytest.fixture(autouse=True)
def no_serving(monkeypatch):
    """Nothing in this module may start a server: the checks come before serving."""
    def refuse(*args, **kwargs):
        raise AssertionError("a server was started before the evaluation set was checked")

    monkeypatch.setattr(release_evaluate, "serve_locally", refuse)


def local_spec(task_dir: Path, tasks=("tiny_ppl", "tiny_qa"), max_drop=None):
    return parse_spec(spec_with({"task_set": {"local_dir": str(task_dir)}, "tasks": list(tasks),
                                 "max_drop": max_drop or {"exact_match": 0.1, "word_perplexity": 0.05}}))


def test_a_task_the_harness_lacks_is_named_with_what_the_set_defines(tmp_path, settings):
    task_dir = write_task_set(tmp_path / "tasks")
    with pytest.raises(UnknownTaskError) as err:
        prepare_evaluation(local_spec(task_dir, tasks=("tiny_qa", "hellaswag")), settings, token=None)
    message = str(err.value)
    assert "['hellaswag']" in message and "defines: tiny_ppl, tiny_qa" in message and str(task_dir) in message
    assert isinstance(err.value, InputError)


def test_an_evaluation_set_whose_data_does_not_load(tmp_path, settings):
    task_dir = write_task_set(tmp_path / "tasks")
    (task_dir / "qa.jsonl").unlink()
    with pytest.raises(TaskSetLoadError) as err:
        prepare_evaluation(local_spec(task_dir), settings, token=None)
    assert "does not load tasks ['tiny_ppl', 'tiny_qa']" in str(err.value) and "qa.jsonl" in str(err.value)


def test_an_evaluation_set_that_is_not_a_task_set(tmp_path, settings):
    with pytest.raises(TaskSetLoadError, match="is not a directory"):
        prepare_evaluation(local_spec(tmp_path / "missing"), settings, token=None)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no tasks here")
    with pytest.raises(TaskSetLoadError, match="holds no task YAML"):
        prepare_evaluation(local_spec(empty), settings, token=None)


def test_a_limit_on_a_metric_no_task_reports(tmp_path, settings):
    task_dir = write_task_set(tmp_path / "tasks")
    with pytest.raises(InputError) as err:
        prepare_evaluation(local_spec(task_dir, max_drop={"exact_match": 0.1, "acc": 0.1}), settings, token=None)
    assert "['acc']" in str(err.value) and "exact_match" in str(err.value) and "word_perplexity" in str(err.value)


def test_log_likelihood_tasks_on_a_trtllm_serve_host_are_refused_before_serving(tmp_path, settings, monkeypatch):
    task_dir = write_task_set(tmp_path / "tasks")
    choice = ServerChoice(kind=OpenAIServerKind.TRTLLM_SERVE, label="trtllm-serve (TensorRT-LLM)", reason="test")
    monkeypatch.setattr(release_evaluate, "choose_openai_server", lambda *a, **k: choice)
    with pytest.raises(PromptLogprobsMissingError) as err:
        prepare_evaluation(local_spec(task_dir), settings, token=None)
    assert "['tiny_ppl']" in str(err.value) and "postprocess_handlers.py" in str(err.value)
    # generate_until tasks alone are fine there.
    prepared = prepare_evaluation(local_spec(task_dir, tasks=("tiny_qa",), max_drop={"exact_match": 0.1}),
                                  settings, token=None)
    assert prepared.task_names == ("tiny_qa",) and prepared.reads_prompt_logprobs == []


def test_without_the_harness_installed(tmp_path, settings, monkeypatch):
    task_dir = write_task_set(tmp_path / "tasks")
    real = importlib.metadata.version

    def version(name: str) -> str:
        if name == harness.HARNESS_DIST:
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(importlib.metadata, "version", version)
    with pytest.raises(HarnessMissingError, match=r"trtllm-oci\[eval\]"):
        prepare_evaluation(local_spec(task_dir), settings, token=None)


def test_an_endpoint_that_refuses_echo_logprobs_is_named():
    # The trtllm-serve stand-in follows openai_protocol.py@54cf7be0, whose completions reject logprobs.
    with OpenAIStandIn() as standin, pytest.raises(PromptLogprobsMissingError) as err:
        check_prompt_logprobs(f"{standin.url}/v1/completions", standin.served_model, ["tiny_ppl"],
                              "trtllm-serve stand-in")
    assert "refuses echo with logprobs (400" in str(err.value) and "generate_until" in str(err.value)
