"""Polling of Data Science work requests and model-deployment lifecycle states, with failure diagnostics."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import oci

from trtllm_oci.cloud.errors import DeploymentFailedError

log = logging.getLogger(__name__)

WORK_REQUEST_DONE = frozenset({"SUCCEEDED", "FAILED", "CANCELED"})
DEPLOYMENT_TERMINAL_BAD = frozenset({"FAILED", "NEEDS_ATTENTION"})
DIAGNOSTIC_LOG_LINES = 20


@dataclass(frozen=True)
class WaitPolicy:
    """How long and how often to poll. Real deployments of multi-GB images take 20-60 min."""

    timeout_seconds: float = 3600.0
    poll_seconds: float = 15.0


DEFAULT_WAIT = WaitPolicy()


def work_request_diagnostics(ds: oci.data_science.DataScienceClient, work_request_id: str) -> tuple[list[str], list[str]]:
    """(errors, last log lines) of a work request; best effort, never raises."""
    errors: list[str] = []
    logs: list[str] = []
    try:
        for err in oci.pagination.list_call_get_all_results(ds.list_work_request_errors, work_request_id).data:
            errors.append(f"{err.code}: {err.message}")
    except oci.exceptions.ServiceError as exc:
        errors.append(f"(could not list work-request errors: {exc.status} {exc.code})")
    try:
        entries = oci.pagination.list_call_get_all_results(ds.list_work_request_logs, work_request_id).data
        logs = [entry.message for entry in entries][-DIAGNOSTIC_LOG_LINES:]
    except oci.exceptions.ServiceError as exc:
        logs.append(f"(could not list work-request logs: {exc.status} {exc.code})")
    return errors, logs


def wait_for_work_request(ds: oci.data_science.DataScienceClient, work_request_id: str, what: str,
                          policy: WaitPolicy, *, model_deployment_id: str | None = None):
    """Poll until the work request leaves ACCEPTED/IN_PROGRESS; raise DeploymentFailedError unless SUCCEEDED."""
    deadline = time.monotonic() + policy.timeout_seconds
    while True:
        wr = ds.get_work_request(work_request_id).data
        if wr.status in WORK_REQUEST_DONE:
            break
        if time.monotonic() >= deadline:
            raise DeploymentFailedError(
                f"{what}: work request {work_request_id} still {wr.status} ({wr.percent_complete or 0:.0f}%) after "
                f"{policy.timeout_seconds:.0f} s. It may still finish; check it in the Console or raise the timeout.",
                model_deployment_id=model_deployment_id, work_request_id=work_request_id,
            )
        time.sleep(policy.poll_seconds)
    if wr.status != "SUCCEEDED":
        errors, logs = work_request_diagnostics(ds, work_request_id)
        raise DeploymentFailedError(
            f"{what} failed: work request {work_request_id} ended {wr.status}. "
            f"Errors: {'; '.join(errors) or 'none reported'}. Last log lines: {' | '.join(logs) or 'none'}.",
            model_deployment_id=model_deployment_id, work_request_id=work_request_id,
            work_request_errors=errors, work_request_logs=logs,
        )
    log.info("%s: work request %s succeeded", what, work_request_id)
    return wr


def wait_for_deployment_state(ds: oci.data_science.DataScienceClient, model_deployment_id: str, target: str,
                              what: str, policy: WaitPolicy, *, work_request_id: str | None = None):
    """Poll the deployment until `target`; FAILED and NEEDS_ATTENTION end the wait with DeploymentFailedError."""
    deadline = time.monotonic() + policy.timeout_seconds
    while True:
        md = ds.get_model_deployment(model_deployment_id).data
        if md.lifecycle_state == target:
            return md
        if md.lifecycle_state in DEPLOYMENT_TERMINAL_BAD and target not in DEPLOYMENT_TERMINAL_BAD:
            errors, logs = work_request_diagnostics(ds, work_request_id) if work_request_id else ([], [])
            hint = (" NEEDS_ATTENTION means the update did not apply cleanly and the deployment keeps serving its "
                    "previous configuration." if md.lifecycle_state == "NEEDS_ATTENTION" else
                    " Typical causes: the container did not answer the health endpoint before "
                    "DEPLOYMENT_TIMEOUT_IN_MINUTES, STORAGE_SIZE_IN_GB too small for image + artifact, or the image "
                    "could not be pulled (policy: allow any-user to read repos ... datasciencemodeldeployment).")
            raise DeploymentFailedError(
                f"{what}: model deployment {model_deployment_id} is {md.lifecycle_state}"
                f" ({md.lifecycle_details or 'no details'}).{hint} "
                f"Work-request errors: {'; '.join(errors) or 'none reported'}. "
                f"Last log lines: {' | '.join(logs) or 'none'}.",
                model_deployment_id=model_deployment_id, work_request_id=work_request_id,
                lifecycle_state=md.lifecycle_state, work_request_errors=errors, work_request_logs=logs,
            )
        if time.monotonic() >= deadline:
            raise DeploymentFailedError(
                f"{what}: model deployment {model_deployment_id} still {md.lifecycle_state} after "
                f"{policy.timeout_seconds:.0f} s (wanted {target}); raise the wait timeout or check the Console.",
                model_deployment_id=model_deployment_id, work_request_id=work_request_id,
                lifecycle_state=md.lifecycle_state,
            )
        time.sleep(policy.poll_seconds)
