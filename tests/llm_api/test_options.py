"""The typed LLM-API options: shape, round trips, per-version key checks and bad input."""

from __future__ import annotations

import pytest
import yaml
from pydantic import ValidationError

from trtllm_oci.llm_api.facts import UnknownLlmApiOptionError, UnknownLlmApiVersionError
from trtllm_oci.llm_api.options import (
    CudaGraphOptions,
    KvCacheOptions,
    LlmApiOptions,
    MoeOptions,
    SchedulerOptions,
    render_options,
)


def _full() -> LlmApiOptions:
    return LlmApiOptions(
        tensor_parallel_size=4,
        pipeline_parallel_size=2,
        moe_expert_parallel_size=2,
        max_batch_size=128,
        max_num_tokens=8192,
        max_seq_len=4096,
        dtype="bfloat16",
        trust_remote_code=True,
        enable_chunked_prefill=True,
        guided_decoding_backend="xgrammar",
        kv_cache_config=KvCacheOptions(free_gpu_memory_fraction=0.85, enable_block_reuse=False, dtype="fp8"),
        cuda_graph_config=CudaGraphOptions(batch_sizes=[1, 2, 4, 8], enable_padding=True),
        moe_config=MoeOptions(backend="CUTLASS"),
        scheduler_config=SchedulerOptions(capacity_scheduler_policy="MAX_UTILIZATION"),
        extra={"attn_backend": "TRTLLM", "print_iter_log": True},
    )


def test_renders_in_the_llm_api_shape():
    assert render_options(_full(), "1.2.1") == {
        "tensor_parallel_size": 4,
        "pipeline_parallel_size": 2,
        "moe_expert_parallel_size": 2,
        "max_batch_size": 128,
        "max_num_tokens": 8192,
        "max_seq_len": 4096,
        "dtype": "bfloat16",
        "trust_remote_code": True,
        "enable_chunked_prefill": True,
        "guided_decoding_backend": "xgrammar",
        "kv_cache_config": {"free_gpu_memory_fraction": 0.85, "enable_block_reuse": False, "dtype": "fp8"},
        "cuda_graph_config": {"batch_sizes": [1, 2, 4, 8], "enable_padding": True},
        "moe_config": {"backend": "CUTLASS"},
        "scheduler_config": {"capacity_scheduler_policy": "MAX_UTILIZATION"},
        "attn_backend": "TRTLLM",
        "print_iter_log": True,
    }


def test_defaults_render_only_parallelism():
    assert render_options(LlmApiOptions(), "1.2.1") == {
        "tensor_parallel_size": 1,
        "pipeline_parallel_size": 1,
    }


def test_disabled_cuda_graphs_render_null():
    rendered = render_options(LlmApiOptions(cuda_graph_config=CudaGraphOptions(enabled=False)), "1.2.1")
    assert rendered["cuda_graph_config"] is None


def test_round_trips_through_json_and_yaml():
    options = _full()
    assert LlmApiOptions.model_validate_json(options.model_dump_json()) == options
    rendered = render_options(options, "1.2.1")
    assert yaml.safe_load(yaml.safe_dump(rendered)) == rendered


def test_unknown_typed_field_is_refused():
    with pytest.raises(ValidationError, match="tp_size"):
        LlmApiOptions.model_validate({"tp_size": 2})
    with pytest.raises(ValidationError, match="free_gpu_mem_fraction"):
        KvCacheOptions.model_validate({"free_gpu_mem_fraction": 0.5})


def test_extra_option_the_version_lacks_names_key_version_and_close_matches():
    options = LlmApiOptions(extra={"enable_chunked_context": True})
    with pytest.raises(UnknownLlmApiOptionError) as caught:
        render_options(options, "1.2.1")
    assert caught.value.key == "enable_chunked_context" and caught.value.version == "1.2.1"
    assert "enable_chunked_prefill" in caught.value.suggestions
    assert "'enable_chunked_context' is not accepted by TensorRT-LLM 1.2.1" in str(caught.value)


def test_extra_nested_key_is_checked_too():
    options = LlmApiOptions(extra={"torch_compile_config": {"enable_fulgraph": True}})
    with pytest.raises(UnknownLlmApiOptionError) as caught:
        render_options(options, "1.2.1")
    assert caught.value.key == "torch_compile_config.enable_fulgraph"
    assert caught.value.suggestions[0] == "torch_compile_config.enable_fullgraph"


def test_a_renamed_option_fails_at_render_with_the_new_spelling(renamed_option):
    with pytest.raises(UnknownLlmApiOptionError) as caught:
        render_options(LlmApiOptions(enable_chunked_prefill=True), "1.2.1")
    assert caught.value.key == "enable_chunked_prefill"
    assert caught.value.suggestions == ["enable_chunked_context"]


def test_extra_may_not_shadow_a_typed_field():
    with pytest.raises(ValidationError, match=r"extra sets \['tensor_parallel_size'\]"):
        LlmApiOptions(extra={"tensor_parallel_size": 2})


def test_expert_parallel_must_divide_tensor_parallel():
    with pytest.raises(
        ValidationError, match=r"moe_expert_parallel_size=3 must divide tensor_parallel_size=4"
    ):
        LlmApiOptions(tensor_parallel_size=4, moe_expert_parallel_size=3)
    assert LlmApiOptions(tensor_parallel_size=4, pipeline_parallel_size=2).world_size == 8


@pytest.mark.parametrize(
    "bad", [{"tensor_parallel_size": 0}, {"kv_cache_config": {"free_gpu_memory_fraction": 1.5}}]
)
def test_out_of_range_values_are_refused(bad):
    with pytest.raises(ValidationError):
        LlmApiOptions.model_validate(bad)


def test_unknown_version_is_refused():
    with pytest.raises(UnknownLlmApiVersionError, match="0.14.0"):
        render_options(LlmApiOptions(), "0.14.0")
