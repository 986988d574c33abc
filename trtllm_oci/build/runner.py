"""Run engine-build steps (argv lists) inside the TensorRT-LLM container or on the host.

Both runners share one contract: each step's output goes to `log` line by line while the step
runs, a non-zero exit raises `StepFailedError` carrying the exit code and the last lines, and a
failure that looks like running out of GPU or host memory raises `BuildOutOfMemoryError` with
the caller's advice attached. Nothing keeps running after a step returns or raises: containers
are removed and local process groups are killed, also on KeyboardInterrupt.

Container runner design: one container per step rather than one long-lived container plus
`exec`. A step's exit code then comes from `wait()` and a cgroup OOM kill shows in the
container's `State.OOMKilled`, which exec'd processes never report; a crashed step cannot leave
stray processes behind for the next one; and the per-step start cost (about a second) is noise
next to checkpoint conversion and engine builds that take minutes. Steps share state only
through the mounted directories, which is also how the later stages read the results.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import re
import shlex
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from trtllm_oci.errors import InputError, ProcessError

LogFn = Callable[[str], None]
OomAdvice = Callable[[], str]

TAIL_LINES = 40
RUNNER_LABEL = "ai.trtllm-oci.runner"
STEP_LABEL = "ai.trtllm-oci.step"

# Texts printed by CUDA, PyTorch and TensorRT when an allocation fails. Sources:
# "CUDA error: out of memory" / "CUDA out of memory" (PyTorch c10/cuda CUDACachingAllocator),
# "torch.OutOfMemoryError" / "torch.cuda.OutOfMemoryError" (PyTorch), "Error Code 2: OutOfMemory"
# and "Requested amount of GPU memory (...) could not be allocated" (TensorRT builder; seen in
# NVIDIA/TensorRT-LLM issues #346, #538, #1543), "cudaErrorMemoryAllocation" (CUDA runtime),
# "std::bad_alloc" / "MemoryError" (host RAM exhausted in C++ / Python).
OOM_PATTERNS: tuple[re.Pattern[str], ...] = tuple(
    re.compile(p)
    for p in (
        r"(?i)out of memory",
        r"Requested amount of GPU memory",
        r"OutOfMemory",
        r"cudaErrorMemoryAllocation",
        r"std::bad_alloc",
        r"\bMemoryError\b",
    )
)


class StepLaunchError(ProcessError):
    """A step never started: missing executable, missing image, daemon refused the container."""


def _rebuild_error(cls: type[Exception], state: dict[str, Any], message: str) -> Exception:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


class StepFailedError(ProcessError):
    """A step exited non-zero. `tail_lines` holds its last output lines."""

    # Prefect pickles task exceptions; the default reduce would call __init__ with the message only.
    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_error, (type(self), dict(self.__dict__), str(self)))

    def __init__(self, step: Step, exit_code: int, tail_lines: Sequence[str], detail: str = "") -> None:
        self.step = step
        self.exit_code = exit_code
        self.tail_lines = list(tail_lines)
        self.detail = detail
        super().__init__(self._compose())

    def _headline(self) -> str:
        return f"build step '{self.step.name}' failed with exit code {self.exit_code}"

    def _compose(self) -> str:
        parts = [f"{self._headline()}: {shlex.join(self.step.argv)}"]
        if self.detail:
            parts.append(self.detail)
        if self.tail_lines:
            parts.append(f"--- last {len(self.tail_lines)} output lines ---")
            parts.extend(self.tail_lines)
        else:
            parts.append("(the step printed nothing)")
        return "\n".join(parts)


class StepTimeoutError(StepFailedError):
    """A step ran longer than its `timeout_s` and was killed."""

    def _headline(self) -> str:
        return (
            f"build step '{self.step.name}' exceeded its timeout of {self.step.timeout_s:g}s and was killed "
            f"(exit code {self.exit_code}); raise Step.timeout_s if the step is just slow"
        )


class BuildOutOfMemoryError(StepFailedError):
    """A step failed because GPU or host memory ran out. `advice` carries the planner's alternatives."""

    def __init__(
        self,
        step: Step,
        exit_code: int,
        tail_lines: Sequence[str],
        evidence: str,
        advice: str = "",
    ) -> None:
        self.evidence = evidence
        self.advice = advice
        detail = f"out of memory: {evidence}"
        if advice:
            detail += f"\n{advice}"
        super().__init__(step, exit_code, tail_lines, detail)

    def _headline(self) -> str:
        return f"build step '{self.step.name}' ran out of memory (exit code {self.exit_code})"


class Step(BaseModel):
    """One command of the build pipeline, e.g. convert_checkpoint.py or trtllm-build."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(min_length=1)
    argv: list[str] = Field(min_length=1)
    timeout_s: float | None = Field(default=None, gt=0)

    @field_validator("argv")
    @classmethod
    def _argv_has_program(cls, argv: list[str]) -> list[str]:
        if not argv[0].strip():
            raise InputError(
                "argv[0] (the program) is empty; give the executable, e.g. ['trtllm-build', ...]"
            )
        return argv


class StepResult(BaseModel):
    name: str
    argv: list[str]
    exit_code: int
    duration_s: float
    tail_lines: list[str]


class BindMount(BaseModel):
    """A host directory bind-mounted into the container. `source` is a path on the Docker host."""

    model_config = ConfigDict(frozen=True)

    source: Path
    target: str
    read_only: bool = False

    @field_validator("source")
    @classmethod
    def _source_absolute(cls, source: Path) -> Path:
        if not source.is_absolute():
            raise InputError(
                f"mount source {str(source)!r} is relative; bind mounts need an absolute host path"
            )
        return source

    @field_validator("target")
    @classmethod
    def _target_absolute(cls, target: str) -> str:
        if not target.startswith("/"):
            raise InputError(f"mount target {target!r} must be an absolute path inside the container")
        return target


_USER_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]*)?$")
_DEVICE_ID_RE = re.compile(r"^(\d+|GPU-[0-9a-fA-F-]+|MIG-[0-9a-zA-Z/-]+)$")


class ContainerRunSpec(BaseModel):
    """How to run build steps in the TensorRT-LLM container.

    Defaults follow NVIDIA's run options for TensorRT-LLM containers,
    NVIDIA/TensorRT-LLM:docker/Makefile@01e246a (`DOCKER_RUN_OPTS ?= --rm -it --ipc=host
    --ulimit stack=67108864` plus `--ulimit memlock=-1` outside rootless mode, `--gpus=all`):
    ipc=host gives NCCL/MPI the host's /dev/shm for multi-GPU builds, memlock=-1 lets CUDA pin
    host memory, and the 64 MiB stack is what the TensorRT builder's deep recursion needs.
    Rootless Docker (and some CI sandboxes) cannot raise memlock: set `ulimits` accordingly.
    """

    model_config = ConfigDict(frozen=True)

    image: str = Field(min_length=1)
    gpus: Literal["all"] | list[str] | None = "all"
    ipc_mode: str | None = "host"
    # Only for ipc_mode != "host"; with the host IPC namespace the daemon ignores it.
    shm_size: str | None = None
    ulimits: dict[str, int | tuple[int, int]] = Field(
        default_factory=lambda: dict[str, int | tuple[int, int]](memlock=-1, stack=67108864)
    )
    mounts: list[BindMount] = Field(default_factory=list)
    environment: dict[str, str] = Field(default_factory=dict)
    user: str | None = None
    workdir: str | None = None
    # None = the daemon's default network. Checkpoint conversion and trtllm-build read only mounted
    # files, but quantize.py downloads its calibration set unless it is cached, so no default of "none".
    network_mode: str | None = None
    mem_limit: str | None = None
    entrypoint: list[str] | None = None
    pull_missing: bool = True

    @field_validator("gpus")
    @classmethod
    def _gpu_ids(cls, gpus: Literal["all"] | list[str] | None) -> Literal["all"] | list[str] | None:
        if isinstance(gpus, list):
            if not gpus:
                raise InputError(
                    "gpus=[] requests no GPU; use gpus=None for a CPU-only step or list device ids"
                )
            for device in gpus:
                if not _DEVICE_ID_RE.match(device):
                    raise InputError(
                        f"GPU device id {device!r} is not an index ('0'), a GPU UUID ('GPU-...') or a MIG id ('MIG-...')"
                    )
        return gpus

    @field_validator("user")
    @classmethod
    def _user_form(cls, user: str | None) -> str | None:
        if user is not None and not _USER_RE.match(user):
            raise InputError(f"user {user!r} must be 'uid', 'uid:gid' or 'name[:group]'")
        return user

    @field_validator("ulimits")
    @classmethod
    def _ulimit_names(cls, ulimits: dict[str, int | tuple[int, int]]) -> dict[str, int | tuple[int, int]]:
        known = {
            "core",
            "cpu",
            "data",
            "fsize",
            "locks",
            "memlock",
            "msgqueue",
            "nice",
            "nofile",
            "nproc",
            "rss",
            "rtprio",
            "rttime",
            "sigpending",
            "stack",
        }
        for name in ulimits:
            if name not in known:
                raise InputError(f"unknown ulimit {name!r}; known names: {', '.join(sorted(known))}")
        return ulimits

    @model_validator(mode="after")
    def _consistent(self) -> ContainerRunSpec:
        if self.shm_size is not None and self.ipc_mode == "host":
            raise InputError(
                f"shm_size={self.shm_size!r} has no effect with ipc_mode='host' (the host's /dev/shm is used); "
                "set ipc_mode=None to get a private /dev/shm of that size"
            )
        targets = [m.target.rstrip("/") or "/" for m in self.mounts]
        duplicates = sorted({t for t in targets if targets.count(t) > 1})
        if duplicates:
            raise InputError(
                f"several mounts share the container path(s) {duplicates}; each target must be unique"
            )
        return self

    @classmethod
    def for_engine_build(
        cls,
        image: str,
        model_dir: Path,
        work_dir: Path,
        output_dir: Path,
        **overrides: Any,
    ) -> ContainerRunSpec:
        """The usual layout: model read-only at /model, scratch at /work (also the cwd), engines to /output."""
        mounts = [
            BindMount(source=model_dir, target="/model", read_only=True),
            BindMount(source=work_dir, target="/work"),
            BindMount(source=output_dir, target="/output"),
        ]
        overrides.setdefault("workdir", "/work")
        return cls(image=image, mounts=mounts, **overrides)

    def create_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for docker-py `containers.create`, without image and command."""
        from docker.types import DeviceRequest, Mount, Ulimit

        device_requests = []
        # docker-py's DeviceRequest is the API form of `docker run --gpus`
        # (docker/docker-py:docker/types/containers.py DeviceRequest).
        if self.gpus == "all":
            device_requests.append(DeviceRequest(driver="nvidia", count=-1, capabilities=[["gpu"]]))
        elif isinstance(self.gpus, list):
            device_requests.append(
                DeviceRequest(driver="nvidia", device_ids=list(self.gpus), capabilities=[["gpu"]])
            )
        ulimits = []
        for name, value in self.ulimits.items():
            soft, hard = value if isinstance(value, tuple) else (value, value)
            ulimits.append(Ulimit(name=name, soft=soft, hard=hard))
        environment = {"PYTHONUNBUFFERED": "1", **self.environment}
        kwargs: dict[str, Any] = {
            "device_requests": device_requests or None,
            "ulimits": ulimits or None,
            "mounts": [
                Mount(target=m.target, source=str(m.source), type="bind", read_only=m.read_only)
                for m in self.mounts
            ],
            "environment": environment,
            "detach": True,
        }
        optional = {
            "ipc_mode": self.ipc_mode,
            "shm_size": self.shm_size,
            "user": self.user,
            "working_dir": self.workdir,
            "network_mode": self.network_mode,
            "mem_limit": self.mem_limit,
            # No swap on top of mem_limit: a TensorRT build that swaps never finishes in useful time.
            "memswap_limit": self.mem_limit,
            "entrypoint": self.entrypoint,
        }
        kwargs.update({k: v for k, v in optional.items() if v is not None})
        return kwargs


class _LineSplitter:
    """Turns arbitrary byte chunks into complete text lines; '\\r' (progress bars) also ends a line."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""

    def feed(self, chunk: bytes) -> list[str]:
        text = self._pending + self._decoder.decode(chunk)
        # A trailing '\r' may be the first half of '\r\n'; keep it until the next chunk.
        lines = re.split(r"\r\n|\r(?!\Z)|\n", text)
        self._pending = lines.pop()
        return lines

    def flush(self) -> list[str]:
        text = self._pending + self._decoder.decode(b"", final=True)
        self._pending = ""
        text = text.rstrip("\r")
        return [text] if text else []


class _OutputSink:
    """Forwards lines to the caller's log, remembers the tail and the first out-of-memory line."""

    def __init__(self, log: LogFn, tail: int = TAIL_LINES) -> None:
        self._log = log
        self.tail: deque[str] = deque(maxlen=tail)
        self.oom_line: str | None = None
        self._splitter = _LineSplitter()

    def _emit(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.tail.append(line)
            if self.oom_line is None and any(p.search(line) for p in OOM_PATTERNS):
                self.oom_line = line
            self._log(line)

    def feed(self, chunk: bytes) -> None:
        self._emit(self._splitter.feed(chunk))

    def close(self) -> None:
        self._emit(self._splitter.flush())


def _advice_text(oom_advice: OomAdvice | None) -> str:
    if oom_advice is None:
        return ""
    try:
        return oom_advice()
    except Exception as exc:  # the OOM report must not be masked by a broken advice hook
        return f"(no alternatives: the advice hook raised {type(exc).__name__}: {exc})"


def _raise_for_failure(
    step: Step,
    exit_code: int,
    sink: _OutputSink,
    oom_advice: OomAdvice | None,
    killed_for_memory: str | None = None,
) -> None:
    tail = list(sink.tail)
    evidence = killed_for_memory or (f"output says {sink.oom_line.strip()!r}" if sink.oom_line else None)
    if evidence:
        raise BuildOutOfMemoryError(step, exit_code, tail, evidence, _advice_text(oom_advice))
    raise StepFailedError(step, exit_code, tail)


# --------------------------------------------------------------------------------------------
# Container runner
# --------------------------------------------------------------------------------------------


def _docker_client(docker_client_or_host: Any) -> tuple[Any, bool]:
    import docker

    if docker_client_or_host is None:
        return docker.from_env(), True
    if isinstance(docker_client_or_host, str):
        return docker.DockerClient(base_url=docker_client_or_host), True
    return docker_client_or_host, False


def _ensure_image(client: Any, image: str, pull_missing: bool, log: LogFn) -> None:
    import docker.errors

    try:
        client.images.get(image)
        return
    except docker.errors.ImageNotFound:
        pass
    if not pull_missing:
        raise StepLaunchError(
            f"image {image!r} is not present on the Docker engine {client.api.base_url} and pull_missing=False; "
            f"run `docker pull {image}` there first"
        )
    log(f"pulling {image} (not present on the engine)")
    from docker.utils import parse_repository_tag

    repository, tag = parse_repository_tag(image)
    seen: set[tuple[str, str]] = set()
    try:
        for event in client.api.pull(repository, tag=tag or "latest", stream=True, decode=True):
            if "error" in event:
                raise StepLaunchError(f"pulling image {image!r} failed: {event['error']}")
            key = (event.get("id", ""), event.get("status", ""))
            if key not in seen and event.get("status") not in ("Downloading", "Extracting", "Waiting"):
                seen.add(key)
                log(" ".join(x for x in key if x))
    except docker.errors.APIError as exc:
        raise StepLaunchError(f"pulling image {image!r} failed: {exc.explanation or exc}") from exc


SIGKILL_EXIT = 128 + signal.SIGKILL  # what Docker and shells report for a process killed by SIGKILL


def cgroup_oom_kill_count(pid: int | str = "self", proc_root: Path = Path("/proc"),
                          cgroup_root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """The oom_kill counter of the memory cgroup `pid` is in, or None where it cannot be read.

    cgroup v2: `oom_kill` of memory.events, "the number of processes belonging to this cgroup killed by any
    kind of OOM killer" (kernel Documentation/admin-guide/cgroup-v2.rst), so a host-wide OOM kill of a build
    step counts too; cgroup v1: `oom_kill` of memory.oom_control (kernel >= 4.13).
    """
    try:
        lines = (proc_root / str(pid) / "cgroup").read_text().splitlines()
    except OSError:
        return None
    candidates = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        relative = path.lstrip("/")
        if controllers == "":
            candidates.append(cgroup_root / relative / "memory.events")
        elif "memory" in controllers.split(","):
            candidates.append(cgroup_root / "memory" / relative / "memory.oom_control")
    for candidate in candidates:
        try:
            for entry in candidate.read_text().splitlines():
                key, _, value = entry.partition(" ")
                if key == "oom_kill" and value.strip().isdigit():
                    return int(value)
        except OSError:
            continue
    return None


class _CgroupOomWatch:
    """Polls a running container's cgroup oom_kill counter (the cgroup is removed as soon as it exits, so
    it can only be read while it runs). Reads nothing when the engine is remote or the pid is not ours."""

    def __init__(self, container: Any, interval_s: float = 0.05) -> None:
        self._container = container
        self._interval_s = interval_s
        self._stop = threading.Event()
        self.first: int | None = None
        self.last: int | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> _CgroupOomWatch:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self._container.reload()
            pid = self._container.attrs.get("State", {}).get("Pid") or 0
        except Exception:  # noqa: BLE001 - a watcher must never break the step it watches
            return
        while pid and not self._stop.is_set():
            count = cgroup_oom_kill_count(pid)
            if count is None:
                return
            if self.first is None:
                self.first = count
            self.last = count
            self._stop.wait(self._interval_s)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1)

    @property
    def kills(self) -> int:
        return 0 if self.first is None or self.last is None else self.last - self.first


def _oom_evidence(exit_code: int, docker_oom_killed: bool, cgroup_kills: int, mem_limit: str | None) -> str | None:
    """Why a failed container step looks like an out-of-memory kill, or None. Docker's State.OOMKilled is
    only one signal: it is set late or not at all on some engines (cgroup v1, dockerd 20.10), and never for a
    host-wide OOM kill, so the cgroup's own counter and a SIGKILL under a memory limit count as well."""
    if docker_oom_killed:
        return "the container was OOM-killed (Docker State.OOMKilled; host RAM or mem_limit exhausted)"
    if cgroup_kills > 0:
        return (f"the container was OOM-killed: its memory cgroup counted {cgroup_kills} OOM kill(s) "
                f"(oom_kill in memory.events / memory.oom_control; exit code {exit_code})")
    if exit_code == SIGKILL_EXIT and mem_limit is not None:
        return (f"the container was OOM-killed: SIGKILL (exit code {exit_code}) under mem_limit={mem_limit}, "
                "which is what the cgroup OOM killer does")
    if exit_code == SIGKILL_EXIT:
        return (f"the container's process was killed by SIGKILL (exit code {exit_code}) with no timeout, most "
                "likely by the host's OOM killer (check `dmesg` on the Docker host)")
    return None


def _oom_killed(container: Any, settle_s: float = 1.0) -> bool:
    """Whether the cgroup OOM killer fired in the container.

    The engine learns of the OOM event separately from the exit event and may record
    `State.OOMKilled` shortly after `wait()` returns (observed with dockerd 20.10 on cgroup v1),
    so a failed container is re-inspected for up to `settle_s`.
    """
    deadline = time.monotonic() + settle_s
    while True:
        container.reload()
        if container.attrs.get("State", {}).get("OOMKilled"):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)


def _run_container_step(
    client: Any, step: Step, spec: ContainerRunSpec, log: LogFn, oom_advice: OomAdvice | None
) -> StepResult:
    import docker.errors

    sink = _OutputSink(log)
    started = time.monotonic()
    labels = {RUNNER_LABEL: "1", STEP_LABEL: step.name}
    try:
        container = client.containers.create(
            spec.image, command=step.argv, labels=labels, **spec.create_kwargs()
        )
    except docker.errors.APIError as exc:
        raise StepLaunchError(
            f"the Docker engine refused to create the container for step '{step.name}' from {spec.image!r}: "
            f"{exc.explanation or exc}"
        ) from exc
    timed_out = threading.Event()
    timer: threading.Timer | None = None
    watch: _CgroupOomWatch | None = None
    try:
        try:
            container.start()
        except docker.errors.APIError as exc:
            raise StepLaunchError(
                f"step '{step.name}' could not start in {spec.image!r}: {exc.explanation or exc}"
            ) from exc
        watch = _CgroupOomWatch(container).start()
        if step.timeout_s is not None:

            def _kill_on_timeout() -> None:
                timed_out.set()
                try:
                    container.kill()
                except docker.errors.APIError:
                    timed_out.clear()  # it exited on its own just before the deadline

            timer = threading.Timer(step.timeout_s, _kill_on_timeout)
            timer.daemon = True
            timer.start()
        # follow=True streams chunks as the process writes them and ends when the container exits.
        for chunk in container.logs(stream=True, follow=True, stdout=True, stderr=True):
            sink.feed(chunk)
        sink.close()
        exit_code = int(container.wait()["StatusCode"])
        watch.stop()
        oom_killed = _oom_killed(container) if exit_code != 0 else False
    finally:
        if watch is not None:
            watch.stop()
        if timer is not None:
            timer.cancel()
        with contextlib.suppress(docker.errors.NotFound):
            container.remove(force=True)
    duration = time.monotonic() - started
    if timed_out.is_set():
        raise StepTimeoutError(step, exit_code, list(sink.tail))
    if exit_code != 0:
        killed = _oom_evidence(exit_code, oom_killed, watch.kills if watch else 0, spec.mem_limit)
        _raise_for_failure(step, exit_code, sink, oom_advice, killed)
    return StepResult(
        name=step.name, argv=step.argv, exit_code=exit_code, duration_s=duration, tail_lines=list(sink.tail)
    )


def run_steps_in_container(
    steps: Sequence[Step],
    spec: ContainerRunSpec,
    docker_client_or_host: Any,
    log: LogFn,
    oom_advice: OomAdvice | None = None,
) -> list[StepResult]:
    """Run `steps` in order, each in a fresh container made from `spec`; stop at the first failure.

    `docker_client_or_host` is a docker-py `DockerClient`, a DOCKER_HOST-style URL, or None for
    the environment's engine. Bind-mount sources are paths on the engine's host.
    """
    if not steps:
        raise InputError("no build steps given; pass at least one Step")
    names = [s.name for s in steps]
    if len(set(names)) != len(names):
        raise InputError(f"step names must be unique, got {names}")
    client, owned = _docker_client(docker_client_or_host)
    try:
        _ensure_image(client, spec.image, spec.pull_missing, log)
        results = []
        for step in steps:
            log(f"=== step {step.name}: {shlex.join(step.argv)}")
            results.append(_run_container_step(client, step, spec, log, oom_advice))
        return results
    finally:
        if owned:
            client.close()


# --------------------------------------------------------------------------------------------
# Local runner (tensorrt_llm installed on the host)
# --------------------------------------------------------------------------------------------

_KILL_GRACE_S = 10.0


def _kill_group(proc: subprocess.Popen[bytes], grace_s: float = _KILL_GRACE_S) -> None:
    """SIGTERM the step's process group (mpirun and its ranks too), then SIGKILL after `grace_s`."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _run_local_step(
    step: Step, env: Mapping[str, str], cwd: Path, log: LogFn, oom_advice: OomAdvice | None
) -> StepResult:
    sink = _OutputSink(log)
    started = time.monotonic()
    oom_kills_before = cgroup_oom_kill_count()
    try:
        # start_new_session: the step gets its own process group, so a kill reaches mpirun's children.
        proc = subprocess.Popen(
            step.argv,
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except FileNotFoundError as exc:
        raise StepLaunchError(
            f"step '{step.name}': executable {step.argv[0]!r} not found (PATH={env.get('PATH', '')!r}); "
            "install tensorrt_llm on this host or run the steps with run_steps_in_container"
        ) from exc
    except PermissionError as exc:
        raise StepLaunchError(f"step '{step.name}': {step.argv[0]!r} is not executable: {exc}") from exc
    timed_out = threading.Event()
    timer: threading.Timer | None = None
    if step.timeout_s is not None:

        def _kill_on_timeout() -> None:
            if proc.poll() is None:
                timed_out.set()
                _kill_group(proc)

        timer = threading.Timer(step.timeout_s, _kill_on_timeout)
        timer.daemon = True
        timer.start()
    assert proc.stdout is not None
    try:
        fd = proc.stdout.fileno()
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            sink.feed(chunk)
        sink.close()
        exit_code = proc.wait()
    except BaseException:
        _kill_group(proc)
        raise
    finally:
        if timer is not None:
            timer.cancel()
        proc.stdout.close()
    # The leader exited; kill what it left running in its group (e.g. orphaned MPI ranks).
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    duration = time.monotonic() - started
    if timed_out.is_set():
        raise StepTimeoutError(step, exit_code, list(sink.tail))
    if exit_code != 0:
        killed = None
        oom_kills_after = cgroup_oom_kill_count()
        if oom_kills_before is not None and oom_kills_after is not None and oom_kills_after > oom_kills_before:
            killed = (f"the memory cgroup this build runs in counted {oom_kills_after - oom_kills_before} OOM "
                      f"kill(s) during the step (oom_kill in memory.events / memory.oom_control)")
        elif exit_code == -signal.SIGKILL:
            killed = "the process was killed by SIGKILL, most likely by the kernel OOM killer (check `dmesg`)"
        _raise_for_failure(step, exit_code, sink, oom_advice, killed)
    return StepResult(
        name=step.name, argv=step.argv, exit_code=exit_code, duration_s=duration, tail_lines=list(sink.tail)
    )


def run_steps_locally(
    steps: Sequence[Step],
    env: Mapping[str, str] | None,
    cwd: Path,
    log: LogFn,
    oom_advice: OomAdvice | None = None,
    inherit_env: bool = True,
) -> list[StepResult]:
    """Run `steps` in order as host processes in `cwd`; stop at the first failure.

    `env` is added to the current environment (or replaces it when `inherit_env=False`).
    A negative exit code means the process died from that signal.
    """
    if not steps:
        raise InputError("no build steps given; pass at least one Step")
    names = [s.name for s in steps]
    if len(set(names)) != len(names):
        raise InputError(f"step names must be unique, got {names}")
    cwd = Path(cwd)
    if not cwd.is_dir():
        raise InputError(f"working directory {str(cwd)!r} does not exist; create it before running the steps")
    full_env = {**(os.environ if inherit_env else {}), "PYTHONUNBUFFERED": "1", **(env or {})}
    results = []
    for step in steps:
        log(f"=== step {step.name}: {shlex.join(step.argv)}")
        results.append(_run_local_step(step, full_env, cwd, log, oom_advice))
    return results
