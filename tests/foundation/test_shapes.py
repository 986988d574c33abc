from __future__ import annotations

from pathlib import Path

import pytest

from trtllm_oci.errors import InputError, UnknownShapeError
from trtllm_oci.shapes import load_catalog

REQUIRED = [
    "VM.GPU.A10.1",
    "VM.GPU.A10.2",
    "BM.GPU.A10.4",
    "BM.GPU4.8",
    "BM.GPU.A100-v2.8",
    "BM.GPU.L40S.4",
    "BM.GPU.H100.8",
    "BM.GPU.H200.8",
]


def test_catalog_has_the_required_shapes_with_sources_and_prices() -> None:
    catalog = load_catalog()
    for name in REQUIRED:
        shape = catalog.get(name)
        assert shape.price_per_hour_usd > 0 and shape.price_source and shape.price_date
        assert shape.gpu.memory_gib > 0 and shape.gpu.memory_bandwidth_gbs > 0


@pytest.mark.parametrize(
    ("shape", "gpu_count", "fp8", "arch"),
    [
        ("VM.GPU.A10.2", 2, False, "sm86"),
        ("BM.GPU4.8", 8, False, "sm80"),
        ("BM.GPU.L40S.4", 4, True, "sm89"),
        ("BM.GPU.H100.8", 8, True, "sm90"),
        ("BM.GPU.H200.8", 8, True, "sm90"),
        ("BM.GPU.GB200.4", 4, True, "sm100"),
    ],
)
def test_gpu_facts(shape: str, gpu_count: int, fp8: bool, arch: str) -> None:
    s = load_catalog().get(shape)
    assert (s.gpu_count, s.gpu.supports_fp8, s.gpu.arch) == (gpu_count, fp8, arch)


def test_unknown_shape_suggests_the_closest_and_lists_all() -> None:
    with pytest.raises(UnknownShapeError) as info:
        load_catalog().get("BM.GPU.H100.4")
    assert "'BM.GPU.H100.8'" in str(info.value) and "VM.GPU.A10.1" in str(info.value)


def test_catalog_can_be_replaced_without_code_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    custom = tmp_path / "shapes.yaml"
    custom.write_text(
        "gpus:\n  X1: {memory_gib: 10, memory_bandwidth_gbs: 100, compute_capability: '9.0', fp16_tflops: 1}\n"
        "shapes:\n  VM.X.1: {gpu: X1, gpu_count: 1, price_per_hour_usd: 0.5, price_source: test, price_date: '2026-11'}\n"
    )
    monkeypatch.setenv("TRTLLM_OCI_SHAPES", str(custom))
    catalog = load_catalog()
    assert catalog.names() == ["VM.X.1"] and catalog.get("VM.X.1").price_per_hour_usd == 0.5


def test_shape_naming_an_undefined_gpu_is_rejected(tmp_path: Path) -> None:
    bad = tmp_path / "shapes.yaml"
    bad.write_text("gpus: {}\nshapes:\n  S: {gpu: Nope, gpu_count: 1, price_per_hour_usd: 1, price_source: x, price_date: y}\n")
    with pytest.raises(UnknownShapeError, match="'Nope'"):
        load_catalog(bad)


def test_gb200_shape_has_its_sourced_facts_no_price_and_an_arm64_host() -> None:
    shape = load_catalog().get("BM.GPU.GB200.4")
    assert (shape.gpu.name, shape.gpu_count, shape.gpu.compute_capability) == ("GB200", 4, "10.0")
    assert shape.gpu.memory_gib == pytest.approx(189471 / 1024, abs=0.01)
    assert shape.price_per_hour_usd is None and shape.price_date is None and "none found" in shape.price_source
    assert shape.price_text == "–" and shape.host_arch == "arm64"
    assert load_catalog().get("BM.GPU.H100.8").host_arch == "amd64"


def test_service_limit_names_are_only_the_ones_oracle_names() -> None:
    named = {n: s.service_limit_name for n, s in load_catalog().shapes.items() if s.service_limit_name}
    assert named == {"VM.GPU.A10.1": "ds-gpu-a10-count", "VM.GPU.A10.2": "ds-gpu-a10-count",
                     "BM.GPU.A10.4": "ds-gpu-a10-count", "BM.GPU4.8": "ds-gpu4-count"}


_GPU = "gpus:\n  X1: {memory_gib: 10, memory_bandwidth_gbs: 100, compute_capability: '9.0', fp16_tflops: 1}\n"


@pytest.mark.parametrize(("entry", "message"), [
    ("{gpu: X1, gpu_count: 1, price_per_hour_usd: 2, price_source: s}", "needs price_date"),
    ("{gpu: X1, gpu_count: 1, price_source: s, host_arch: x86}", "host_arch"),
    ("{gpu: X1, gpu_count: 1, price_source: s, service_limit_name: 'DS GPU'}", "service_limit_name"),
    ("{gpu: X1, gpu_count: 1}", "price_source"),
])
def test_a_bad_price_arch_or_limit_name_is_refused_naming_the_field(tmp_path: Path, entry: str, message: str) -> None:
    bad = tmp_path / "shapes.yaml"
    bad.write_text(_GPU + f"shapes:\n  S.1: {entry}\n")
    with pytest.raises(InputError, match=message):
        load_catalog(bad)
