"""Start an OpenAI-compatible server for a Hugging Face checkpoint: trtllm-serve, or the CPU smoke server.

`choose_openai_server` picks trtllm-serve where TensorRT-LLM is installed and the CPU OpenAI smoke server
(`trtllm_oci.serving.openai_app`, labelled "CPU OpenAI smoke server (not TensorRT-LLM)") otherwise, and says
why. `start_openai_server` runs the chosen one as a subprocess on a port, keeps its log (a file, a tail in
memory, and an optional callback per line), waits for `GET /health` to answer 200 and `/v1/models` to name
the served model, and returns a handle that stops it cleanly (SIGTERM to its process group, SIGKILL after a
grace period). A port already in use, a server that exits during startup, and one that never gets healthy
are each a clear error with the log's last lines.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import IO, Literal

from pydantic import BaseModel, ConfigDict, Field

from trtllm_oci.errors import TrtllmOciError
from trtllm_oci.serving.openai_app import SERVER_NAME

LOG_TAIL_LINES = 60
_POLL_S = 0.25


class OpenAIServerError(TrtllmOciError):
    """The OpenAI-compatible server could not be started or is not answering."""


class PortInUseError(OpenAIServerError):
    """The port the server should listen on is already taken."""


class ServerDiedError(OpenAIServerError):
    """The server process exited before it became healthy (or while it was being used)."""


class ServerStartTimeoutError(OpenAIServerError):
    """The server kept running but never answered /health in time."""


class OpenAIServerKind(StrEnum):
    TRTLLM_SERVE = "trtllm-serve"
    CPU_SMOKE = "cpu-smoke"


class ServerChoice(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: OpenAIServerKind
    label: str = Field(description="What reports call it")
    reason: str = Field(description="Why this one was chosen, in words")


def choose_openai_server(prefer: Literal["auto", "trtllm-serve", "cpu-smoke"] = "auto") -> ServerChoice:
    """trtllm-serve if TensorRT-LLM is installed here (its module and its command), else the CPU smoke server."""
    executable = shutil.which("trtllm-serve")
    module = importlib.util.find_spec("tensorrt_llm") is not None
    if prefer == "cpu-smoke":
        return ServerChoice(kind=OpenAIServerKind.CPU_SMOKE, label=SERVER_NAME, reason="asked for the CPU smoke server")
    if executable and module:
        return ServerChoice(kind=OpenAIServerKind.TRTLLM_SERVE, label="trtllm-serve (TensorRT-LLM)",
                            reason=f"TensorRT-LLM is installed here ({executable})")
    missing = " and ".join(m for m, ok in (("the tensorrt_llm module", module), ("trtllm-serve on PATH", executable))
                           if not ok)
    if prefer == "trtllm-serve":
        raise OpenAIServerError(f"trtllm-serve was asked for, but {missing} is missing here; run on a host or image "
                                "with TensorRT-LLM (nvcr.io/nvidia/tensorrt-llm/release), or use the CPU smoke server")
    return ServerChoice(kind=OpenAIServerKind.CPU_SMOKE, label=SERVER_NAME,
                        reason=f"TensorRT-LLM is not installed here ({missing} missing)")


class OpenAIServerSpec(BaseModel):
    """What to serve and where. `trtllm_serve_args` are appended to trtllm-serve's argv (its --config etc.)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    checkpoint_dir: Path
    served_model_name: str = Field(min_length=1)
    host: str = "127.0.0.1"
    port: int = Field(ge=1, le=65535)
    device: str = Field(default="cpu", description="CPU smoke server only: cpu or cuda")
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"
    random_weights: bool = Field(default=False, description="CPU smoke server only: random init from config.json")
    # One torch thread by default: the tiny model gains nothing from more, and on a shared 2-core host OpenMP's
    # spin-waits made 2 threads ~20x slower per token (measured here: 80 ms vs 4 ms). None = torch's choice.
    threads: int | None = Field(default=1, ge=1, description="CPU smoke server only: torch CPU threads")
    cache_implementation: Literal["dynamic", "static"] = Field(
        default="dynamic", description="CPU smoke server only: transformers KV cache (static is compiled on first use)")
    trtllm_serve_args: tuple[str, ...] = ()
    startup_timeout_s: float = Field(default=300.0, gt=0)


def server_argv(choice: ServerChoice, spec: OpenAIServerSpec, python: str = sys.executable) -> list[str]:
    if choice.kind == OpenAIServerKind.TRTLLM_SERVE:
        return ["trtllm-serve", str(spec.checkpoint_dir), "--host", spec.host, "--port", str(spec.port),
                "--backend", "pytorch", *spec.trtllm_serve_args]
    argv = [python, "-m", "trtllm_oci.serving.openai_app", "--model-dir", str(spec.checkpoint_dir),
            "--served-model-name", spec.served_model_name, "--host", spec.host, "--port", str(spec.port),
            "--device", spec.device, "--dtype", spec.dtype, "--cache-implementation", spec.cache_implementation]
    if spec.random_weights:
        argv.append("--random-weights")
    if spec.threads:
        argv += ["--threads", str(spec.threads)]
    return argv


class RunningOpenAIServer:
    """A started server: its URL, its log, and `stop()` (also as a context manager)."""

    def __init__(self, choice: ServerChoice, spec: OpenAIServerSpec, argv: list[str], process: subprocess.Popen,
                 log_path: Path | None, on_log: Callable[[str], None] | None) -> None:
        self.choice, self.spec, self.argv, self.process = choice, spec, argv, process
        self.log_path = log_path
        self._tail: deque[str] = deque(maxlen=LOG_TAIL_LINES)
        self._on_log = on_log
        self._log_file: IO[str] | None = log_path.open("a", encoding="utf-8") if log_path else None
        self._reader = threading.Thread(target=self._read_log, name="openai-server-log", daemon=True)
        self._reader.start()

    @property
    def base_url(self) -> str:
        host = self.spec.host if self.spec.host not in ("0.0.0.0", "::") else "127.0.0.1"
        return f"http://{host}:{self.spec.port}"

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> list[str]:
        return list(self._tail)[-lines:]

    def is_running(self) -> bool:
        return self.process.poll() is None

    def check_alive(self) -> None:
        """Raise `ServerDiedError` (with its exit code and log tail) if the server has exited."""
        code = self.process.poll()
        if code is not None:
            self._reader.join(timeout=2)
            raise ServerDiedError(f"{self.choice.label} on port {self.spec.port} exited with code {code}"
                                  f"{self._tail_text()}")

    def stop(self, grace_s: float = 10.0) -> int | None:
        """SIGTERM its process group, SIGKILL after `grace_s`; returns the exit code."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=grace_s)
        self._reader.join(timeout=5)
        if self._log_file is not None and not self._log_file.closed:
            self._log_file.close()
        return self.process.returncode

    def __enter__(self) -> RunningOpenAIServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _read_log(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            line = line.rstrip("\n")
            self._tail.append(line)
            if self._log_file is not None:
                self._log_file.write(line + "\n")
                self._log_file.flush()
            if self._on_log is not None:
                self._on_log(line)

    def _tail_text(self) -> str:
        tail = self.log_tail()
        return ("; its log ended with:\n  " + "\n  ".join(tail)) if tail else "; it logged nothing"


def start_openai_server(
    spec: OpenAIServerSpec,
    choice: ServerChoice | None = None,
    log_path: Path | None = None,
    on_log: Callable[[str], None] | None = None,
    env: dict[str, str] | None = None,
) -> RunningOpenAIServer:
    """Start the server, wait until it is healthy and serves `spec.served_model_name`, and return it."""
    choice = choice or choose_openai_server()
    _check_port_free(spec.host, spec.port)
    argv = server_argv(choice, spec)
    process_env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               text=True, encoding="utf-8", errors="replace", env=process_env,
                               start_new_session=True)
    server = RunningOpenAIServer(choice, spec, argv, process, log_path, on_log)
    try:
        _wait_healthy(server)
        _check_served_name(server)
    except BaseException:
        server.stop()
        raise
    return server


def _check_port_free(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # As uvicorn binds (SO_REUSEADDR): only a listening socket, not a TIME_WAIT one, makes the port busy.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise PortInUseError(f"port {port} on {host} is in use ({exc.strerror}); stop what listens there "
                                 f"(ss -ltnp 'sport = :{port}') or pick another port") from None


def _wait_healthy(server: RunningOpenAIServer) -> None:
    deadline = time.monotonic() + server.spec.startup_timeout_s
    url = f"{server.base_url}/health"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            server._reader.join(timeout=2)
            if any("address already in use" in line.lower() for line in server.log_tail()):
                raise PortInUseError(f"port {server.spec.port} was taken while {server.choice.label} started"
                                     f"{server._tail_text()}")
            server.check_alive()
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(_POLL_S)
    raise ServerStartTimeoutError(f"{server.choice.label} did not answer {url} within "
                                  f"{server.spec.startup_timeout_s:.0f}s{server._tail_text()}")


def _check_served_name(server: RunningOpenAIServer) -> None:
    with urllib.request.urlopen(f"{server.base_url}/v1/models", timeout=10) as response:
        payload = json.loads(response.read())
    names = [m.get("id") for m in payload.get("data", []) if isinstance(m, dict)]
    if server.spec.served_model_name not in names:
        raise OpenAIServerError(f"{server.choice.label} serves {names}, not {server.spec.served_model_name!r}; "
                                "clients would get 404. For trtllm-serve, pass its served-model-name option in "
                                "trtllm_serve_args, or name the checkpoint directory after the model")


def serve_openai(spec: OpenAIServerSpec, prefer: Literal["auto", "trtllm-serve", "cpu-smoke"] = "auto",
                 log_path: Path | None = None, on_log: Callable[[str], None] | None = None) -> RunningOpenAIServer:
    """`start_openai_server` with the choice made (and said) by `choose_openai_server(prefer)`."""
    choice = choose_openai_server(prefer)
    if on_log is not None:
        on_log(f"serving {spec.checkpoint_dir} as {spec.served_model_name!r} with {choice.label}: {choice.reason}")
    return start_openai_server(spec, choice=choice, log_path=log_path, on_log=on_log)
