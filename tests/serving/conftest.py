"""Fixtures for the serving tests: a tiny model, a test-only model repository, one server.

The config.pbtxt writer here is deliberately minimal and test-only: the shipped configs come from
trtllm_oci.repo. It declares the tensors of the newest tensorrtllm_backend interface that these
tests exercise, with the routing of NVIDIA/TensorRT-LLM:triton_backend/all_models/
inflight_batcher_llm/ensemble/config.pbtxt.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from trtllm_oci.repo.assemble import python_model_files
from trtllm_oci.serving import LocalTriton
from trtllm_oci.tiny_model import make_tiny_llama

MODELS_SRC = Path(__file__).resolve().parents[2] / "trtllm_oci" / "serving" / "models"
MAX_BATCH = 8


def load_model_module(path: Path, module_name: str, *extra_paths: Path):
    """Import a shipped model file the way the Python backend's stub does: with the backend's
    triton_python_backend_utils (and `extra_paths`, e.g. the shared modules' dir) on sys.path."""
    import importlib.util
    import sys

    from trtllm_oci.serving.triton_install import find_triton

    paths = [str(find_triton(search_order=("wheel",)).backend_dir / "python"), *map(str, extra_paths)]
    sys.path[:0] = paths
    try:
        spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        for entry in paths:
            sys.path.remove(entry)


def _tensor(name: str, dtype: str, dims: str, optional: bool = False, reshape: bool = False) -> str:
    extra = "\n    optional: true" if optional else ""
    if reshape:
        extra += "\n    reshape: { shape: [ ] }"
    return f'  {{\n    name: "{name}"\n    data_type: {dtype}\n    dims: [ {dims} ]{extra}\n  }}'


def _params(params: dict[str, str]) -> str:
    return "\n".join(
        f'parameters {{\n  key: "{k}"\n  value: {{ string_value: "{v}" }}\n}}' for k, v in params.items()
    )


def _config(name: str, header: str, inputs: list[str], outputs: list[str], tail: str = "") -> str:
    joined_inputs = ",\n".join(inputs)
    joined_outputs = ",\n".join(outputs)
    return (
        f'name: "{name}"\n{header}\nmax_batch_size: {MAX_BATCH}\n'
        f"input [\n{joined_inputs}\n]\noutput [\n{joined_outputs}\n]\n{tail}\n"
    )


def preprocessing_config(tokenizer_dir: str) -> str:
    inputs = [
        _tensor("QUERY", "TYPE_STRING", "1"),
        _tensor("REQUEST_OUTPUT_LEN", "TYPE_INT32", "1"),
        _tensor("BAD_WORDS_DICT", "TYPE_STRING", "-1", optional=True),
        _tensor("STOP_WORDS_DICT", "TYPE_STRING", "-1", optional=True),
        _tensor("END_ID", "TYPE_INT32", "1", optional=True),
        _tensor("PAD_ID", "TYPE_INT32", "1", optional=True),
    ]
    outputs = [
        _tensor("INPUT_ID", "TYPE_INT32", "-1"),
        _tensor("REQUEST_INPUT_LEN", "TYPE_INT32", "1"),
        _tensor("BAD_WORDS_IDS", "TYPE_INT32", "2, -1"),
        _tensor("STOP_WORDS_IDS", "TYPE_INT32", "2, -1"),
        _tensor("REQUEST_OUTPUT_LEN", "TYPE_INT32", "-1"),
        _tensor("OUT_END_ID", "TYPE_INT32", "1"),
        _tensor("OUT_PAD_ID", "TYPE_INT32", "1"),
    ]
    tail = _params({"tokenizer_dir": tokenizer_dir, "add_special_tokens": "${add_special_tokens}"})
    tail += "\ninstance_group [ { count: 1 kind: KIND_CPU } ]"
    return _config("preprocessing", 'backend: "python"', inputs, outputs, tail)


def postprocessing_config(tokenizer_dir: str) -> str:
    inputs = [_tensor("TOKENS_BATCH", "TYPE_INT32", "-1, -1"), _tensor("SEQUENCE_LENGTH", "TYPE_INT32", "-1")]
    outputs = [_tensor("OUTPUT", "TYPE_STRING", "-1")]
    tail = _params({"tokenizer_dir": tokenizer_dir, "skip_special_tokens": "true"})
    tail += "\ninstance_group [ { count: 1 kind: KIND_CPU } ]"
    return _config("postprocessing", 'backend: "python"', inputs, outputs, tail)


def reference_config(model_dir: str, decoupled: bool) -> str:
    inputs = [
        _tensor("input_ids", "TYPE_INT32", "-1"),
        _tensor("input_lengths", "TYPE_INT32", "1", reshape=True),
        _tensor("request_output_len", "TYPE_INT32", "1", reshape=True),
        _tensor("end_id", "TYPE_INT32", "1", optional=True, reshape=True),
        _tensor("pad_id", "TYPE_INT32", "1", optional=True, reshape=True),
        _tensor("stop_words_list", "TYPE_INT32", "2, -1", optional=True),
        _tensor("bad_words_list", "TYPE_INT32", "2, -1", optional=True),
        _tensor("runtime_top_k", "TYPE_INT32", "1", optional=True, reshape=True),
        _tensor("runtime_top_p", "TYPE_FP32", "1", optional=True, reshape=True),
        _tensor("temperature", "TYPE_FP32", "1", optional=True, reshape=True),
        _tensor("min_tokens", "TYPE_INT32", "1", optional=True, reshape=True),
        _tensor("seed", "TYPE_UINT64", "1", optional=True, reshape=True),
        _tensor("return_log_probs", "TYPE_BOOL", "1", optional=True, reshape=True),
        _tensor("exclude_input_in_output", "TYPE_BOOL", "1", optional=True, reshape=True),
        _tensor("streaming", "TYPE_BOOL", "1", optional=True, reshape=True),
    ]
    outputs = [
        _tensor("output_ids", "TYPE_INT32", "-1, -1"),
        _tensor("sequence_length", "TYPE_INT32", "-1"),
        _tensor("cum_log_probs", "TYPE_FP32", "-1"),
        _tensor("output_log_probs", "TYPE_FP32", "-1, -1"),
    ]
    header = f'backend: "python"\nmodel_transaction_policy {{ decoupled: {str(decoupled).lower()} }}'
    tail = _params({
        "model_dir": model_dir,
        "exclude_input_in_output": "true",
        "reference_backend": "CPU reference backend (not TensorRT-LLM; for smoke tests without NVIDIA GPUs)",
    })
    tail += "\ninstance_group [ { count: 1 kind: KIND_CPU } ]"
    return _config("tensorrt_llm", header, inputs, outputs, tail)


def _map(kind: str, key: str, value: str) -> str:
    return f'      {kind} {{ key: "{key}" value: "{value}" }}'


def ensemble_config() -> str:
    inputs = [
        _tensor("text_input", "TYPE_STRING", "1"),
        _tensor("max_tokens", "TYPE_INT32", "1"),
        _tensor("bad_words", "TYPE_STRING", "-1", optional=True),
        _tensor("stop_words", "TYPE_STRING", "-1", optional=True),
        _tensor("end_id", "TYPE_INT32", "1", optional=True),
        _tensor("pad_id", "TYPE_INT32", "1", optional=True),
        _tensor("top_k", "TYPE_INT32", "1", optional=True),
        _tensor("top_p", "TYPE_FP32", "1", optional=True),
        _tensor("temperature", "TYPE_FP32", "1", optional=True),
        _tensor("min_tokens", "TYPE_INT32", "1", optional=True),
        _tensor("seed", "TYPE_UINT64", "1", optional=True),
        _tensor("return_log_probs", "TYPE_BOOL", "1", optional=True),
        _tensor("exclude_input_in_output", "TYPE_BOOL", "1", optional=True),
        _tensor("stream", "TYPE_BOOL", "1", optional=True),
    ]
    outputs = [
        _tensor("text_output", "TYPE_STRING", "-1"),
        _tensor("cum_log_probs", "TYPE_FP32", "-1"),
        _tensor("output_log_probs", "TYPE_FP32", "-1, -1"),
    ]
    pre = [("QUERY", "text_input"), ("REQUEST_OUTPUT_LEN", "max_tokens"), ("BAD_WORDS_DICT", "bad_words"),
           ("STOP_WORDS_DICT", "stop_words"), ("END_ID", "end_id"), ("PAD_ID", "pad_id")]
    pre_out = [("INPUT_ID", "_INPUT_ID"), ("REQUEST_INPUT_LEN", "_REQUEST_INPUT_LEN"),
               ("REQUEST_OUTPUT_LEN", "_REQUEST_OUTPUT_LEN"), ("STOP_WORDS_IDS", "_STOP_WORDS_IDS"),
               ("BAD_WORDS_IDS", "_BAD_WORDS_IDS"), ("OUT_END_ID", "_PREPROCESSOR_END_ID"),
               ("OUT_PAD_ID", "_PREPROCESSOR_PAD_ID")]
    llm_in = [("input_ids", "_INPUT_ID"), ("input_lengths", "_REQUEST_INPUT_LEN"),
              ("request_output_len", "_REQUEST_OUTPUT_LEN"), ("end_id", "_PREPROCESSOR_END_ID"),
              ("pad_id", "_PREPROCESSOR_PAD_ID"), ("runtime_top_k", "top_k"), ("runtime_top_p", "top_p"),
              ("temperature", "temperature"), ("min_tokens", "min_tokens"), ("seed", "seed"),
              ("return_log_probs", "return_log_probs"), ("exclude_input_in_output", "exclude_input_in_output"),
              ("streaming", "stream"), ("stop_words_list", "_STOP_WORDS_IDS"), ("bad_words_list", "_BAD_WORDS_IDS")]
    llm_out = [("output_ids", "_TOKENS_BATCH"), ("sequence_length", "_SEQUENCE_LENGTH"),
               ("cum_log_probs", "cum_log_probs"), ("output_log_probs", "output_log_probs")]
    post = [("TOKENS_BATCH", "_TOKENS_BATCH"), ("SEQUENCE_LENGTH", "_SEQUENCE_LENGTH")]

    def step(model: str, ins, outs) -> str:
        lines = [_map("input_map", k, v) for k, v in ins] + [_map("output_map", k, v) for k, v in outs]
        return f'    {{\n      model_name: "{model}"\n      model_version: -1\n' + "\n".join(lines) + "\n    }"

    steps = ",\n".join([step("preprocessing", pre, pre_out), step("tensorrt_llm", llm_in, llm_out),
                        step("postprocessing", post, [("OUTPUT", "text_output")])])
    return _config("ensemble", 'platform: "ensemble"', inputs, outputs, f"ensemble_scheduling {{\n  step [\n{steps}\n  ]\n}}")


def write_repo(root: Path, model_dir: Path, tokenizer_dir: Path | None = None, decoupled: bool = True) -> Path:
    """Assemble preprocessing + reference tensorrt_llm + postprocessing + ensemble under root."""
    tokenizer_dir = tokenizer_dir or model_dir
    layout = {
        "preprocessing": (MODELS_SRC / "preprocessing" / "model.py", preprocessing_config(str(tokenizer_dir))),
        "postprocessing": (MODELS_SRC / "postprocessing" / "model.py", postprocessing_config(str(tokenizer_dir))),
        "tensorrt_llm": (MODELS_SRC / "tensorrt_llm_reference" / "model.py", reference_config(str(model_dir), decoupled)),
        "ensemble": (None, ensemble_config()),
    }
    for name, (source, config) in layout.items():
        version_dir = root / name / "1"
        version_dir.mkdir(parents=True, exist_ok=True)
        if source is not None:
            # The same files the assembler puts beside model.py (the modules the models share included).
            for module in python_model_files(source):
                shutil.copy2(module, version_dir / module.name)
        (root / name / "config.pbtxt").write_text(config)
    return root


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    return make_tiny_llama(tmp_path_factory.mktemp("tiny-llama"), seed=0)


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


@pytest.fixture(scope="session")
def model_repo(tmp_path_factory, tiny_model) -> Path:
    return write_repo(tmp_path_factory.mktemp("repo"), tiny_model)


@pytest.fixture(scope="session")
def server(model_repo, tmp_path_factory):
    log_file = tmp_path_factory.mktemp("logs") / "tritonserver.log"
    with LocalTriton(model_repo, ready_timeout_s=120, log_file=log_file) as running:
        yield running
