"""`trtllm-oci serve R` as a user runs it: serves until SIGTERM, then stops Triton and exits cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from trtllm_oci.repo.assemble import RepoOptions, assemble_repository
from trtllm_oci.serving.local import free_port

# The installed console script, as a user runs it (the venv's bin beside this interpreter).
TRTLLM_OCI = Path(sys.executable).with_name("trtllm-oci")

pytestmark = pytest.mark.triton


def test_serve_until_sigterm(tiny_model_dir: Path, tmp_path: Path) -> None:
    options = RepoOptions(trtllm_version="1.2.1", backend="reference", streaming=True, triton_max_batch_size=4)
    assemble_repository(None, tiny_model_dir, tmp_path / "repo", options, hf_model_dir=tiny_model_dir)
    port = free_port()
    proc = subprocess.Popen(
        [str(TRTLLM_OCI), "serve", str(tmp_path / "repo"), "--http-port", str(port),
         "--grpc-port", str(free_port()), "--metrics-port", str(free_port()), "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy(),
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("serving ") and f"127.0.0.1:{port}" in first, first + proc.stderr.read()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready", timeout=10) as response:
            assert response.status == 200
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert "stopped" in out
        time.sleep(0.5)
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready", timeout=2)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_serve_reports_a_missing_repository(tmp_path: Path) -> None:
    result = subprocess.run([str(TRTLLM_OCI), "serve", str(tmp_path / "nope")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "repo assemble" in result.stderr
