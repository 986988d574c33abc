"""The build container sees the calibration set and the HF cache it was given, so an offline GPU host never
downloads cnn_dailymail at build time; the spec pins a Hub calibration set to a commit."""

from __future__ import annotations

import pytest

from trtllm_oci.build import trtllm as pipeline
from trtllm_oci.build.host import BuildHost
from trtllm_oci.release.artifact import build_request
from trtllm_oci.hub.snapshot import DownloadResult
from trtllm_oci.errors import SpecError, TrtllmOciError
from trtllm_oci.spec import parse_spec

SHA = "0" * 39 + "1"


def _spec(tmp_path, **quantization):
    """The build request of an engine release (the release layer makes it from the spec)."""
    return build_request(_release(tmp_path, **quantization), "c" * 40)


def _release(tmp_path, **quantization):
    return parse_spec({"model": {"local_dir": str(tmp_path / "model")}, "trtllm_version": "1.2.1",
                       "serving": {"backend": "tensorrt"}, "quantization": {"method": "fp8", **quantization}})


def _model(tmp_path) -> DownloadResult:
    (tmp_path / "model").mkdir(exist_ok=True)
    return DownloadResult(repo_id="local", requested_revision=None, commit_sha="c" * 40,
                          local_dir=tmp_path / "model", files=[], total_bytes=0, source="local")


def test_local_calibration_set_is_mounted_read_only_and_passed_to_quantize(tmp_path):
    calib = tmp_path / "cnn_dailymail"
    calib.mkdir()
    spec = _spec(tmp_path, calib_dataset={"local_dir": str(calib)})
    quantize = pipeline.plan_steps(spec, "llama", checkpoint_dtype="bfloat16")[0]
    assert quantize.argv[quantize.argv.index("--calib_dataset") + 1] == "/calib/cnn_dailymail"
    host = BuildHost(trtllm_src_dir=tmp_path, hf_home=tmp_path / "hf")
    (tmp_path / "hf").mkdir()
    checked = pipeline._checked_calibration_dir(spec)
    container = pipeline._container_spec("img", _model(tmp_path), tmp_path, host, spec, checked)
    mounts = {m.target: m for m in container.mounts}
    assert mounts["/calib/cnn_dailymail"].source == calib.resolve() and mounts["/calib/cnn_dailymail"].read_only
    assert mounts["/hf_home"].source == (tmp_path / "hf").resolve() and not mounts["/hf_home"].read_only
    assert container.environment == {"HF_HOME": "/hf_home", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    local = pipeline._host_paths(quantize.argv, tmp_path / "model", tmp_path / "w", None, spec, checked)
    assert local[local.index("--calib_dataset") + 1] == str(calib.resolve())


def test_without_hf_home_the_container_environment_is_untouched(tmp_path):
    spec = _spec(tmp_path)
    container = pipeline._container_spec("img", _model(tmp_path), tmp_path, BuildHost(trtllm_src_dir=tmp_path),
                                         spec, None)
    assert container.environment == {} and all(not m.target.startswith("/calib") for m in container.mounts)


def test_hub_calibration_set_needs_the_downloaded_copy(tmp_path):
    spec = _spec(tmp_path, calib_dataset={"hf_dataset": "abisee/cnn_dailymail", "revision": SHA})
    assert pipeline.container_calib_path(spec) == "/calib/cnn_dailymail"
    with pytest.raises(TrtllmOciError, match=r"abisee/cnn_dailymail@0+1.*download stage"):
        pipeline._checked_calibration_dir(spec)
    with pytest.raises(TrtllmOciError, match=r"does not exist"):
        pipeline._checked_calibration_dir(spec.model_copy(update={"calibration_dir": tmp_path / "missing"}))


@pytest.mark.parametrize(
    ("calib", "message"),
    [
        ({"hf_dataset": "abisee/cnn_dailymail", "revision": "main"}, r"must pin abisee/cnn_dailymail to a commit"),
        ({"hf_dataset": "abisee/cnn_dailymail"}, r"must pin"),
        ({}, r"exactly one of calib_dataset.local_dir or calib_dataset.hf_dataset"),
        ({"local_dir": "/d", "revision": SHA}, r"revision applies to hf_dataset only"),
        ({"hf_dataset": "not a repo", "revision": SHA}, r"not a Hugging Face dataset id"),
    ],
)
def test_calibration_spec_errors_name_the_field(tmp_path, calib, message):
    with pytest.raises(SpecError, match=message):
        _release(tmp_path, calib_dataset=calib)
