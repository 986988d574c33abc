"""The llmapi Triton repository: tensors equal the version's interface, model.yaml keys valid for it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from trtllm_oci.llm_api.facts import (
    LlmApiError,
    UnknownLlmApiOptionError,
    UnknownLlmApiVersionError,
    llm_api_facts,
)
from trtllm_oci.llm_api.options import KvCacheOptions, LlmApiOptions
from trtllm_oci.llm_api.triton_repo import (
    LlmapiRepoOptions,
    llmapi_model_yaml,
    upstream_code_files,
    write_llmapi_repository,
)

MODEL = "/opt/ds/model/deployed_model/release/checkpoint"
OPTIONS = LlmApiOptions(tensor_parallel_size=2, kv_cache_config=KvCacheOptions(free_gpu_memory_fraction=0.8))


def _write(tmp_path: Path, repo_options: LlmapiRepoOptions | None = None):
    return write_llmapi_repository(tmp_path / "repository", MODEL, OPTIONS, "1.2.1", repo_options)


def _tensors(specs) -> list[tuple]:
    return [
        (t.name, mc.DataType.Name(t.data_type), list(t.dims), getattr(t, "optional", False)) for t in specs
    ]


def test_config_tensors_equal_the_extracted_interface(tmp_path):
    repo = _write(tmp_path)
    config = text_format.Parse(repo.config_pbtxt.read_text(), mc.ModelConfig())
    llmapi = llm_api_facts("1.2.1").llmapi
    assert _tensors(config.input) == [(t.name, t.data_type, t.dims, t.optional) for t in llmapi.inputs]
    assert _tensors(config.output) == [(t.name, t.data_type, t.dims, False) for t in llmapi.outputs]
    assert (config.name, config.backend) == ("tensorrt_llm", "python")
    assert config.instance_group[0].kind == mc.ModelInstanceGroup.KIND_CPU


@pytest.mark.parametrize("decoupled", [False, True])
def test_config_and_model_yaml_agree_on_batching_and_decoupling(tmp_path, decoupled):
    repo = _write(tmp_path, LlmapiRepoOptions(decoupled=decoupled, triton_max_batch_size=0))
    config = text_format.Parse(repo.config_pbtxt.read_text(), mc.ModelConfig())
    triton_config = yaml.safe_load(repo.model_yaml.read_text())["triton_config"]
    assert triton_config == {
        "max_batch_size": config.max_batch_size,
        "decoupled": config.model_transaction_policy.decoupled,
    }
    assert config.model_transaction_policy.decoupled is decoupled


def test_model_yaml_keys_are_valid_for_the_version(tmp_path):
    repo = _write(tmp_path, LlmapiRepoOptions(cancellation_check_period_ms=50))
    model_yaml = yaml.safe_load(repo.model_yaml.read_text())
    facts = llm_api_facts("1.2.1")
    triton_config = model_yaml.pop("triton_config")
    facts.check_option_keys(model_yaml)
    assert set(triton_config) <= set(facts.llmapi.triton_config_keys)
    assert model_yaml == {
        "model": MODEL,
        "backend": "pytorch",
        "tensor_parallel_size": 2,
        "pipeline_parallel_size": 1,
        "kv_cache_config": {"free_gpu_memory_fraction": 0.8},
    }
    assert set(facts.llmapi.model_yaml_template) - {
        "triton_config.max_batch_size",
        "triton_config.decoupled",
    } <= set(model_yaml)


def test_repository_holds_no_upstream_code(tmp_path):
    repo = _write(tmp_path)
    written = sorted(str(p.relative_to(repo.root)) for p in repo.root.rglob("*") if p.is_file())
    assert written == ["tensorrt_llm/1/model.yaml", "tensorrt_llm/config.pbtxt"]
    assert repo.upstream_code == ["model.py", "helpers.py"] == upstream_code_files("1.2.1")
    assert repo.image_model_dir == "/app/all_models/llmapi/tensorrt_llm"


def test_existing_output_is_kept_unless_overwrite(tmp_path):
    _write(tmp_path)
    with pytest.raises(LlmApiError, match="already exists"):
        _write(tmp_path)
    repo = write_llmapi_repository(tmp_path / "repository", MODEL, LlmApiOptions(), "1.2.1", overwrite=True)
    assert "kv_cache_config" not in yaml.safe_load(repo.model_yaml.read_text())


def test_bad_options_leave_nothing_behind(tmp_path):
    with pytest.raises(UnknownLlmApiOptionError, match="enable_chunked_context"):
        write_llmapi_repository(
            tmp_path / "repository", MODEL, LlmApiOptions(extra={"enable_chunked_context": True}), "1.2.1"
        )
    assert list(tmp_path.iterdir()) == []


def test_a_renamed_option_fails_in_model_yaml(renamed_option):
    with pytest.raises(UnknownLlmApiOptionError, match="enable_chunked_context"):
        llmapi_model_yaml(MODEL, LlmApiOptions(enable_chunked_prefill=True), "1.2.1", LlmapiRepoOptions())


def test_unknown_version_for_the_pytorch_path(tmp_path):
    with pytest.raises(UnknownLlmApiVersionError, match="0.14.0"):
        write_llmapi_repository(tmp_path / "repository", MODEL, OPTIONS, "0.14.0")
