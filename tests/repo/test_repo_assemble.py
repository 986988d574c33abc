from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from tests.repo.fake_engines import write_legacy_engine, write_trtllm_build_engine
from trtllm_oci.repo.assemble import (
    AssembleError,
    RepoOptions,
    assemble_repository,
    build_model_configs,
    default_python_models_dir,
    oci_deploy_root,
    read_manifest,
)
from trtllm_oci.repo.checks import RepoCheckError
from trtllm_oci.repo.interface import interface_for

# Every version of the build stage's table, plus one 0.8–0.11 release the table does not list.
VERSIONS = sorted(
    {
        v["version"]
        for v in yaml.safe_load(
            (Path(__file__).parents[2] / "trtllm_oci/data/trtllm_versions.yaml").read_text()
        )["versions"]
    }
    | {"0.5.0", "0.11.0", "0.12.0", "1.2.1"}
)


def _parse(path: Path) -> mc.ModelConfig:
    return text_format.Parse(path.read_text(), mc.ModelConfig())


def _assemble(tmp_path, version, engine_dir, tokenizer_dir, python_models_dir, **opts):
    out = tmp_path / f"repo-{version}"
    options = RepoOptions(trtllm_version=version, **opts)
    return assemble_repository(engine_dir, tokenizer_dir, out, options, python_models_dir=python_models_dir)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("streaming", [False, True])
def test_written_configs_parse_and_match_interface(
    tmp_path, tokenizer_dir, python_models_dir, version, streaming
):
    engine = write_trtllm_build_engine(tmp_path / "engine", version=version, tp=2, max_batch_size=256)
    include_bls = version != "0.5.0"
    manifest = _assemble(
        tmp_path,
        version,
        engine,
        tokenizer_dir,
        python_models_dir,
        streaming=streaming,
        include_bls=include_bls,
    )
    interface = interface_for(version)
    expected_models = {"ensemble", "preprocessing", "postprocessing", "tensorrt_llm"} | (
        {"tensorrt_llm_bls"} if include_bls else set()
    )
    assert set(manifest.models) == expected_models
    assert manifest.world_size == 2
    for name in expected_models:
        path = manifest.model_repository / name / "config.pbtxt"
        text = path.read_text()
        assert "${" not in text
        config = _parse(path)
        model = interface.models[name]
        assert config.name == name
        assert [(t.name, list(t.dims), t.optional) for t in config.input] == [
            (t.name, t.dims, t.optional) for t in model.inputs
        ]
        assert [t.name for t in config.output] == [t.name for t in model.outputs]
        for tensor, spec in zip(config.input, model.inputs, strict=True):
            if not spec.data_type.startswith("${"):
                assert mc.DataType.Name(tensor.data_type) == spec.data_type
            assert (list(tensor.reshape.shape) if tensor.HasField("reshape") else None) == spec.reshape
        known_keys = set(model.parameters)
        assert set(config.parameters) <= known_keys, set(config.parameters) - known_keys
        if name in ("tensorrt_llm", "tensorrt_llm_bls"):
            assert config.model_transaction_policy.decoupled is streaming
        else:
            assert not config.model_transaction_policy.decoupled
        if name == "ensemble":
            assert [s.model_name for s in config.ensemble_scheduling.step] == [
                s.model_name for s in model.steps
            ]
            for step, spec in zip(config.ensemble_scheduling.step, model.steps, strict=True):
                assert dict(step.input_map) == spec.input_map and dict(step.output_map) == spec.output_map
        assert (manifest.model_repository / name / "1").is_dir()


def test_0_5_keeps_uint32_and_hard_coded_batch(tmp_path, tokenizer_dir, python_models_dir):
    engine = write_trtllm_build_engine(tmp_path / "engine", version="0.5.0", max_batch_size=128)
    manifest = _assemble(tmp_path, "0.5.0", engine, tokenizer_dir, python_models_dir)
    ens = _parse(manifest.model_repository / "ensemble" / "config.pbtxt")
    assert ens.max_batch_size == 128
    assert mc.DataType.Name(next(t for t in ens.input if t.name == "max_tokens").data_type) == "TYPE_UINT32"
    pre = _parse(manifest.model_repository / "preprocessing" / "config.pbtxt")
    assert pre.parameters["tokenizer_type"].string_value == "auto"
    with pytest.raises(AssembleError, match=r"cap max_batch_size at 128; set triton_max_batch_size<=128"):
        build_model_configs(
            RepoOptions(trtllm_version="0.5.0", triton_max_batch_size=256), "/x", has_engine=True
        )
    smaller = build_model_configs(
        RepoOptions(trtllm_version="0.5.0", triton_max_batch_size=8), "/x", has_engine=True
    )
    assert {c.max_batch_size for c in smaller.values()} == {8}


def test_0_5_legacy_engine_with_small_batch(tmp_path, tokenizer_dir, python_models_dir):
    engine = write_legacy_engine(tmp_path / "legacy", tp=1, max_batch_size=8)
    with pytest.raises(
        RepoCheckError, match=r"triton_max_batch_size=128 exceeds the engine's build max_batch_size=8"
    ):
        _assemble(tmp_path, "0.5.0", engine, tokenizer_dir, python_models_dir)
    manifest = _assemble(tmp_path, "0.5.0", engine, tokenizer_dir, python_models_dir, triton_max_batch_size=8)
    assert manifest.max_batch_size == 8


def test_golden_values_local_deploy_root(tmp_path, engine_dir, tokenizer_dir, python_models_dir):
    manifest = _assemble(
        tmp_path,
        "1.2.1",
        engine_dir,
        tokenizer_dir,
        python_models_dir,
        triton_max_batch_size=32,
        kv_cache_free_gpu_mem_fraction=0.5,
        max_tokens_in_paged_kv_cache=2560,
        batch_scheduler_policy="max_utilization",
        enable_kv_cache_reuse=True,
        exclude_input_in_output=False,
        max_queue_delay_microseconds=100,
        preprocessing_instance_count=3,
        postprocessing_instance_count=2,
    )
    root = tmp_path / "repo-1.2.1"
    assert manifest.root == root and manifest.deploy_root == str(root)
    trt = _parse(root / "model_repository" / "tensorrt_llm" / "config.pbtxt")
    params = {k: v.string_value for k, v in trt.parameters.items()}
    assert params["gpt_model_path"] == f"{root}/engine"
    assert params["gpt_model_type"] == "inflight_fused_batching"  # V1 is refused for 1.x (test_backend_parameters)
    assert params["kv_cache_free_gpu_mem_fraction"] == "0.5"
    assert params["max_tokens_in_paged_kv_cache"] == "2560"
    assert params["batch_scheduler_policy"] == "max_utilization"
    assert params["enable_kv_cache_reuse"] == "true"
    assert params["exclude_input_in_output"] == "false"
    assert trt.backend == "tensorrtllm"
    assert trt.max_batch_size == 32
    assert trt.dynamic_batching.max_queue_delay_microseconds == 100
    assert list(trt.dynamic_batching.preferred_batch_size) == [32]
    pre = _parse(root / "model_repository" / "preprocessing" / "config.pbtxt")
    assert pre.parameters["tokenizer_dir"].string_value == f"{root}/tokenizer"
    assert pre.instance_group[0].count == 3
    post = _parse(root / "model_repository" / "postprocessing" / "config.pbtxt")
    assert post.instance_group[0].count == 2
    assert (root / "engine" / "config.json").is_file()
    assert (root / "tokenizer" / "tokenizer.json").is_file()
    assert not (root / "tokenizer" / "model.safetensors").exists()
    assert (root / "model_repository" / "preprocessing" / "1" / "model.py").is_file()
    assert read_manifest(root) == manifest
    assert "engine/rank1.engine" in manifest.files and "manifest.json" not in manifest.files


def test_oci_deploy_root(tmp_path, engine_dir, tokenizer_dir, python_models_dir):
    deploy = oci_deploy_root("llama-tp2")
    manifest = _assemble(tmp_path, "1.2.1", engine_dir, tokenizer_dir, python_models_dir, deploy_root=deploy)
    assert deploy == "/opt/ds/model/deployed_model/llama-tp2"
    trt = _parse(manifest.model_repository / "tensorrt_llm" / "config.pbtxt")
    assert trt.parameters["gpt_model_path"].string_value == "/opt/ds/model/deployed_model/llama-tp2/engine"
    post = _parse(manifest.model_repository / "postprocessing" / "config.pbtxt")
    assert post.parameters["tokenizer_dir"].string_value == "/opt/ds/model/deployed_model/llama-tp2/tokenizer"
    assert manifest.model_repository_deployed == "/opt/ds/model/deployed_model/llama-tp2/model_repository"


def test_engine_files_are_linked_not_copied(tmp_path, engine_dir, tokenizer_dir, python_models_dir):
    manifest = _assemble(tmp_path, "1.2.1", engine_dir, tokenizer_dir, python_models_dir)
    for name in ("rank0.engine", "rank1.engine", "config.json"):
        linked, source = manifest.root / "engine" / name, engine_dir / name
        assert linked.is_symlink() or os.stat(linked).st_ino == os.stat(source).st_ino


def test_materialize_copies(tmp_path, engine_dir, tokenizer_dir, python_models_dir):
    manifest = _assemble(tmp_path, "1.2.1", engine_dir, tokenizer_dir, python_models_dir, materialize=True)
    linked = manifest.root / "engine" / "rank0.engine"
    assert not linked.is_symlink() and os.stat(linked).st_ino != os.stat(engine_dir / "rank0.engine").st_ino
    assert linked.read_bytes() == (engine_dir / "rank0.engine").read_bytes()


def test_legacy_engine_assembles_for_0_5(tmp_path, tokenizer_dir, python_models_dir):
    engine = write_legacy_engine(tmp_path / "legacy", tp=2, max_batch_size=128)
    manifest = _assemble(tmp_path, "0.5.0", engine, tokenizer_dir, python_models_dir)
    assert manifest.world_size == 2
    assert (manifest.root / "engine" / "llama_float16_tp2_rank1.engine").exists()


def test_failed_check_leaves_nothing(tmp_path, tokenizer_dir, python_models_dir):
    engine = write_trtllm_build_engine(tmp_path / "engine", tp=2, ranks=1)
    with pytest.raises(RepoCheckError, match=r"lacks \['rank1.engine'\]"):
        _assemble(tmp_path, "1.2.1", engine, tokenizer_dir, python_models_dir)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["engine", "hf", "python_models"]


def test_failure_mid_write_leaves_nothing(tmp_path, engine_dir, tokenizer_dir, python_models_dir):
    # A dangling symlink in the tokenizer dir makes linking fail after configs were already written.
    (tokenizer_dir / "special_tokens_map.json").symlink_to(tmp_path / "missing.json")
    with pytest.raises(AssembleError, match=r"special_tokens_map.json is a dangling link"):
        _assemble(tmp_path, "1.2.1", engine_dir, tokenizer_dir, python_models_dir)
    assert not (tmp_path / "repo-1.2.1").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".repo-1.2.1")]


def test_existing_out_dir_is_refused_and_overwrite_replaces(
    tmp_path, engine_dir, tokenizer_dir, python_models_dir
):
    out = tmp_path / "repo"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    options = RepoOptions(trtllm_version="1.2.1")
    with pytest.raises(AssembleError, match=r"already exists; remove it or pass --overwrite \(overwrite=True\)"):
        assemble_repository(engine_dir, tokenizer_dir, out, options, python_models_dir=python_models_dir)
    assemble_repository(
        engine_dir, tokenizer_dir, out, options, python_models_dir=python_models_dir, overwrite=True
    )
    assert not (out / "stale.txt").exists() and (out / "manifest.json").is_file()


def test_batch_size_above_engine_is_refused(tmp_path, tokenizer_dir, python_models_dir):
    engine = write_trtllm_build_engine(tmp_path / "engine", max_batch_size=8)
    with pytest.raises(
        RepoCheckError, match=r"triton_max_batch_size=64 exceeds the engine's build max_batch_size=8"
    ):
        _assemble(tmp_path, "1.2.1", engine, tokenizer_dir, python_models_dir)


def test_engine_of_other_version_is_refused(tmp_path, tokenizer_dir, python_models_dir):
    engine = write_trtllm_build_engine(tmp_path / "engine", version="0.12.0")
    with pytest.raises(
        RepoCheckError, match=r"built by TRT-LLM 0\.12\.0 but the serving image runs TRT-LLM 1\.2\.1"
    ):
        _assemble(tmp_path, "1.2.1", engine, tokenizer_dir, python_models_dir)


def test_bad_inputs_have_clear_errors(tmp_path, engine_dir, tokenizer_dir, python_models_dir):
    with pytest.raises(AssembleError, match=r"backend='tensorrtllm' needs --engine-dir"):
        _assemble(tmp_path, "1.2.1", None, tokenizer_dir, python_models_dir)
    with pytest.raises(AssembleError, match=r"backend='reference' needs hf_model_dir"):
        _assemble(tmp_path, "1.2.1", None, tokenizer_dir, python_models_dir, backend="reference")
    with pytest.raises(AssembleError, match=r"has no config.json; pass a Hugging Face model dir"):
        assemble_repository(
            None,
            tokenizer_dir,
            tmp_path / "r",
            RepoOptions(trtllm_version="1.2.1", backend="reference"),
            hf_model_dir=tokenizer_dir,
            python_models_dir=python_models_dir,
        )
    with pytest.raises(AssembleError, match=r"deploy_root='relative/x' must be an absolute path"):
        _assemble(tmp_path, "1.2.1", engine_dir, tokenizer_dir, python_models_dir, deploy_root="relative/x")
    with pytest.raises(AssembleError, match=r"has no tensorrt_llm_bls model .* set include_bls=False"):
        build_model_configs(RepoOptions(trtllm_version="0.6.0", include_bls=True), "/x", has_engine=True)
    with pytest.raises(AssembleError, match=r"python_models_dir holding <model>/model.py"):
        _assemble(tmp_path, "1.2.1", engine_dir, tokenizer_dir, tmp_path / "no-models")
    with pytest.raises(ValueError, match=r"batch_scheduler_policy"):
        RepoOptions(trtllm_version="1.2.1", batch_scheduler_policy="fcfs")


def test_reference_backend_config(tmp_path, tokenizer_dir, python_models_dir):
    hf = tokenizer_dir
    (hf / "config.json").write_text("{}")
    manifest = assemble_repository(
        None,
        tokenizer_dir,
        tmp_path / "ref",
        RepoOptions(trtllm_version="1.2.1", backend="reference", streaming=True),
        hf_model_dir=hf,
        python_models_dir=python_models_dir,
    )
    trt = _parse(manifest.model_repository / "tensorrt_llm" / "config.pbtxt")
    assert trt.backend == "python"
    assert "CPU reference backend" in trt.parameters["trtllm_oci_backend"].string_value
    assert trt.parameters["model_dir"].string_value == f"{tmp_path / 'ref'}/reference_model"
    assert "gpt_model_path" not in trt.parameters
    assert (
        "CPU reference backend" in (manifest.model_repository / "tensorrt_llm" / "config.pbtxt").read_text()
    )
    assert (
        (manifest.model_repository / "tensorrt_llm" / "1" / "model.py")
        .read_text()
        .startswith("# tensorrt_llm_reference")
    )
    assert (manifest.root / "reference_model" / "model.safetensors").exists()
    assert manifest.world_size == 1 and manifest.engine_dir_deployed is None
    assert [t.name for t in trt.input] == [
        t.name for t in interface_for("1.2.1").models["tensorrt_llm"].inputs
    ]


def test_serving_package_ships_the_python_models():
    for name in ("preprocessing", "postprocessing", "tensorrt_llm_reference"):
        assert (default_python_models_dir() / name / "model.py").is_file(), name
