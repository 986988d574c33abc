"""A tritonserver process managed from Python: free ports, log streaming, readiness, clean stop.

Failure to start is reported as TritonStartError whose message leads with the first model load
error found in Triton's log (the ``failed to load '<model>' ...`` line, else the model status
table), so a broken repository reads as e.g. "model 'preprocessing' failed to load: OSError:
Can't load tokenizer for '/nope' ..." instead of a timeout.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

from trtllm_oci.errors import InputError, ProcessError
from trtllm_oci.serving.launch import launch_argv
from trtllm_oci.serving.triton_install import TritonInstall, find_triton

_SHM_PREFIX_FLAG = "--backend-config=python,shm-region-prefix-name="
# e.g.: E1121 19:55:01.123 77 model_lifecycle.cc:654] "failed to load 'preprocessing' version 1: Internal: ..."
_FAILED_LOAD_RE = re.compile(r"failed to load '(?P<model>[^']+)' version (?P<version>\d+): (?P<cause>.*)")
_TABLE_ROW_RE = re.compile(r"^\|\s*(?P<model>[^|]+?)\s*\|\s*(?P<version>[^|]+?)\s*\|\s*(?P<status>.+?)\s*\|$")
_LOG_ERROR_RE = re.compile(r"^E\d{4} \S+ \d+ \S+\] (?P<msg>.*)$")


class TritonStartError(ProcessError):
    """tritonserver exited or did not become ready; the message names the first load error."""

    def __init__(self, message: str, log_file: Path | None = None, first_error: str | None = None):
        super().__init__(message)
        self.log_file = log_file
        self.first_error = first_error


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PortInUseError(InputError):
    """A port tritonserver was asked to listen on is taken by another process."""


_PORT_OPTIONS = {"HTTP": "--http-port / serving.http_port", "gRPC": "--grpc-port / serving.grpc_port",
                 "metrics": "--metrics-port"}


def check_ports_free(ports: dict[str, int]) -> None:
    """Refuse, before tritonserver starts, ports that repeat or that another process listens on.

    tritonserver listens on every address (0.0.0.0) with SO_REUSEADDR; a probe bound the same way fails only
    where a listening socket holds the port (not on connections lingering in TIME_WAIT)."""
    seen: dict[int, str] = {}
    for name, port in ports.items():
        if port in seen:
            raise PortInUseError(f"the {name} and {seen[port]} ports are both {port}; give each its own port "
                                 f"({_PORT_OPTIONS[name]})")
        seen[port] = name
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("0.0.0.0", port))
            except OSError as exc:
                raise PortInUseError(
                    f"{name} port {port} is already in use ({exc.strerror or exc}): another server listens on it. "
                    f"Stop that server, or choose another port ({_PORT_OPTIONS[name]})") from None


def first_load_error(log_lines: Sequence[str]) -> str | None:
    """The first model load failure in Triton log lines, in plain words, or None.

    Looks for ``failed to load 'M' version V: CAUSE`` first, then for an UNAVAILABLE row of the
    ``| Model | Version | Status |`` table, then for any ``E...]`` error line.
    """
    for line in log_lines:
        match = _FAILED_LOAD_RE.search(line)
        if match:
            cause = _unquote(match.group("cause"))
            return f"model '{match.group('model')}' (version {match.group('version')}) failed to load: {cause}"
    for line in log_lines:
        match = _TABLE_ROW_RE.match(line.strip())
        if match and match.group("status").startswith("UNAVAILABLE"):
            status = match.group("status").removeprefix("UNAVAILABLE:").strip()
            return f"model '{match.group('model')}' (version {match.group('version')}) failed to load: {status}"
    for line in log_lines:
        match = _LOG_ERROR_RE.match(line.strip())
        if match:
            return _unquote(match.group("msg"))
    return None


def _unquote(text: str) -> str:
    """Triton >= 2.4x logs messages as quoted, escaped strings; turn them back into text."""
    text = text.strip()
    if text.endswith('"'):
        text = text[:-1]
    if text.startswith('"'):
        text = text[1:]
    if "\\" in text:
        try:
            text = codecs.decode(text.encode("latin-1", "backslashreplace"), "unicode_escape")
            text = text.encode("latin-1", "replace").decode("utf-8", "replace")
        except (UnicodeDecodeError, UnicodeEncodeError):
            pass
    return text.strip()


class LocalTriton:
    """Run ``tritonserver`` on a model repository for the lifetime of a ``with`` block.

    Ports default to free ones. Each log line goes to ``log_file`` (a temp file unless given)
    and to ``log_sink``. ``stop()`` terminates the whole process group (tritonserver and its
    python-backend stubs): SIGTERM, then SIGKILL after ``stop_grace_s``.
    """

    def __init__(
        self,
        repo_dir: str | Path,
        http_port: int | None = None,
        grpc_port: int | None = None,
        metrics_port: int | None = None,
        ready_timeout_s: float = 180.0,
        log_sink: Callable[[str], None] | None = None,
        extra_args: Sequence[str] = (),
        install: TritonInstall | None = None,
        log_file: str | Path | None = None,
        stop_grace_s: float = 15.0,
    ) -> None:
        self.repo_dir = Path(repo_dir)
        if not self.repo_dir.is_dir():
            raise FileNotFoundError(
                f"model repository {self.repo_dir} does not exist; assemble it first (trtllm_oci.repo)"
            )
        if ready_timeout_s <= 0:
            raise InputError(f"ready_timeout_s={ready_timeout_s} must be > 0")
        self.http_port = http_port or free_port()
        self.grpc_port = grpc_port or free_port()
        self.metrics_port = metrics_port or free_port()
        self.ready_timeout_s = ready_timeout_s
        self.log_sink = log_sink
        self.extra_args = tuple(extra_args)
        self.install = install
        self.stop_grace_s = stop_grace_s
        self.log_file = Path(log_file) if log_file is not None else None
        self._process: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._lines: deque[str] = deque(maxlen=20000)
        self._lock = threading.Lock()

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def exit_code(self) -> int | None:
        """tritonserver's exit status once it has exited on its own (None while it runs or before start)."""
        return self._process.poll() if self._process is not None else None

    def exited_error(self) -> ProcessError:
        """What to report when tritonserver exited while serving: its status, first error line and log."""
        code = self.exit_code
        self._join_reader()  # its last lines, often the reason, are still in the pipe
        how = f"was killed by signal {-code}" if code is not None and code < 0 else f"exited with code {code}"
        first = first_load_error(self.log_lines())
        return ProcessError(f"tritonserver {how} while serving{': ' + first if first else ''}. "
                            f"Full log: {self.log_file}")

    def log_lines(self) -> list[str]:
        with self._lock:
            return list(self._lines)

    def argv(self) -> list[str]:
        install = self.install or find_triton()
        self.install = install
        argv = launch_argv(
            self.repo_dir,
            world_size=1,
            http_port=self.http_port,
            grpc_port=self.grpc_port,
            metrics_port=self.metrics_port,
            tritonserver=install.tritonserver,
            use_mpi=False,
            extra_args=[*install.server_args(), *self.extra_args],
        )
        # A unique shared-memory prefix per server, so two local servers (or a stale region of a
        # killed one) never collide on /dev/shm names.
        unique = f"trtllmoci{os.getpid()}_{uuid.uuid4().hex[:8]}_"
        return [f"{_SHM_PREFIX_FLAG}{unique}" if a.startswith(_SHM_PREFIX_FLAG) else a for a in argv]

    def start(self) -> LocalTriton:
        if self._process is not None:
            raise RuntimeError(f"tritonserver already started (pid {self._process.pid}); call stop() first")
        check_ports_free({"HTTP": self.http_port, "gRPC": self.grpc_port, "metrics": self.metrics_port})
        argv = self.argv()
        if self.log_file is None:
            fd, name = tempfile.mkstemp(prefix="tritonserver-", suffix=".log")
            os.close(fd)
            self.log_file = Path(name)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        assert self.install is not None
        self._process = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self.install.environ(),
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._pump_log, name="tritonserver-log", daemon=True)
        self._reader.start()
        return self

    def _pump_log(self) -> None:
        process = self._process
        assert process is not None and process.stdout is not None and self.log_file is not None
        with self.log_file.open("a", encoding="utf-8") as sink_file:
            for raw in iter(process.stdout.readline, b""):
                line = raw.decode("utf-8", errors="replace").rstrip("\n")
                with self._lock:
                    self._lines.append(line)
                sink_file.write(line + "\n")
                sink_file.flush()
                if self.log_sink is not None:
                    # A faulty sink must not kill log capture.
                    with contextlib.suppress(Exception):
                        self.log_sink(line)

    def is_ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.http_url}/v2/health/ready", timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            return False

    def wait_ready(self) -> LocalTriton:
        if self._process is None:
            raise RuntimeError("tritonserver not started; call start() first")
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                code = self._process.returncode
                self._join_reader()
                raise self._start_error(f"tritonserver exited with code {code} before it was ready")
            if self.is_ready():
                return self
            time.sleep(0.25)
        self.stop()
        raise self._start_error(f"tritonserver was not ready after {self.ready_timeout_s:.0f} s")

    def _start_error(self, what: str) -> TritonStartError:
        first = first_load_error(self.log_lines())
        message = what
        if first:
            message += f": {first}"
        message += f". Full log: {self.log_file}"
        self._cleanup_process()
        return TritonStartError(message, log_file=self.log_file, first_error=first)

    def stop(self) -> None:
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            self._signal_group(process, signal.SIGTERM)
            try:
                process.wait(timeout=self.stop_grace_s)
            except subprocess.TimeoutExpired:
                self._signal_group(process, signal.SIGKILL)
                process.wait(timeout=30)
        # The stubs may outlive a crashed server; the group kill reaps them too.
        self._signal_group(process, signal.SIGKILL)
        self._join_reader()
        self._cleanup_process()

    def _cleanup_process(self) -> None:
        process = self._process
        if process is not None and process.poll() is not None:
            self._signal_group(process, signal.SIGKILL)
            if process.stdout is not None:
                process.stdout.close()
            self._process = None

    @staticmethod
    def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)

    def _join_reader(self) -> None:
        if self._reader is not None:
            self._reader.join(timeout=10)
            self._reader = None

    def __enter__(self) -> LocalTriton:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
