"""Engine dtype: auto from the checkpoint as upstream's convert_checkpoint.py/quantize.py do, shown in the
plan, keyed in the cache; precisions the GPU lacks refused before anything runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from trtllm_oci.build.precision import (
    UnsupportedPrecisionError,
    check_precision_on_gpu,
    parse_gpu_arch,
    resolve_dtype,
)

CONFIGS = Path(__file__).parent.parent / "data" / "hf_configs"
CATALOG = Path(__file__).parents[2] / "trtllm_oci" / "data" / "gpu_shapes.yaml"
TRTLLM_OCI = Path(sys.executable).with_name("trtllm-oci")


@pytest.mark.parametrize(
    ("requested", "checkpoint", "expected"),
    [
        ("auto", "bfloat16", "bfloat16"),
        ("auto", "float16", "float16"),
        ("auto", "float32", "float16"),  # upstream's auto turns a float32 source into float16
        ("auto", None, "float16"),
        ("auto", "torch.bfloat16", "bfloat16"),
        ("float32", "bfloat16", "float32"),
        ("bfloat16", "float16", "bfloat16"),
    ],
)
def test_resolve_dtype(requested, checkpoint, expected):
    assert resolve_dtype(requested, checkpoint) == expected


def test_unmappable_checkpoint_dtype_is_refused_naming_it():
    with pytest.raises(UnsupportedPrecisionError, match=r"torch_dtype is 'int8'.*pass an explicit dtype"):
        resolve_dtype("auto", "int8")


@pytest.mark.parametrize(
    ("dtype", "fp8", "kv", "sm", "message"),
    [
        ("bfloat16", False, "auto", (7, 0), r"dtype 'bfloat16' needs .* >= 8\.0, but V100 is SM 7\.0; use dtype float16"),
        ("float16", True, "auto", (8, 6), r"an FP8 quantization needs .* >= 8\.9, but A10 is SM 8\.6"),
        ("float16", False, "fp8", (8, 0), r"kv_cache_dtype 'fp8' needs .* >= 8\.9.*use kv_cache_dtype int8"),
    ],
)
def test_precision_the_gpu_lacks_is_refused(dtype, fp8, kv, sm, message):
    label = {(7, 0): "V100", (8, 6): "A10", (8, 0): "A100"}[sm]
    with pytest.raises(UnsupportedPrecisionError, match=message):
        check_precision_on_gpu(dtype, fp8_weights=fp8, kv_cache_dtype=kv, compute_capability=sm, gpu_label=label)
    check_precision_on_gpu("float16", fp8_weights=False, kv_cache_dtype="int8", compute_capability=sm, gpu_label=label)
    check_precision_on_gpu(dtype, fp8_weights=fp8, kv_cache_dtype=kv, compute_capability=(9, 0), gpu_label="H100")


def test_parse_gpu_arch():
    assert parse_gpu_arch("sm90") == (9, 0) and parse_gpu_arch("sm100") == (10, 0)
    with pytest.raises(UnsupportedPrecisionError, match="'hopper' is not of the form"):
        parse_gpu_arch("hopper")


# --- as a user runs it: trtllm-oci build --dry-run --json ---------------------------------------------------


def _model(tmp_path: Path, name: str) -> Path:
    directory = tmp_path / name
    directory.mkdir()
    shutil.copy(CONFIGS / f"{name}.json", directory / "config.json")
    return directory


def _build(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(TRTLLM_OCI), "build", *args, "--dry-run", "--json"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
    )


def test_dry_run_shows_the_checkpoints_dtype_and_keys_on_it(tmp_path):
    model = str(_model(tmp_path, "mistral-7b-v0.1"))  # torch_dtype bfloat16
    common = ["--model", model, "--trtllm-version", "1.2.1", "--gpu-arch", "sm90"]
    auto = _build(*common)
    assert auto.returncode == 0, auto.stderr
    plan = json.loads(auto.stdout)
    assert plan["dtype"] == "bfloat16" and "auto from the checkpoint's torch_dtype bfloat16" in plan["dtype_basis"]
    convert, build = plan["steps"]
    assert convert["argv"][convert["argv"].index("--dtype") + 1] == "bfloat16"
    assert build["argv"][build["argv"].index("--gemm_plugin") + 1] == "bfloat16"
    fp16 = json.loads(_build(*common, "--dtype", "float16").stdout)
    assert fp16["dtype"] == "float16" and fp16["cache_key"] != plan["cache_key"]


def test_dry_run_refuses_bf16_on_a_v100_shape(tmp_path):
    catalog = yaml.safe_load(CATALOG.read_text())
    catalog["gpus"]["V100"] = {"memory_gib": 15.78, "memory_bandwidth_gbs": 900, "compute_capability": "7.0",
                               "fp16_tflops": 125}
    catalog["shapes"]["VM.GPU3.1"] = {"gpu": "V100", "gpu_count": 1, "price_per_hour_usd": 2.95,
                                      "price_source": "test catalog", "price_date": "2026-01"}
    path = tmp_path / "shapes.yaml"
    path.write_text(yaml.safe_dump(catalog))
    model = str(_model(tmp_path, "mistral-7b-v0.1"))
    result = _build("--model", model, "--trtllm-version", "1.2.1", "--shape", "VM.GPU3.1",
                    env={"TRTLLM_OCI_SHAPES": str(path)})
    assert result.returncode == 2, result.stdout
    assert "dtype 'bfloat16' needs a GPU of compute capability >= 8.0, but V100 is SM 7.0" in result.stderr
    assert "use dtype float16" in result.stderr
    explicit = _build("--model", model, "--trtllm-version", "1.2.1", "--shape", "VM.GPU3.1", "--dtype", "bfloat16",
                      env={"TRTLLM_OCI_SHAPES": str(path)})
    # The CLI's message names the flag the user typed (issue 15), not the spec field behind it.
    assert explicit.returncode == 2 and "--dtype: 'bfloat16' needs compute capability" in explicit.stderr
    # 7B in fp16 does not fit a 16 GB V100 either: dry runs run the capacity planner too (issue 15), so this
    # precision-only check forces past it and then asserts that the planner was the only objection.
    fp16 = _build("--model", model, "--trtllm-version", "1.2.1", "--shape", "VM.GPU3.1", "--dtype", "float16",
                  env={"TRTLLM_OCI_SHAPES": str(path)})
    assert fp16.returncode == 2 and "capacity planner says" in fp16.stderr and "bfloat16" not in fp16.stderr
    forced = _build("--model", model, "--trtllm-version", "1.2.1", "--shape", "VM.GPU3.1", "--dtype", "float16",
                    "--force", env={"TRTLLM_OCI_SHAPES": str(path)})
    assert forced.returncode == 0, forced.stderr


def test_dry_run_refuses_fp8_kv_cache_below_sm89(tmp_path):
    model = str(_model(tmp_path, "llama-2-7b-hf"))
    result = _build("--model", model, "--trtllm-version", "1.2.1", "--kv-cache-dtype", "fp8", "--gpu-arch", "sm86")
    assert result.returncode == 2
    assert "kv_cache_dtype 'fp8' needs a GPU of compute capability >= 8.9, but sm86 is SM 8.6" in result.stderr
