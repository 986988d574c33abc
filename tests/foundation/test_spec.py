"""Release spec: loads from YAML, and every invalid value fails at load naming the field, value and choices."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from trtllm_oci.build_options import KvCacheDtype, Quantization
from trtllm_oci.errors import SpecError
from trtllm_oci.spec import ModelSource, ReleaseSpec, load_spec, parse_spec

OCI_TARGET = {
    "kind": "oci",
    "region": "us-ashburn-1",
    "compartment_id": "ocid1.compartment.oc1..aaaa",
    "project_id": "ocid1.datascienceproject.oc1.iad.aaaa",
    "shape": "VM.GPU.A10.2",
}


def write_spec(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "release.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_full_spec_loads_from_yaml(tmp_path: Path) -> None:
    spec = load_spec(
        write_spec(
            tmp_path,
            {
                "model": {"hf_repo": "meta-llama/Llama-2-13b-hf", "revision": "v1.0"},
                "quantization": {"method": "int4_awq", "kv_cache_dtype": "int8"},
                "parallelism": {"tp": 2, "pp": 1},
                "build": {"max_batch_size": 32, "max_input_len": 1024, "max_seq_len": 2048, "max_num_tokens": 4096},
                "trtllm_version": "0.12.0",
                "target": OCI_TARGET,
            },
        )
    )
    assert spec.quantization.method is Quantization.INT4_AWQ
    assert spec.quantization.kv_cache_dtype is KvCacheDtype.INT8
    assert spec.parallelism.world_size == 2
    assert spec.shape is not None and spec.shape.gpu_count == 2
    assert spec.release_id == "llama-2-13b-hf-int4_awq-tp2pp1-trt0.12.0"
    assert spec.effective_triton_max_batch_size == 32


def test_defaults_give_a_local_release() -> None:
    spec = parse_spec({"model": {"local_dir": "/models/tiny"}})
    assert spec.target.kind == "local"
    assert spec.quantization.method is Quantization.NONE
    assert spec.model.label == "/models/tiny"


@pytest.mark.parametrize(
    ("patch", "expected_fragments"),
    [
        (
            {"quantization": {"method": "int3"}},
            ["quantization.method", "'int3'", "'none'", "'fp8'", "'int8_sq'", "'int4_awq'", "'w4a8_awq'", "'int8_wo'", "'int4_wo'"],
        ),
        ({"quantization": {"kv_cache_dtype": "fp4"}}, ["quantization.kv_cache_dtype", "'fp4'", "'auto'", "'fp8'", "'int8'"]),
        ({"parallelism": {"tp": 0}}, ["parallelism.tp", "greater than or equal to 1", "0"]),
        ({"parallelism": {"tp": 2, "pp": 2}}, ["tp×pp = 2×2 = 4", "2 GPU(s) of VM.GPU.A10.2", "BM.GPU.A10.4"]),
        ({"quantization": {"method": "fp8"}}, ["quantization.method", "'fp8'", "FP8", "A10", "8.6", "int4_awq"]),
        ({"quantization": {"kv_cache_dtype": "fp8"}}, ["quantization.kv_cache_dtype", "A10", "'int8'"]),
        ({"target": {**OCI_TARGET, "shape": "VM.GPU.A11.2"}}, ["target.shape", "unknown shape 'VM.GPU.A11.2'", "VM.GPU.A10.2"]),
        ({"target": {**OCI_TARGET, "region": "ashburn"}}, ["target.region", "'ashburn'", "us-ashburn-1"]),
        ({"target": {**OCI_TARGET, "project_id": "ocid1.compartment.x"}}, ["target.project_id", "ocid1.datascienceproject"]),
        ({"target": {**OCI_TARGET, "kind": "aws"}}, ["target", "'aws'", "'local'", "'oci'"]),
        ({"build": {"max_input_len": 4096, "max_seq_len": 4096}}, ["build.max_input_len (4096)", "max_seq_len (4096)"]),
        ({"serving": {"triton_max_batch_size": 128}}, ["serving.triton_max_batch_size (128)", "build.max_batch_size (64)"]),
        ({"trtllm_version": "0.3.0"}, ["trtllm_version", "0.3.0", "0.12.0"]),
        ({"model": {"hf_repo": "llama"}}, ["model.hf_repo", "'llama'", "<org>/<name>"]),
        ({"model": {"hf_repo": "a/b", "local_dir": "/x"}}, ["model", "exactly one"]),
        ({"parallelism": {"tpp": 2}}, ["parallelism.tpp", "Extra inputs are not permitted"]),
    ],
)
def test_invalid_values_fail_at_load_with_field_value_and_choices(
    tmp_path: Path, patch: dict, expected_fragments: list[str]
) -> None:
    data = {"model": {"hf_repo": "meta-llama/Llama-2-7b-hf"}, "target": OCI_TARGET} | patch
    with pytest.raises(SpecError) as info:
        load_spec(write_spec(tmp_path, data))
    message = str(info.value)
    assert "release.yaml" in message
    for fragment in expected_fragments:
        assert fragment in message, f"{fragment!r} missing from:\n{message}"


def test_fp8_is_accepted_on_hopper() -> None:
    spec = parse_spec(
        {
            "model": {"hf_repo": "meta-llama/Llama-2-70b-hf"},
            "quantization": {"method": "fp8", "kv_cache_dtype": "fp8"},
            "parallelism": {"tp": 4, "pp": 2},
            "target": OCI_TARGET | {"shape": "BM.GPU.H100.8"},
        }
    )
    assert spec.shape is not None and spec.shape.gpu.supports_fp8


def test_local_target_with_gpu_shape_is_checked_too() -> None:
    with pytest.raises(SpecError, match=r"1 GPU\(s\) of VM.GPU.A10.1 \(target.gpu_shape\)"):
        parse_spec(
            {"model": {"local_dir": "/m"}, "parallelism": {"tp": 2}, "target": {"kind": "local", "gpu_shape": "VM.GPU.A10.1"}}
        )


@pytest.mark.parametrize(
    ("path_text", "problem"),
    [("missing.yaml", "does not exist"), ("list.yaml", "YAML mapping"), ("broken.yaml", "not valid YAML")],
)
def test_unreadable_spec_files(tmp_path: Path, path_text: str, problem: str) -> None:
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    (tmp_path / "broken.yaml").write_text("model: {hf_repo: [\n")
    with pytest.raises(SpecError, match=problem):
        load_spec(tmp_path / path_text)


def test_model_source_parse_tells_directories_from_repo_ids(tmp_path: Path) -> None:
    assert ModelSource.parse(str(tmp_path)).local_dir == tmp_path
    assert ModelSource.parse("./relative/model").local_dir is not None
    parsed = ModelSource.parse("mistralai/Mixtral-8x7B-v0.1", "abc123")
    assert (parsed.hf_repo, parsed.revision) == ("mistralai/Mixtral-8x7B-v0.1", "abc123")


def test_release_spec_json_schema_is_a_form_prefect_can_render() -> None:
    schema = ReleaseSpec.model_json_schema()
    assert schema["required"] == ["model"]
    assert set(schema["properties"]) >= {"model", "quantization", "parallelism", "build", "trtllm_version", "target"}
