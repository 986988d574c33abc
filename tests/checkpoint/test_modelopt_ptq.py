"""ModelOpt post-training quantization of the tiny model, for real, on CPU (nvidia-modelopt 0.47)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trtllm_oci.checkpoint.modelopt_ptq import (
    TINY_CALIBRATION_TEXTS,
    CalibrationDir,
    CalibrationError,
    CalibrationTexts,
    HubCalibrationDataset,
    KvCacheQuant,
    PtqError,
    PtqMethod,
    PtqRequest,
    QuantizedCheckpointKey,
    calibration_set_id,
    check_method_runs_on,
    container_job,
    load_calibration_texts,
    run_ptq,
)
from trtllm_oci.checkpoint.quant_config import (
    QuantizationNotSupportedOnGpuError,
    read_checkpoint_quantization,
)
from trtllm_oci.tiny_model import make_tiny_llama


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return make_tiny_llama(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def fp8_export(tiny, tmp_path_factory):
    out = tmp_path_factory.mktemp("ptq") / "tiny-fp8"
    request = PtqRequest(model_dir=tiny, output_dir=out, method=PtqMethod.FP8, kv_cache=KvCacheQuant.FP8,
                         calibration=CalibrationTexts(texts=TINY_CALIBRATION_TEXTS), device="cpu",
                         calib_seq_len=64, batch_size=4)
    lines: list[str] = []
    return run_ptq(request, log=lines.append), lines


def test_fp8_ptq_exports_a_modelopt_checkpoint(fp8_export, tiny):
    from safetensors import safe_open

    result, lines = fp8_export
    out = result.output_dir
    assert {"config.json", "hf_quant_config.json", "model.safetensors", "tokenizer.json",
            "trtllm_oci_ptq.json"} <= {p.name for p in out.iterdir()}
    assert not list(out.parent.glob(".tiny-fp8.partial-*"))  # staging renamed into place, nothing left over
    q = read_checkpoint_quantization(out)
    assert (q.quant_algo, q.kv_cache_quant_algo, q.producer) == ("FP8", "FP8", "modelopt 0.47.0")
    assert result.quantization.quant_algo == "FP8" and result.modelopt_version == "0.47.0"
    assert result.calibration_samples == len(TINY_CALIBRATION_TEXTS)
    assert result.calibration_id == calibration_set_id(list(TINY_CALIBRATION_TEXTS))
    with safe_open(str(out / "model.safetensors"), "pt") as f:
        keys = set(f.keys())
        q_proj = f.get_slice("model.layers.0.self_attn.q_proj.weight").get_dtype()
        embed = f.get_slice("model.embed_tokens.weight").get_dtype()
    assert q_proj == "F8_E4M3" and embed != "F8_E4M3"  # embeddings excluded, as TensorRT-LLM expects
    assert {"model.layers.0.self_attn.q_proj.weight_scale", "model.layers.0.self_attn.q_proj.input_scale",
            "model.layers.0.self_attn.k_proj.k_scale"} <= keys
    assert json.loads((out / "config.json").read_text())["architectures"] == ["LlamaForCausalLM"]
    provenance = json.loads((out / "trtllm_oci_ptq.json").read_text())
    assert provenance["request"]["method"] == "fp8" and provenance["result"]["calibration_id"] == result.calibration_id
    assert any("calibrated" in line for line in lines)


def test_dequantized_fp8_weights_are_close_to_the_originals(fp8_export, tiny):
    import torch
    from safetensors.torch import load_file

    from trtllm_oci.checkpoint.fp8_dequant import dequantized_state_dict

    result, _ = fp8_export
    original = load_file(str(tiny / "model.safetensors"))
    restored = dequantized_state_dict(result.output_dir, result.quantization, torch.float32)
    assert set(restored) == set(original)  # every scale dropped, nothing missing
    name = "model.layers.1.mlp.down_proj.weight"
    error = (restored[name] - original[name]).abs().max() / original[name].abs().max()
    assert 0 < error < 0.07  # quantized (not a copy), within E4M3's 3-bit mantissa of the per-tensor max
    assert torch.equal(restored["model.embed_tokens.weight"], original["model.embed_tokens.weight"])


def test_output_directory_is_never_overwritten(fp8_export, tiny):
    result, _ = fp8_export
    request = PtqRequest(model_dir=tiny, output_dir=result.output_dir, method=PtqMethod.FP8,
                         calibration=CalibrationTexts(texts=("x",)), device="cpu")
    with pytest.raises(PtqError, match="is not empty"):
        run_ptq(request)
    assert read_checkpoint_quantization(result.output_dir).quant_algo == "FP8"  # the export is intact


def test_nvfp4_for_a_hopper_target_is_refused_before_any_work(tiny, tmp_path):
    request = PtqRequest(model_dir=tiny, output_dir=tmp_path / "out", method=PtqMethod.NVFP4,
                         calibration=CalibrationTexts(texts=("x",)), device="cpu", target_compute_capability="9.0")
    with pytest.raises(QuantizationNotSupportedOnGpuError, match=r"NVFP4.*10\.0"):
        run_ptq(request)
    assert not (tmp_path / "out").exists()
    check_method_runs_on(PtqMethod.NVFP4, KvCacheQuant.NONE, "10.0")
    with pytest.raises(QuantizationNotSupportedOnGpuError, match="KV cache is FP8"):
        check_method_runs_on(PtqMethod.INT4_AWQ, KvCacheQuant.FP8, "8.0", gpu_name="A100")


def test_calibration_directory_formats(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "a.txt").write_text("first line\n\nsecond line\n")
    (tmp_path / "b.jsonl").write_text('{"text": "third"}\n{"text": "fourth"}\n')
    pq.write_table(pa.table({"text": ["fifth", "sixth"]}), tmp_path / "c.parquet")
    texts = load_calibration_texts(CalibrationDir(path=tmp_path), max_samples=5)
    assert texts == ["first line", "second line", "third", "fourth", "fifth"]
    assert calibration_set_id(texts) != calibration_set_id(texts[:4])


def test_calibration_errors(tmp_path):
    with pytest.raises(CalibrationError, match="does not exist"):
        load_calibration_texts(CalibrationDir(path=tmp_path / "missing"), 4)
    with pytest.raises(CalibrationError, match="holds no"):
        load_calibration_texts(CalibrationDir(path=tmp_path), 4)
    (tmp_path / "d.jsonl").write_text('{"content": "x"}\n')
    with pytest.raises(CalibrationError, match=r"d\.jsonl:1 has no string field 'text'"):
        load_calibration_texts(CalibrationDir(path=tmp_path), 4)
    with pytest.raises(CalibrationError, match="no non-empty"):
        load_calibration_texts(CalibrationTexts(texts=("  ",)), 4)


def test_hub_calibration_dataset_must_be_pinned_to_a_commit():
    with pytest.raises(ValueError, match="not a commit sha"):
        HubCalibrationDataset(repo_id="abisee/cnn_dailymail", revision="main", files=("3.0.0/train-*.parquet",))
    pinned = HubCalibrationDataset(repo_id="abisee/cnn_dailymail", revision="a" * 40, files=("x.parquet",),
                                   text_field="article")
    assert pinned.origin == f"hf:abisee/cnn_dailymail@{'a' * 40}"


def _key(**overrides) -> QuantizedCheckpointKey:
    fields = dict(source_repo="meta-llama/Llama-3.1-8B-Instruct", source_commit="b" * 40, method=PtqMethod.FP8,
                  kv_cache=KvCacheQuant.FP8, calibration_id="sha256:" + "c" * 64, calib_size=512, calib_seq_len=512,
                  export_dtype="auto", modelopt_version="0.47.0", trtllm_version="1.2.1",
                  image_digest="sha256:" + "d" * 64)
    return QuantizedCheckpointKey(**{**fields, **overrides})


def test_cache_key_changes_with_every_input():
    base = _key().digest()
    assert base == _key().digest()
    changed = [_key(method=PtqMethod.INT4_AWQ), _key(kv_cache=KvCacheQuant.NONE), _key(source_commit="e" * 40),
               _key(calibration_id="sha256:" + "f" * 64), _key(modelopt_version="0.47.1"),
               _key(trtllm_version="1.3.0"), _key(image_digest="sha256:" + "0" * 64), _key(calib_size=256),
               _key(device="cpu")]
    assert len({k.digest() for k in changed} | {base}) == len(changed) + 1


def test_cache_key_refuses_tags_and_loose_calibration_ids():
    with pytest.raises(ValueError, match="not a content digest"):
        _key(image_digest="nvcr.io/nvidia/tensorrt-llm/release:1.2.1")
    with pytest.raises(ValueError, match="calibration_id"):
        _key(calibration_id="cnn_dailymail")
    with pytest.raises(ValueError, match="trtllm_version"):
        _key(trtllm_version=None)


def test_container_job_runs_the_same_module_offline(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "calib").mkdir()
    request = PtqRequest(model_dir=tmp_path / "model", output_dir=tmp_path / "exports" / "llama-fp8",
                         method=PtqMethod.W4A8_AWQ, kv_cache=KvCacheQuant.FP8,
                         calibration=CalibrationDir(path=tmp_path / "calib", text_field="article"),
                         target_compute_capability="9.0")
    job = container_job(request)
    assert job.argv[:3] == ["python3", "-m", "trtllm_oci.checkpoint.modelopt_ptq"]
    args = dict(zip(job.argv[3::2], job.argv[4::2], strict=False))
    assert args["--model-dir"] == "/model" and args["--output-dir"] == "/output/llama-fp8"
    assert args["--method"] == "w4a8_awq" and args["--kv-cache"] == "fp8" and args["--text-field"] == "article"
    mounts = {target: (source, ro) for source, target, ro in job.mounts}
    assert mounts["/model"] == ((tmp_path / "model").resolve(), True)
    assert mounts["/output"] == ((tmp_path / "exports").resolve(), False)
    package_source, _ = mounts["/opt/trtllm-oci/trtllm_oci"]
    assert (package_source / "checkpoint" / "modelopt_ptq.py").is_file()
    assert job.environment["PYTHONPATH"] == "/opt/trtllm-oci" and job.environment["HF_HUB_OFFLINE"] == "1"
    inline = request.model_copy(update={"calibration": CalibrationTexts(texts=("x",))})
    with pytest.raises(PtqError, match="CalibrationDir"):
        container_job(inline)


def test_module_cli_parses_into_the_same_request(tmp_path):
    from trtllm_oci.checkpoint.modelopt_ptq import _parse_args

    request = _parse_args(["--model-dir", "/m", "--output-dir", "/o/x", "--method", "nvfp4", "--kv-cache", "fp8",
                           "--calib-dir", "/c", "--calib-size", "64", "--device", "cpu"])
    assert (request.method, request.kv_cache, request.calib_size, request.device) == (
        PtqMethod.NVFP4, KvCacheQuant.FP8, 64, "cpu")
    assert request.calibration == CalibrationDir(path=Path("/c"))
