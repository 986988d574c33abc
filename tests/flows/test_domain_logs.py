"""Lines the domain package logs (it does not import Prefect) reach the Prefect run log of the task."""

from __future__ import annotations

import logging
import warnings

import pytest

pytestmark = pytest.mark.prefect


def test_domain_logger_records_land_in_the_task_runs_log(prefect_api: str) -> None:
    from prefect import flow, task
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogHandler

    import trtllm_oci.tasks.common  # noqa: F401  (attaches the forwarder, as every stage module does)

    domain = logging.getLogger("trtllm_oci.cache.object_storage_store")

    @task
    def stage() -> None:
        domain.info("waiting for the build lease (marker-info)")
        domain.warning("entry quarantined (marker-warning)")
        domain.debug("not shown (marker-debug)")

    @flow
    def pipeline() -> None:
        stage()

    state = pipeline(return_state=True)
    assert state.is_completed()
    APILogHandler().flush()
    with get_client(sync_client=True) as client:
        logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[state.state_details.flow_run_id])))
    by_marker = {m: [log for log in logs if m in log.message] for m in ("marker-info", "marker-warning", "marker-debug")}
    assert len(by_marker["marker-info"]) == 1 and by_marker["marker-info"][0].task_run_id is not None
    assert by_marker["marker-warning"][0].level == logging.WARNING
    assert by_marker["marker-debug"] == []

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # outside a run: console only, no "without a flow run id" warning
        domain.warning("outside any run (marker-outside)")
