"""Reading a checkpoint's quantization as TensorRT-LLM 1.2.1 reads it (tests/data/checkpoint_quant/README.md)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from trtllm_oci.checkpoint.quant_config import (
    CheckpointQuantError,
    QuantizationNotSupportedOnGpuError,
    UnknownQuantMethodError,
    UnsupportedQuantMethodError,
    check_runs_on,
    check_runs_on_gpu,
    read_checkpoint_quantization,
)
from trtllm_oci.shapes import get_shape

DATA = Path(__file__).resolve().parents[1] / "data" / "checkpoint_quant"


def checkpoint(tmp_path: Path, *names: str) -> Path:
    """A checkpoint directory holding the named fixtures under their real file names."""
    directory = tmp_path / "ckpt"
    directory.mkdir(exist_ok=True)
    for name in names:
        case, real_name = name.split(".", 1)
        shutil.copy(DATA / name, directory / real_name)
    return directory


@pytest.mark.parametrize(
    ("fixture", "algo", "method", "weight_bytes", "cc", "group"),
    [
        ("modelopt_nvfp4.hf_quant_config.json", "NVFP4", "nvfp4", 0.5625, "10.0", 16),
        ("modelopt_int4_awq.hf_quant_config.json", "W4A16_AWQ", "int4_awq", 0.515625, "8.0", 128),
        ("modelopt_w4a8_awq.hf_quant_config.json", "W4A8_AWQ", "w4a8_awq", 0.515625, "8.9", 128),
    ],
)
def test_modelopt_exports_are_recognised(tmp_path, fixture, algo, method, weight_bytes, cc, group):
    q = read_checkpoint_quantization(checkpoint(tmp_path, fixture, "unquantized.config.json"))
    assert (q.source, q.quant_algo, q.method, q.weight_bytes) == ("hf_quant_config.json", algo, method, weight_bytes)
    assert (q.min_compute_capability, q.group_size, q.kv_cache_dtype, q.kv_cache_bytes) == (cc, group, "auto", None)
    assert q.exclude_modules == ("lm_head", "model.embed_tokens")
    assert q.producer == "modelopt 0.47.0"


def test_fp8_with_fp8_kv_cache(tmp_path):
    q = read_checkpoint_quantization(checkpoint(tmp_path, "modelopt_fp8_kv_fp8.hf_quant_config.json"))
    assert (q.quant_algo, q.weight_bytes, q.min_compute_capability) == ("FP8", 1.0, "8.9")
    assert (q.kv_cache_quant_algo, q.kv_cache_dtype, q.kv_cache_bytes) == ("FP8", "fp8", 1.0)


def test_hf_quant_config_wins_over_config_json(tmp_path):
    # TensorRT-LLM reads hf_quant_config.json first; an inline quantization_config beside it is not consulted.
    directory = checkpoint(tmp_path, "modelopt_fp8_kv_fp8.hf_quant_config.json", "unknown_method.config.json")
    assert read_checkpoint_quantization(directory).source == "hf_quant_config.json"


def test_deepseek_block_fp8_config_json(tmp_path):
    q = read_checkpoint_quantization(checkpoint(tmp_path, "deepseek_v3_fp8_block.config.json"))
    assert (q.source, q.quant_algo, q.method, q.group_size) == ("config.json", "FP8_BLOCK_SCALES", "fp8_block_scales", 128)
    assert q.min_compute_capability == "9.0"
    assert q.weight_bytes == pytest.approx(1.0 + 4 / (128 * 128))


def test_gpt_oss_mxfp4_config_json(tmp_path):
    q = read_checkpoint_quantization(checkpoint(tmp_path, "gpt_oss_mxfp4.config.json"))
    assert (q.quant_algo, q.method, q.min_compute_capability) == ("W4A16_MXFP4", "mxfp4", "9.0")
    assert "lm_head" in q.exclude_modules


def test_unquantized_checkpoint(tmp_path):
    q = read_checkpoint_quantization(checkpoint(tmp_path, "unquantized.config.json"))
    assert (q.is_quantized, q.method, q.weight_bytes, q.source) == (False, "none", None, "none")


def test_mixed_precision_takes_the_heaviest_layer_format(tmp_path):
    directory = checkpoint(tmp_path, "mixed_precision.hf_quant_config.json", "mixed_precision.quant_cfg.json")
    q = read_checkpoint_quantization(directory)
    assert q.mixed_layer_algos == ("FP8", "NVFP4")
    assert (q.weight_bytes, q.min_compute_capability, q.kv_cache_dtype) == (1.0, "10.0", "fp8")


def test_mixed_precision_without_layer_file_is_refused(tmp_path):
    directory = checkpoint(tmp_path, "mixed_precision.hf_quant_config.json")
    with pytest.raises(CheckpointQuantError, match=r"quant_cfg\.json"):
        read_checkpoint_quantization(directory)


def test_unknown_quant_method_names_value_file_and_known(tmp_path):
    directory = checkpoint(tmp_path, "unknown_method.config.json")
    with pytest.raises(UnknownQuantMethodError) as info:
        read_checkpoint_quantization(directory)
    message = str(info.value)
    assert "'superquant9000'" in message
    assert str(directory / "config.json") in message
    assert "compressed-tensors" in message and "awq" in message  # the known ones
    assert "'fp8' with weight_block_size [128, 128]" in message and "'mxfp4'" in message  # what 1.2.1 reads


@pytest.mark.parametrize(
    ("fixture", "method"),
    [
        ("autoawq_gemm.config.json", "awq"),
        ("compressed_tensors_fp8.config.json", "compressed-tensors"),
        ("modelopt_fp8_inline_only.config.json", "modelopt"),
    ],
)
def test_known_methods_that_1_2_1_does_not_read_are_refused(tmp_path, fixture, method):
    with pytest.raises(UnsupportedQuantMethodError, match=rf"quant_method '{method}' is not read by TensorRT-LLM 1\.2\.1"):
        read_checkpoint_quantization(checkpoint(tmp_path, fixture))


@pytest.mark.parametrize("fixture", ["fp8_static_per_tensor.config.json", "fp8_block_64.config.json"])
def test_fp8_config_json_needs_128_blocks(tmp_path, fixture):
    with pytest.raises(UnsupportedQuantMethodError, match=r"weight_block_size \[128, 128\]"):
        read_checkpoint_quantization(checkpoint(tmp_path, fixture))


def test_unknown_quant_algo_in_hf_quant_config(tmp_path):
    with pytest.raises(UnknownQuantMethodError, match=r"quant_algo 'FP7' is unknown.*NVFP4"):
        read_checkpoint_quantization(checkpoint(tmp_path, "unknown_algo.hf_quant_config.json"))


def test_unknown_kv_cache_algo(tmp_path):
    with pytest.raises(UnknownQuantMethodError, match=r"kv_cache_quant_algo 'FP16' is unknown"):
        read_checkpoint_quantization(checkpoint(tmp_path, "unknown_kv_algo.hf_quant_config.json"))


def test_broken_json_and_empty_directory(tmp_path):
    with pytest.raises(CheckpointQuantError, match="neither hf_quant_config.json nor config.json"):
        read_checkpoint_quantization(tmp_path)
    (tmp_path / "hf_quant_config.json").write_text("{not json")
    with pytest.raises(CheckpointQuantError, match="is not valid JSON"):
        read_checkpoint_quantization(tmp_path)


def test_unknown_trtllm_version_is_refused(tmp_path):
    with pytest.raises(CheckpointQuantError, match=r"'0\.9\.0' has no entry.*1\.2\.1"):
        read_checkpoint_quantization(checkpoint(tmp_path, "gpt_oss_mxfp4.config.json"), trtllm_version="0.9.0")


# ------------------------------------------------------------------------------------ GPU capability


def test_nvfp4_needs_blackwell(tmp_path):
    q = read_checkpoint_quantization(checkpoint(tmp_path, "modelopt_nvfp4.hf_quant_config.json"))
    with pytest.raises(QuantizationNotSupportedOnGpuError) as info:
        check_runs_on_gpu(q, get_shape("BM.GPU.H200.8").gpu)
    message = str(info.value)
    assert "NVFP4" in message and "10.0" in message and "Blackwell" in message and "H200 is 9.0" in message
    assert "fp8" in message  # what the H200 could run instead
    check_runs_on(q, "10.0", gpu_name="B200")


def test_fp8_needs_ada_or_newer(tmp_path):
    q = read_checkpoint_quantization(checkpoint(tmp_path, "modelopt_fp8_kv_fp8.hf_quant_config.json"))
    for shape in ("VM.GPU.A10.1", "BM.GPU.A100-v2.8"):
        with pytest.raises(QuantizationNotSupportedOnGpuError, match=r"needs compute capability 8\.9"):
            check_runs_on_gpu(q, get_shape(shape).gpu)
    check_runs_on_gpu(q, get_shape("BM.GPU.H200.8").gpu)
    check_runs_on(q, "8.9", gpu_name="L40S")


def test_fp8_kv_cache_alone_is_checked(tmp_path):
    # W4A16 AWQ weights run on Ampere, but an FP8 KV cache beside them does not.
    (tmp_path / "hf_quant_config.json").write_text(
        '{"quantization": {"quant_algo": "W4A16_AWQ", "kv_cache_quant_algo": "FP8", "group_size": 128}}')
    q = read_checkpoint_quantization(tmp_path)
    with pytest.raises(QuantizationNotSupportedOnGpuError, match="KV cache is FP8"):
        check_runs_on(q, "8.0", gpu_name="A100")


def test_unquantized_runs_everywhere_the_project_lists(tmp_path):
    q = read_checkpoint_quantization(checkpoint(tmp_path, "unquantized.config.json"))
    check_runs_on_gpu(q, get_shape("VM.GPU.A10.1").gpu)
