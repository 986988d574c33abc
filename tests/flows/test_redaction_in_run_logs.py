"""A stage that fails on a Hub mirror whose HF_ENDPOINT carries credentials leaves them in no log line of the
flow run or its task runs (domain records, run-logger lines, the engine's failure records with their
tracebacks) and in no state message stored in the API."""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from pathlib import Path

import huggingface_hub
import pytest

from tests.standins.hf_hub import HfHubStandIn, StandInRepo
from trtllm_oci.spec import ModelSource

pytestmark = pytest.mark.prefect

HF_CONFIGS = Path(__file__).parent.parent / "data" / "hf_configs"
USER, PASSWORD, QUERY_TOKEN = "hubuser", "s3cr3t-hub-pw", "tok-s3cr3t"
SHA = "d" * 40


@pytest.fixture
def unavailable_hub() -> Iterator[HfHubStandIn]:
    """The repo exists, but resolving its revision answers 503 every time (a mirror in trouble)."""
    config = (HF_CONFIGS / "llama-2-7b-hf.json").read_bytes()
    with HfHubStandIn() as hub:
        hub.add_repo(StandInRepo("acme/tiny", {SHA: {"config.json": config}}, refs={"main": SHA}))
        hub.inject_status("/api/models/acme/tiny", 503, times=1000)
        yield hub


def test_a_failed_download_stage_redacts_hub_credentials_in_every_log_and_state(
        prefect_api: str, unavailable_hub: HfHubStandIn, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    from prefect import flow, get_run_logger
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogHandler

    from trtllm_oci.hub import download
    from trtllm_oci.hub.retry import RetryPolicy
    from trtllm_oci.tasks.download import download_model_task

    endpoint = unavailable_hub.endpoint.replace("http://", f"http://{USER}:{PASSWORD}@")
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    monkeypatch.setenv("TRTLLM_OCI_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    # Two quick attempts instead of six with backoff: the same records, in a second instead of half a minute.
    monkeypatch.setattr(download, "RetryPolicy", functools.partial(RetryPolicy, max_attempts=2, base_delay_s=0.01))

    @flow(name="redaction-download")
    def pipeline(source: ModelSource) -> None:
        get_run_logger().info("benchmark target: %s/v2/models/ensemble?token=%s", endpoint, QUERY_TOKEN)
        download_model_task.with_options(retries=0)(source)

    caplog.set_level(logging.INFO)
    state = pipeline(ModelSource(hf_repo="acme/tiny"), return_state=True)
    assert state.is_failed()
    APILogHandler().flush()

    flow_run_id = state.state_details.flow_run_id
    with get_client(sync_client=True) as client:
        logs = [log.message for log in client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))]
        task_runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
        states = [s.message or "" for s in client.read_flow_run_states(flow_run_id)]
        for task_run in task_runs:
            states += [s.message or "" for s in client.read_task_run_states(task_run.id)]

    everything = [*logs, *states, caplog.text]
    for text in everything:
        for secret in (USER, PASSWORD, QUERY_TOKEN):
            assert secret not in text, (secret, text[:3000])

    redacted_url = "http://***@127.0.0.1"
    retries = [m for m in logs if m.startswith("Resolving acme/tiny@main failed")]
    assert retries and redacted_url in retries[0]  # the domain logger's record, forwarded to the run log
    assert any(m.startswith("Task run failed with exception") and redacted_url in m and "Traceback" in m
               for m in logs)  # the engine's record with the (chained) traceback
    assert any(f"{redacted_url}:" in m and "?token=***" in m for m in logs if m.startswith("benchmark target"))
    failed = [m for m in states if "still failing after 2 attempts" in m]
    assert len(failed) == 2 and all(redacted_url in m for m in failed)  # the task run's and the flow run's
