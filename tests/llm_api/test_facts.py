"""The per-version LLM-API facts: generated data agrees with its raw lists, lookups and key checks."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from trtllm_oci.llm_api.facts import (
    UnknownLlmApiOptionError,
    UnknownLlmApiVersionError,
    UnknownServeFlagError,
    llm_api_facts,
    llm_api_versions,
)
from trtllm_oci.versions import get_version

ROOT = Path(__file__).resolve().parents[2]


def _tool():
    spec = importlib.util.spec_from_file_location(
        "extract_llm_api_options", ROOT / "tools" / "extract_llm_api_options.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_llm_api_json_is_what_the_raw_lists_build():
    data = json.loads((ROOT / "trtllm_oci" / "data" / "llm_api.json").read_text())
    tool = _tool()
    for version in llm_api_versions():
        assert data["versions"][version] == tool.build_version(ROOT / "tests" / "data" / "llm_api" / version)


def test_every_llm_api_version_is_in_the_version_table_with_its_images():
    for version in llm_api_versions():
        entry = get_version(version)
        assert entry.pytorch is not None
        assert entry.pytorch.release_image == llm_api_facts(version).release_image
        assert entry.pytorch.release_image == f"nvcr.io/nvidia/tensorrt-llm/release:{version}"
    support = get_version("1.2.1").pytorch
    assert (support.llmapi_triton_images.first, support.llmapi_triton_images.last) == ("26.04", "26.07")
    assert get_version("1.2.1").engine_path is True
    assert get_version("0.14.0").pytorch is None


def test_1_2_1_declares_the_options_this_project_sets():
    facts = llm_api_facts("v1.2.1")
    fields = facts.llm_args.fields
    for name in (
        "tensor_parallel_size",
        "pipeline_parallel_size",
        "moe_expert_parallel_size",
        "max_batch_size",
        "max_num_tokens",
        "max_seq_len",
        "kv_cache_config",
        "cuda_graph_config",
        "enable_chunked_prefill",
        "guided_decoding_backend",
        "trust_remote_code",
        "dtype",
    ):
        assert name in fields, name
    assert fields["backend"].declared_in == "TorchLlmArgs" and fields["backend"].default == "'pytorch'"
    assert facts.llm_args.nested["kv_cache_config"] == "KvCacheConfig"
    kv = facts.option_models["KvCacheConfig"].fields
    assert {"free_gpu_memory_fraction", "enable_block_reuse", "dtype"} <= set(kv)
    assert kv["free_gpu_memory_fraction"].default == "0.9"
    assert facts.option_models["SchedulerConfig"].nested == {"dynamic_batch_config": "DynamicBatchConfig"}


def test_serve_flags_routes_and_sources_of_1_2_1():
    facts = llm_api_facts("1.2.1")
    assert facts.serve.flag_setting("tensor_parallel_size") == "--tp_size"
    assert (
        facts.serve.flag_setting("kv_cache_config.free_gpu_memory_fraction") == "--free_gpu_memory_fraction"
    )
    assert facts.serve.yaml_flag == "--extra_llm_api_options"
    assert "--served_model_name" not in facts.serve.names()
    routes = {(r.method, r.path) for r in facts.routes}
    assert {("POST", "/v1/completions"), ("POST", "/v1/chat/completions"), ("GET", "/v1/models")} <= routes
    assert {("GET", "/health"), ("GET", "/metrics")} <= routes
    assert facts.exact_release_source is False and facts.why_not_exact
    for source in facts.sources.values():
        assert source["repo"] == "NVIDIA/TensorRT-LLM" and source["evidence"]
        assert source["commit"] or source["index_file_id"]


def test_unknown_version_for_the_pytorch_path_names_the_known_ones():
    with pytest.raises(UnknownLlmApiVersionError, match=r"'0\.14\.0' has no LLM-API .*\['1\.2\.1'\]"):
        llm_api_facts("0.14.0")


def test_unknown_nested_key_names_path_version_and_close_match():
    facts = llm_api_facts("1.2.1")
    with pytest.raises(UnknownLlmApiOptionError) as caught:
        facts.check_option_keys({"kv_cache_config": {"free_gpu_mem_fraction": 0.5}})
    message = str(caught.value)
    assert "'kv_cache_config.free_gpu_mem_fraction'" in message and "1.2.1" in message
    assert caught.value.suggestions == ["kv_cache_config.free_gpu_memory_fraction"]


def test_unknown_flag_is_refused_with_close_match():
    with pytest.raises(UnknownServeFlagError, match=r"no --tp-size flag; did you mean --tp_size"):
        llm_api_facts("1.2.1").require_flag("--tp-size")
