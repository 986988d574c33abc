"""Engines are for one CPU platform: TensorRT engines are not portable across platforms (TensorRT support matrix,
"Engine Portability": Linux x86-64 and Linux SBSA are separate ones), so a Grace host (BM.GPU.GB200.4, arm64)
gets engines built on arm64, keyed apart from the amd64 engines of the same GPU architecture."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from trtllm_oci.build.trtllm import cache_inputs
from trtllm_oci.cache.key import EngineCacheKey, cache_key, canonical_key_json
from trtllm_oci.errors import InputError

CONFIGS = Path(__file__).parents[1] / "data" / "hf_configs"
TRTLLM_OCI = Path(sys.executable).with_name("trtllm-oci")


def _key(**fields) -> EngineCacheKey:
    return EngineCacheKey(model_commit_sha="0" * 40, quantization="none", kv_cache_dtype="auto", tp=1, pp=1,
                          trtllm_version="1.2.1", image_digest="sha256:" + "1" * 64, gpu_arch="sm100", **fields)


def test_the_platform_keys_arm64_engines_apart_and_leaves_amd64_keys_as_they_were() -> None:
    amd64, arm64 = _key(), _key(host_arch="arm64")
    assert cache_key(amd64) == cache_key(_key(host_arch="amd64"))
    assert "host_arch" not in canonical_key_json(amd64)  # keys of engines cached before the field stay valid
    assert cache_key(arm64) != cache_key(amd64) and '"host_arch":"arm64"' in canonical_key_json(arm64)


def _dry_run_key(tmp_path: Path, *flags: str) -> str:
    model = tmp_path / "model"
    if not model.exists():
        model.mkdir()
        shutil.copy(CONFIGS / "llama-2-7b-hf.json", model / "config.json")
    result = subprocess.run([str(TRTLLM_OCI), "build", "--model", str(model), "--quant", "none", "--tp", "1",
                             "--pp", "1", "--trtllm-version", "1.2.1", *flags, "--dry-run", "--json"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["cache_key"]


def test_build_dry_run_keys_a_grace_shape_apart_from_the_same_gpu_on_x86(tmp_path) -> None:
    b200 = _dry_run_key(tmp_path, "--shape", "BM.GPU.B200.8")
    gb200 = _dry_run_key(tmp_path, "--shape", "BM.GPU.GB200.4")
    assert b200 != gb200  # both sm100
    assert _dry_run_key(tmp_path, "--gpu-arch", "sm100") == b200  # this amd64 machine builds for amd64


def test_a_real_build_of_arm64_engines_on_an_amd64_host_is_refused_before_any_step(tmp_path, monkeypatch) -> None:
    from trtllm_oci.build.host import BuildHost
    from trtllm_oci.build.trtllm import build_trtllm_engine, plan_steps
    from trtllm_oci.build_options import BuildLimits, BuildRequest
    from trtllm_oci.cache.local_store import LocalEngineStore
    from trtllm_oci.hub.snapshot import use_local_model

    monkeypatch.setattr("platform.machine", lambda: "x86_64")
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    shutil.copy(CONFIGS / "llama-2-7b-hf.json", model_dir / "config.json")
    (model_dir / "model.safetensors").write_bytes(b"\0" * 16)
    (model_dir / "tokenizer.json").write_text("{}")
    request = BuildRequest(model_commit_sha="0" * 40, trtllm_version="1.2.1", host_arch="arm64",
                           limits=BuildLimits(max_seq_len=2048, max_input_len=1024))
    host = BuildHost(runner="local", gpu_arch="sm100", image_digest="sha256:" + "2" * 64,
                     trtllm_src_dir=tmp_path / "src")
    store = LocalEngineStore(tmp_path / "cache")
    ran: list[object] = []
    monkeypatch.setattr("trtllm_oci.build.trtllm.run_steps_locally", lambda *a, **k: ran.append(a))
    with pytest.raises(InputError, match=r"for an arm64 host .* this build host is amd64: TensorRT engines are not "
                                         r"portable across platforms"):
        build_trtllm_engine(request, use_local_model(model_dir), "llama", store, host, lambda line: None)
    assert ran == []
    steps = plan_steps(request, "llama", host.workers, checkpoint_dtype="float16")
    assert store.lookup(cache_key(cache_inputs(request, steps, host.image_digest, "sm100", "arm64"))) is None
