"""Every stage that touches the Hub sends the same token, and every path derives from the settings: the
plan stage reads a gated model's config.json with the `hf-token` Secret block the download stage uses, and
`trtllm-oci build` downloads where the flows do even when TRTLLM_OCI_CACHE points elsewhere."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import huggingface_hub
import pytest

from tests.standins.hf_hub import HfHubStandIn, StandInRepo

TOKEN = "hf_SecretBlockTokenAbcdefghijklmn"
SHA = "c" * 40


@pytest.fixture(scope="module")
def gated_hub(tiny_model_dir: Path) -> Iterator[HfHubStandIn]:
    files = {p.name: p.read_bytes() for p in tiny_model_dir.iterdir() if p.is_file()}
    with HfHubStandIn(valid_tokens={TOKEN}) as hub:
        hub.add_repo(StandInRepo("acme/gated-tiny", {SHA: files}, refs={"main": SHA}, gated="manual",
                                 authorized_tokens={TOKEN}))
        hub.add_repo(StandInRepo("acme/open-tiny", {SHA: files}, refs={"main": SHA}))
        yield hub


@pytest.mark.prefect
def test_the_plan_stage_reads_a_gated_config_with_the_secret_block_token(
        prefect_api: str, gated_hub: HfHubStandIn, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from prefect.blocks.system import Secret

    from trtllm_oci.flows.plan import plan
    from trtllm_oci.spec import parse_spec

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", gated_hub.endpoint)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    Secret(value=TOKEN).save("hf-token", overwrite=True)
    try:
        spec = parse_spec({"model": {"hf_repo": "acme/gated-tiny", "revision": SHA},
                           "build": {"max_seq_len": 512, "max_input_len": 256},  # the tiny model's context
                           "target": {"kind": "local", "gpu_shape": "VM.GPU.A10.1"}})
        result = plan(spec)
    finally:
        Secret.delete("hf-token")
    assert result is not None and result.fits
    config_requests = gated_hub.requests_matching("/acme/gated-tiny/resolve/")
    assert config_requests and all(r.authenticated for r in config_requests)


def test_cli_build_downloads_to_the_home_models_dir_when_the_cache_is_elsewhere(
        gated_hub: HfHubStandIn, tmp_path: Path) -> None:
    home, cache = tmp_path / "home", tmp_path / "elsewhere" / "engines"
    env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "PATH")}
    env.update(PATH=os.environ["PATH"], TRTLLM_OCI_HOME=str(home), TRTLLM_OCI_CACHE=str(cache),
               HF_ENDPOINT=gated_hub.endpoint, HF_HUB_OFFLINE="0", HF_HOME=str(tmp_path / "hf-home"))
    trtllm_oci = Path(sys.executable).with_name("trtllm-oci")
    # No GPU here: the build stops after the download with an error that names the fix.
    # Limits within the tiny model's 512-token context: a longer max_seq_len is refused before the download.
    done = subprocess.run([str(trtllm_oci), "build", "--model", "acme/open-tiny", "--quant", "none", "--tp", "1",
                           "--pp", "1", "--max-seq-len", "512", "--max-input-len", "256", "--runner", "local"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert "no NVIDIA GPU found" in done.stderr
    assert (home / "models" / "acme--open-tiny" / SHA / "config.json").is_file()
    assert not (cache.parent / "models").exists()
