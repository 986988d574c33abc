"""A real `prefect server start` for the flow tests, and helpers around it and prefect.yaml."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
HF_CONFIGS = REPO_ROOT / "tests" / "data" / "hf_configs"
SERVER_STARTUP_TIMEOUT_S = 180  # 10-20 s on a fresh database with 2 idle cores; CI shares the cores


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PrefectServer:
    api_url: str
    home: Path
    log_path: Path
    env: dict[str, str] = field(repr=False)  # for `prefect` CLI subprocesses: PREFECT_HOME and PREFECT_API_URL

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def cli(self, *args: str, cwd: Path = REPO_ROOT, timeout: float = 180,
            extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run the `prefect` CLI against this server; a non-zero exit fails the test with its output."""
        env = {**self.env, **(extra_env or {})}
        proc = subprocess.run([sys.executable, "-m", "prefect", "--no-prompt", *args], cwd=cwd, env=env,
                              capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise AssertionError(f"`prefect {' '.join(args)}` exited {proc.returncode}\nstdout:\n{proc.stdout}\n"
                                 f"stderr:\n{proc.stderr}\nserver log:\n{self.log_tail()}")
        return proc


def cli_env(home: Path, api_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",  # no network here; it only logs resolver errors
        PREFECT_API_REQUEST_TIMEOUT="120",
        PYTHONUNBUFFERED="1",
    )
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return env


def drain_prefect_workers() -> None:
    """Send buffered logs and events before the server goes away (what prefect_test_harness does on exit)."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for drain in (lambda: APILogWorker.instance().drain(), EventsWorker.drain_all):
        with contextlib.suppress(RuntimeError):  # never started
            drain()


def stop_process_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group (uvicorn and its service workers), SIGKILL what is left."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@dataclass
class Deployed:
    server: PrefectServer
    demo_model: Path
    deploy_output: str
    ids: dict[str, Any]  # "flow/deployment" -> deployment id, for every deployment on the server


def load_prefect_yaml() -> dict[str, Any]:
    import yaml

    return yaml.safe_load((REPO_ROOT / "prefect.yaml").read_text())


def yaml_deployment(name: str) -> dict[str, Any]:
    for dep in load_prefect_yaml()["deployments"]:
        if dep["name"] == name:
            return dep
    raise KeyError(f"prefect.yaml has no deployment named {name!r}")


def flow_run_ids_in(output: str) -> list[str]:
    """UUIDs printed by `prefect deployment run` (`└── UUID: ...`)."""
    return [line.split("UUID:", 1)[1].strip() for line in output.splitlines() if "UUID:" in line]


def delete_flow_runs(ids: list[Any]) -> None:
    """Remove runs the tests created but nobody should execute, so a later worker does not pick them up."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        for run_id in ids:
            with contextlib.suppress(ObjectNotFound):
                client.delete_flow_run(run_id)

