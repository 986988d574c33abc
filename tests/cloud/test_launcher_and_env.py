"""The serving image's launcher: a short cmd at any world size, the same argv, in the foreground."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cloud.conftest import make_request
from trtllm_oci.cloud import limits
from trtllm_oci.cloud.deployment import build_environment_variables, validate_request
from trtllm_oci.cloud.errors import DeploymentLimitError
from trtllm_oci.image.build import SERVING_CONTEXT
from trtllm_oci.release.deployment import deployment_request
from trtllm_oci.serving.launch import deploy_cmd, launch_argv, linked_cmd, parse_args, server_argv
from trtllm_oci.spec import load_spec

LAUNCHER = SERVING_CONTEXT / "trtllm_oci_launch.py"
EXAMPLE = Path(__file__).parents[2] / "examples" / "release-oci-llama2-13b.yaml"
REPO = "/opt/ds/model/deployed_model/repository/model_repository"


def _bytes(argv: list[str]) -> int:
    return len(json.dumps(argv, separators=(",", ":")).encode())


def test_world_size_8_fits_the_cmd_limit_with_room_to_spare():
    expanded = launch_argv(REPO, 8, http_port=8000, grpc_port=8001, metrics_port=8002)
    assert _bytes(expanded) >= limits.CMD_ENTRYPOINT_MAX_BYTES  # why the launcher exists
    cmd = deploy_cmd(REPO, 8, links={"engine": "/opt/ds/model/deployed_model/" + "p" * 120},
                     serving_root="/tmp/trtllm-oci/serving")
    assert _bytes(cmd) < limits.CMD_ENTRYPOINT_MAX_BYTES // 3
    validate_request(make_request(cmd=cmd, world_size=8, shape="BM.GPU.H100.8"))


def test_the_image_runs_exactly_the_argv_launch_argv_builds():
    cmd = deploy_cmd(REPO, 8, http_port=9000, grpc_port=9001, metrics_port=9002)
    assert cmd[:2] == ["python3", "/opt/trtllm_oci/launch.py"]
    assert server_argv(parse_args(cmd[2:])) == launch_argv(REPO, 8, http_port=9000, grpc_port=9001, metrics_port=9002)


def test_a_release_of_world_size_8_passes_the_service_limits():
    spec = load_spec(EXAMPLE)
    spec = spec.model_copy(update={"parallelism": spec.parallelism.model_copy(update={"tp": 8}),
                                   "target": spec.target.model_copy(update={"shape": "BM.GPU.H100.8"})})
    req = deployment_request(spec, artifact_size_bytes=130 * 10**9)
    validate_request(req.model_copy(update={"image_digest": "sha256:" + "a" * 64}))
    assert build_environment_variables(req)["SHM_SIZE"] == "10g"


def _fake_bin(tmp_path: Path, name: str, code: int) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / name
    script.write_text(f'#!/bin/sh\necho "$0 $*" > {tmp_path}/ran\necho $$ >> {tmp_path}/ran\nexit {code}\n')
    script.chmod(0o755)
    return bin_dir


def test_the_launcher_becomes_the_server_and_returns_its_exit_code(tmp_path):
    bin_dir = _fake_bin(tmp_path, "mpirun", 3)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    proc = subprocess.Popen([sys.executable, str(LAUNCHER), "--model-repository", "/r", "--world-size", "2"], env=env)
    assert proc.wait(timeout=30) == 3  # mpirun's own exit code: nothing ran on after it
    line, pid = (tmp_path / "ran").read_text().splitlines()
    assert int(pid) == proc.pid  # exec, not a child: the container's main process is the server
    assert line.startswith(f"{bin_dir}/mpirun --allow-run-as-root -n 1 /opt/tritonserver/bin/tritonserver")


def test_links_are_checked_before_the_server_starts(tmp_path):
    engine = tmp_path / "objects" / "engine-1"
    engine.mkdir(parents=True)
    root = tmp_path / "serving"
    ok = subprocess.run([sys.executable, str(LAUNCHER), "--model-repository", "/r", "--serving-root", str(root),
                         "--link", f"engine={engine}", "--tritonserver", "/bin/true"], capture_output=True, text=True)
    assert ok.returncode == 0 and os.readlink(root / "engine") == str(engine)
    missing = subprocess.run([sys.executable, str(LAUNCHER), "--model-repository", "/r", "--serving-root",
                              str(tmp_path / "s2"), "--link", f"tokenizer={tmp_path}/nope"], capture_output=True,
                             text=True)
    assert missing.returncode == 2 and "tokenizer" in missing.stderr and "does not exist" in missing.stderr


def test_the_launcher_links_the_serving_root_then_becomes_the_command_after_the_dashes(tmp_path):
    """A checkpoint by reference: trtllm-serve runs on the linked root, in the foreground (exec), with its argv as
    given; a missing target stops it before the command starts."""
    bin_dir = _fake_bin(tmp_path, "trtllm-serve", 4)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    checkpoint = tmp_path / "objects" / "engine-1"
    checkpoint.mkdir(parents=True)
    root = tmp_path / "serving"
    cmd = linked_cmd(["trtllm-serve", f"{root}/llama-1b", "--host", "0.0.0.0"], links={"llama-1b": str(checkpoint)},
                     serving_root=str(root))
    assert cmd[:2] == ["python3", "/opt/trtllm_oci/launch.py"] and cmd[cmd.index("--") + 1] == "trtllm-serve"
    assert server_argv(parse_args(cmd[2:])) == ["trtllm-serve", f"{root}/llama-1b", "--host", "0.0.0.0"]
    proc = subprocess.Popen([sys.executable, str(LAUNCHER), *cmd[2:]], env=env)
    assert proc.wait(timeout=30) == 4
    line, pid = (tmp_path / "ran").read_text().splitlines()
    assert int(pid) == proc.pid and line == f"{bin_dir}/trtllm-serve {root}/llama-1b --host 0.0.0.0"
    assert os.readlink(root / "llama-1b") == str(checkpoint)
    (tmp_path / "ran").unlink()
    missing = subprocess.run([sys.executable, str(LAUNCHER), "--serving-root", str(tmp_path / "s2"), "--link",
                              f"llama-1b={tmp_path}/nope", "--", "trtllm-serve", "x"], env=env, capture_output=True,
                             text=True)
    assert missing.returncode == 2 and "does not exist" in missing.stderr and not (tmp_path / "ran").exists()


@pytest.mark.parametrize("argv", [["--model-repository", "/r", "--", "trtllm-serve", "x"], ["--"], []])
def test_the_launcher_takes_triton_or_a_command_not_both_nor_neither(argv):
    with pytest.raises(SystemExit):
        parse_args(argv)


@pytest.mark.parametrize("world_size, shm", [(1, 5), (2, 6), (4, 8), (8, 10)])
def test_shm_size_scales_with_the_world_size(world_size, shm):
    assert limits.shm_size_gb(world_size) == shm
    assert build_environment_variables(make_request(world_size=world_size))["SHM_SIZE"] == f"{shm}g"


def test_extra_env_reaches_the_container_and_may_set_shm_size():
    env = build_environment_variables(make_request(extra_env={"NCCL_DEBUG": "INFO", "SHM_SIZE": "32g"}))
    assert env["NCCL_DEBUG"] == "INFO" and env["SHM_SIZE"] == "32g"
    with pytest.raises(DeploymentLimitError, match="derives from the request"):
        build_environment_variables(make_request(extra_env={"MODEL_DEPLOY_PREDICT_ENDPOINT": "/x"}))


@pytest.mark.parametrize("name", ["../escape", "a//b", "a/./b", "/abs", "a/"])
def test_a_link_name_must_stay_inside_the_serving_root(tmp_path, name):
    target = tmp_path / "target"
    target.write_text("x")
    ran = subprocess.run([sys.executable, str(LAUNCHER), "--model-repository", "/r", "--serving-root",
                          str(tmp_path / "serving"), "--link", f"{name}={target}", "--tritonserver", "/bin/true"],
                         capture_output=True, text=True)
    assert ran.returncode == 2 and "plain relative path" in ran.stderr
    assert not (tmp_path / "escape").exists()
