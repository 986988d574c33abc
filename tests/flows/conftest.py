"""One real `prefect server start` per test session, and the deployments of prefect.yaml registered on it.

The flow tests talk to it in-process (settings pointed at it, as prefect_test_harness does) and through the
`prefect` CLI in subprocesses (deploy, deployment run, worker), the way an operator does.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.flows.prefect_env import (
    HF_CONFIGS,
    REPO_ROOT,
    SERVER_STARTUP_TIMEOUT_S,
    Deployed,
    PrefectServer,
    cli_env,
    drain_prefect_workers,
    free_port,
    stop_process_group,
)


@pytest.fixture(scope="session")
def prefect_server(session_dir: Path) -> Iterator[PrefectServer]:
    from prefect.context import _temporary_global_settings_context, get_settings_context
    from prefect.settings import PREFECT_API_URL, temporary_settings

    home = session_dir / "prefect-server-home"
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    server_env = cli_env(home, None)
    server_env.update(
        PREFECT_UI_ENABLED="false",
        # The hourly watch-releases schedule must not put runs in default-pool that the test worker would take;
        # the tests check the schedule is registered, not that the scheduler fires it.
        PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED="false",
        PREFECT_SERVER_SERVICES_LATE_RUNS_ENABLED="false",
    )
    log_path = home / "server.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=server_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    server = PrefectServer(api_url=api_url, home=home, log_path=log_path, env=cli_env(home, api_url))
    try:
        deadline = time.monotonic() + SERVER_STARTUP_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"prefect server exited {proc.returncode} while starting:\n{server.log_tail()}")
            try:
                if httpx.get(f"{api_url}/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"prefect server not healthy after {SERVER_STARTUP_TIMEOUT_S} s:\n"
                                   f"{server.log_tail()}")
            time.sleep(0.5)
        # In-process clients (flows run by the tests, get_client, emit_event) use this server. The global
        # context covers threads that start without a copy of this context, as prefect_test_harness does
        # (prefect:src/prefect/testing/utilities.py@3.8.8).
        with temporary_settings(updates={PREFECT_API_URL: api_url}), \
                _temporary_global_settings_context(get_settings_context()):
            try:
                yield server
            finally:
                drain_prefect_workers()
    finally:
        stop_process_group(proc)


@pytest.fixture(scope="session")
def deployed(prefect_server: PrefectServer, session_dir: Path) -> Deployed:
    """`prefect deploy --all` of prefect.yaml, as an operator registers it."""
    from prefect.client.orchestration import get_client

    demo_model = session_dir / "flows-demo-model"
    demo_model.mkdir(exist_ok=True)
    shutil.copyfile(HF_CONFIGS / "llama-2-7b-hf.json", demo_model / "config.json")
    for pool in ("default-pool", "gpu-builds"):
        prefect_server.cli("work-pool", "create", pool, "--type", "process")
    out = prefect_server.cli("deploy", "--all", extra_env={
        "TRTLLM_OCI_PROJECT_DIR": str(REPO_ROOT),
        "TRTLLM_OCI_DEMO_MODEL": str(demo_model),
    }, timeout=300)
    with get_client(sync_client=True) as client:
        flow_names = {f.id: f.name for f in client.read_flows()}
        ids = {f"{flow_names[d.flow_id]}/{d.name}": d.id for d in client.read_deployments()}
    return Deployed(server=prefect_server, demo_model=demo_model, deploy_output=out.stdout + out.stderr, ids=ids)


