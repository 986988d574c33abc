"""trtllm-serve argv: every flag in the version's list, each option in one place, short enough for OCI."""

from __future__ import annotations

import pytest
import yaml

from trtllm_oci.llm_api.facts import (
    UnknownLlmApiOptionError,
    UnknownLlmApiVersionError,
    UnknownServeFlagError,
    llm_api_facts,
)
from trtllm_oci.llm_api.options import CudaGraphOptions, KvCacheOptions, LlmApiOptions
from trtllm_oci.llm_api.serve_command import FLAG_KEYS, serve_command

MODEL = "/opt/ds/model/deployed_model/release-llama-3-1-8b-instruct-fp8/checkpoint"
CONFIG = "/tmp/trtllm-oci/llm_api_options.yaml"


def _options(**overrides) -> LlmApiOptions:
    base = dict(
        tensor_parallel_size=8,
        pipeline_parallel_size=2,
        moe_expert_parallel_size=4,
        max_batch_size=256,
        max_num_tokens=16384,
        max_seq_len=8192,
        trust_remote_code=True,
        enable_chunked_prefill=True,
        kv_cache_config=KvCacheOptions(free_gpu_memory_fraction=0.9, enable_block_reuse=True, dtype="fp8"),
        cuda_graph_config=CudaGraphOptions(max_batch_size=256, enable_padding=True),
    )
    return LlmApiOptions(**(base | overrides))


def _flags(argv: tuple[str, ...]) -> list[str]:
    return [a for a in argv if a.startswith("--")]


def test_argv_shape_and_values():
    command = serve_command(MODEL, _options(), "1.2.1", config_path=CONFIG, port=8080)
    assert command.argv == (
        "trtllm-serve", MODEL,
        "--host", "0.0.0.0", "--port", "8080", "--backend", "pytorch",
        "--tp_size", "8", "--pp_size", "2", "--ep_size", "4",
        "--max_batch_size", "256", "--max_num_tokens", "16384", "--max_seq_len", "8192",
        "--trust_remote_code",
        "--extra_llm_api_options", CONFIG,
    )  # fmt: skip


def test_every_flag_is_in_the_versions_serve_flags():
    names = llm_api_facts("1.2.1").serve.names()
    command = serve_command(MODEL, _options(), "1.2.1", config_path=CONFIG)
    assert set(_flags(command.argv)) <= names


def test_flag_carried_keys_are_not_repeated_in_the_yaml():
    # serve.py merges the YAML over the flags, so a key in both would silently take the YAML's value.
    command = serve_command(MODEL, _options(), "1.2.1", config_path=CONFIG)
    assert not set(command.config) & set(FLAG_KEYS)
    assert yaml.safe_load(command.config_yaml()) == {
        "enable_chunked_prefill": True,
        "kv_cache_config": {"free_gpu_memory_fraction": 0.9, "enable_block_reuse": True, "dtype": "fp8"},
        "cuda_graph_config": {"max_batch_size": 256, "enable_padding": True},
    }


def test_flags_and_yaml_together_carry_every_rendered_option():
    from trtllm_oci.llm_api.options import render_options

    options = _options()
    command = serve_command(MODEL, options, "1.2.1", config_path=CONFIG)
    carried = set(command.config) | {
        key for key in FLAG_KEYS if llm_api_facts("1.2.1").serve.flag_setting(key) in command.argv
    }
    assert carried == set(render_options(options, "1.2.1"))


def test_no_yaml_flag_when_nothing_is_left_for_it():
    command = serve_command(MODEL, LlmApiOptions(tensor_parallel_size=2), "1.2.1", config_path=CONFIG)
    assert (
        "--extra_llm_api_options" not in command.argv and command.config == {} and command.config_path is None
    )
    assert "--trust_remote_code" not in command.argv


def test_argv_stays_well_under_ocis_2048_byte_cmd_limit():
    command = serve_command(MODEL, _options(), "1.2.1", config_path=CONFIG, served_model_name=None)
    assert len(command.shell().encode()) < 512


def test_served_model_name_is_refused_on_1_2_1_with_the_fix():
    with pytest.raises(UnknownServeFlagError, match=r"no --served_model_name .*directory named 'llama'"):
        serve_command(MODEL, _options(), "1.2.1", config_path=CONFIG, served_model_name="llama")


def test_an_option_the_version_lacks_is_refused_before_any_argv():
    with pytest.raises(UnknownLlmApiOptionError, match="max_num_token"):
        serve_command(MODEL, LlmApiOptions(extra={"max_num_token": 4}), "1.2.1", config_path=CONFIG)


def test_a_renamed_option_fails_in_the_serve_command(renamed_option):
    with pytest.raises(UnknownLlmApiOptionError, match="enable_chunked_context"):
        serve_command(MODEL, _options(), "1.2.1", config_path=CONFIG)


def test_unknown_version_and_bad_port():
    with pytest.raises(UnknownLlmApiVersionError, match="0.12.0"):
        serve_command(MODEL, _options(), "0.12.0", config_path=CONFIG)
    with pytest.raises(ValueError, match="port=70000"):
        serve_command(MODEL, _options(), "1.2.1", config_path=CONFIG, port=70000)
