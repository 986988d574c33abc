"""`trtllm-oci serve R` as a user runs it: serves until SIGTERM, then stops Triton and exits cleanly."""

from __future__ import annotations

import os
import signal
import socket
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


def _children(pid: int) -> list[tuple[int, str]]:
    """(pid, command name) of the processes whose parent is `pid` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name, rest = text[text.index("(") + 1:text.rindex(")")], text[text.rindex(")") + 2:].split()
        if int(rest[1]) == pid:
            found.append((int(stat.parent.name), name))
    return found


def _in_group(pgid: int) -> list[int]:
    """Live processes of the process group `pgid` (tritonserver leads its own group with its stubs)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2:].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def test_serve_exits_nonzero_within_seconds_when_tritonserver_dies(tiny_model_dir: Path, tmp_path: Path) -> None:
    options = RepoOptions(trtllm_version="1.2.1", backend="reference", streaming=True, triton_max_batch_size=4)
    assemble_repository(None, tiny_model_dir, tmp_path / "repo", options, hf_model_dir=tiny_model_dir)
    proc = subprocess.Popen(
        [sys.executable, "-m", "trtllm_oci.cli", "serve", str(tmp_path / "repo"), "--http-port", str(free_port()),
         "--grpc-port", str(free_port()), "--metrics-port", str(free_port()), "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy(),
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("serving "), first + (proc.stderr.read() if proc.stderr else "")
        tritons = [pid for pid, name in _children(proc.pid) if name.startswith("tritonserver")]
        assert len(tritons) == 1, _children(proc.pid)
        os.kill(tritons[0], signal.SIGKILL)
        killed_at = time.monotonic()
        out, err = proc.communicate(timeout=60)
        assert time.monotonic() - killed_at < 10, "serve kept running after tritonserver died"
        assert proc.returncode == 2, (out, err)
        assert "tritonserver was killed by signal 9 while serving" in err and "Full log:" in err
        time.sleep(0.5)
        assert _in_group(tritons[0]) == [], "the python-backend stubs outlived serve"
    finally:
        if proc.poll() is None:
            proc.kill()


def test_serve_reports_a_port_in_use_before_starting_triton(tmp_path: Path) -> None:
    (tmp_path / "repo" / "model_repository").mkdir(parents=True)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        start = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "trtllm_oci.cli", "serve", str(tmp_path / "repo"), "--http-port", str(port),
             "--grpc-port", str(free_port()), "--metrics-port", str(free_port())],
            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"HTTP port {port} is already in use" in result.stderr and "--http-port" in result.stderr
    assert time.monotonic() - start < 30
    assert "tritonserver" not in result.stderr  # it was never started, so it logged nothing


def test_serve_refuses_one_port_for_two_endpoints(tmp_path: Path) -> None:
    (tmp_path / "repo" / "model_repository").mkdir(parents=True)
    port = str(free_port())
    result = subprocess.run([sys.executable, "-m", "trtllm_oci.cli", "serve", str(tmp_path / "repo"),
                             "--http-port", port, "--grpc-port", port], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and f"ports are both {port}" in result.stderr
