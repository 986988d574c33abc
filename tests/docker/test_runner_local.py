"""run_steps_locally: the same contract as the container runner, with host processes (no engine needed)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from trtllm_oci.build.runner import (
    BuildOutOfMemoryError,
    Step,
    StepFailedError,
    StepLaunchError,
    StepTimeoutError,
    run_steps_locally,
)

PY = sys.executable


class Recorder:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.times: list[float] = []

    def __call__(self, line: str) -> None:
        self.lines.append(line)
        self.times.append(time.monotonic())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it no longer runs.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(") ", 1)[1][0] != "Z"


def test_env_cwd_and_live_ordered_output(tmp_path: Path):
    log = Recorder()
    code = (
        "import os, time; print('first'); print(os.getcwd()); print(os.environ['TLLM_LOG_LEVEL']); "
        "time.sleep(1.5); print('last')"
    )
    results = run_steps_locally(
        [Step(name="probe", argv=[PY, "-c", code])], {"TLLM_LOG_LEVEL": "WARNING"}, tmp_path, log
    )
    assert log.lines[1:] == ["first", str(tmp_path), "WARNING", "last"]
    # PYTHONUNBUFFERED is set, so 'first' arrives before the sleep ends.
    assert log.times[-1] - log.times[1] >= 1.0
    assert results[0].exit_code == 0


def test_env_without_inheritance(tmp_path: Path):
    log = Recorder()
    code = "import os; print(sorted(k for k in os.environ if k in ('HOME', 'ONLY')))"
    run_steps_locally(
        [Step(name="e", argv=[PY, "-c", code])], {"ONLY": "1"}, tmp_path, log, inherit_env=False
    )
    assert log.lines[-1] == "['ONLY']"


def test_failure_tail_and_stop(tmp_path: Path):
    code = "import sys\nfor i in range(1, 101): print(f'line {i}')\nsys.exit(4)"
    marker = tmp_path / "second-ran"
    steps = [
        Step(name="convert", argv=[PY, "-c", code]),
        Step(name="build", argv=[PY, "-c", f"open({str(marker)!r}, 'w')"]),
    ]
    with pytest.raises(StepFailedError) as info:
        run_steps_locally(steps, None, tmp_path, lambda _: None)
    assert type(info.value) is StepFailedError
    assert info.value.exit_code == 4
    assert info.value.tail_lines == [f"line {i}" for i in range(61, 101)]
    assert "exit code 4" in str(info.value)
    assert not marker.exists()


def test_oom_text_on_stderr(tmp_path: Path):
    code = "import sys; sys.stderr.write('torch.OutOfMemoryError: CUDA out of memory.\\n'); sys.exit(1)"
    with pytest.raises(BuildOutOfMemoryError) as info:
        run_steps_locally(
            [Step(name="quantize", argv=[PY, "-c", code])],
            None,
            tmp_path,
            lambda _: None,
            oom_advice=lambda: "try fp8 on 2 GPUs",
        )
    assert "CUDA out of memory" in str(info.value) and "try fp8 on 2 GPUs" in str(info.value)


def test_broken_advice_hook_does_not_hide_the_oom(tmp_path: Path):
    def broken() -> str:
        raise KeyError("shape")

    code = "print('CUDA error: out of memory'); raise SystemExit(1)"
    with pytest.raises(BuildOutOfMemoryError) as info:
        run_steps_locally([Step(name="b", argv=[PY, "-c", code])], None, tmp_path, lambda _: None, broken)
    assert "advice hook raised KeyError" in str(info.value)


def test_sigkill_is_reported_as_probable_oom(tmp_path: Path):
    code = "import os, signal; print('loading'); os.kill(os.getpid(), signal.SIGKILL)"
    with pytest.raises(BuildOutOfMemoryError) as info:
        run_steps_locally([Step(name="load", argv=[PY, "-c", code])], None, tmp_path, lambda _: None)
    assert info.value.exit_code == -9
    assert "OOM killer" in str(info.value)


def test_timeout_kills_the_whole_process_group(tmp_path: Path):
    pidfile = tmp_path / "child.pid"
    # The leader starts a grandchild (as mpirun starts ranks); both must die.
    code = (
        "import subprocess, sys, time\n"
        f"child = subprocess.Popen([{PY!r}, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pidfile)!r}, 'w').write(str(child.pid))\n"
        "print('spawned', flush=True)\n"
        "time.sleep(60)\n"
    )
    started = time.monotonic()
    with pytest.raises(StepTimeoutError) as info:
        run_steps_locally(
            [Step(name="hang", argv=[PY, "-c", code], timeout_s=1.5)], None, tmp_path, lambda _: None
        )
    assert time.monotonic() - started < 15
    assert info.value.tail_lines == ["spawned"]
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


def test_keyboard_interrupt_kills_the_step(tmp_path: Path):
    pidfile = tmp_path / "leader.pid"
    code = (
        f"import os, time; open({str(pidfile)!r}, 'w').write(str(os.getpid()))\n"
        "i = 0\n"
        "while True:\n    i += 1; print(f'tick {i}', flush=True); time.sleep(0.1)\n"
    )

    def interrupt(line: str) -> None:
        if line == "tick 2":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_steps_locally([Step(name="endless", argv=[PY, "-c", code])], None, tmp_path, interrupt)
    assert not _alive(int(pidfile.read_text()))


def test_missing_executable(tmp_path: Path):
    with pytest.raises(StepLaunchError, match="'trtllm-build-not-installed' not found"):
        run_steps_locally(
            [Step(name="b", argv=["trtllm-build-not-installed"])], None, tmp_path, lambda _: None
        )


def test_bad_arguments(tmp_path: Path):
    with pytest.raises(ValueError, match="does not exist"):
        run_steps_locally([Step(name="a", argv=["true"])], None, tmp_path / "nope", lambda _: None)
    with pytest.raises(ValueError, match="unique"):
        run_steps_locally(
            [Step(name="a", argv=["true"]), Step(name="a", argv=["true"])], None, tmp_path, print
        )
    with pytest.raises(ValueError, match="at least one"):
        run_steps_locally([], None, tmp_path, print)
