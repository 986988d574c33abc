"""A build step killed for memory is reported as such by more than Docker's OOMKilled flag: the memory
cgroup's own oom_kill counter (v1 and v2 layouts) and a SIGKILL under a memory limit."""

from __future__ import annotations

from pathlib import Path

import pytest

from trtllm_oci.build.runner import SIGKILL_EXIT, _oom_evidence, cgroup_oom_kill_count


def _proc(tmp_path: Path, pid: str, cgroup_lines: str) -> Path:
    proc = tmp_path / "proc"
    (proc / pid).mkdir(parents=True)
    (proc / pid / "cgroup").write_text(cgroup_lines)
    return proc


def test_cgroup_v2_memory_events(tmp_path):
    proc = _proc(tmp_path, "42", "0::/system.slice/docker-abc.scope\n")
    events = tmp_path / "sys" / "system.slice" / "docker-abc.scope"
    events.mkdir(parents=True)
    (events / "memory.events").write_text("low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n")
    assert cgroup_oom_kill_count(42, proc_root=proc, cgroup_root=tmp_path / "sys") == 2


def test_cgroup_v1_memory_oom_control(tmp_path):
    # Hybrid hosts list the unified hierarchy too; it has no memory.events there, the v1 controller answers.
    proc = _proc(tmp_path, "7", "12:memory:/docker/abc\n0::/docker/abc\n4:cpu,cpuacct:/docker/abc\n")
    control = tmp_path / "sys" / "memory" / "docker" / "abc"
    control.mkdir(parents=True)
    (control / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 1\n")
    assert cgroup_oom_kill_count(7, proc_root=proc, cgroup_root=tmp_path / "sys") == 1


def test_unreadable_cgroup_is_none_not_zero(tmp_path):
    assert cgroup_oom_kill_count(99, proc_root=tmp_path / "proc", cgroup_root=tmp_path / "sys") is None
    proc = _proc(tmp_path, "5", "0::/gone\n")
    assert cgroup_oom_kill_count(5, proc_root=proc, cgroup_root=tmp_path / "sys") is None


@pytest.mark.parametrize(
    ("exit_code", "docker_flag", "kills", "limit", "expected"),
    [
        (137, True, 0, None, "Docker State.OOMKilled"),
        (137, False, 1, None, "memory cgroup counted 1 OOM kill(s)"),
        (1, False, 2, None, "memory cgroup counted 2 OOM kill(s)"),  # a rank killed, its parent exited 1
        (137, False, 0, "16m", "SIGKILL (exit code 137) under mem_limit=16m"),
        (137, False, 0, None, "most likely by the host's OOM killer"),
        (2, False, 0, "16m", None),
    ],
)
def test_oom_evidence_uses_every_signal(exit_code, docker_flag, kills, limit, expected):
    evidence = _oom_evidence(exit_code, docker_flag, kills, limit)
    if expected is None:
        assert evidence is None
    else:
        assert expected in evidence


def test_sigkill_exit_code_is_128_plus_9():
    assert SIGKILL_EXIT == 137
