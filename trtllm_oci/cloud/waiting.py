"""Waiting on Data Science work requests and model-deployment states, with failure diagnostics.

Polling is the SDK's own waiter, `oci.wait_until` (oci/waiter.py@2.189.0: exponential back-off up to
`max_interval_seconds`, `MaximumWaitTimeExceeded` at `max_wait_seconds`), fed by our client calls so the
client's retry strategy and signer apply to every poll. Our code only decides what the states mean:

- A work request that ends FAILED/CANCELED, or a deployment that turns FAILED/NEEDS_ATTENTION, is a failure
  (`DeploymentFailedError`, with the work request's errors and last log lines).
- Running out of client-side patience is *not* a failure: the service keeps working and may still succeed.
  `StillInProgressError` says so and names what is still in flight; callers never delete a resource because
  of it (a 130 GB model can bootstrap for up to DEPLOYMENT_TIMEOUT_IN_MINUTES plus provisioning).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import oci

from trtllm_oci.cloud.errors import DeploymentFailedError, StillInProgressError

log = logging.getLogger(__name__)

WORK_REQUEST_DONE = frozenset({"SUCCEEDED", "FAILED", "CANCELED"})
DEPLOYMENT_TERMINAL_BAD = frozenset({"FAILED", "NEEDS_ATTENTION"})
DEPLOYMENT_TRANSITIONAL = frozenset({"CREATING", "UPDATING", "DELETING"})
DIAGNOSTIC_LOG_LINES = 20
# Our allowance for what happens before the container's bootstrap clock starts: a GPU instance is provisioned
# and the 40+ GB serving image is pulled (oracle-samples Triton_TensorRT guide gives the image size). Not an
# Oracle figure; it only bounds how long the client waits, never what the service does.
PROVISIONING_ALLOWANCE_MINUTES = 45


@dataclass(frozen=True)
class WaitPolicy:
    """How long the client waits and how often it polls at most (the SDK waiter backs off 1 s, 2 s, ... up to it)."""

    timeout_seconds: float = 3600.0
    poll_seconds: float = 30.0

    @classmethod
    def for_bootstrap(cls, deployment_timeout_minutes: int, *,
                      provisioning_minutes: int = PROVISIONING_ALLOWANCE_MINUTES,
                      poll_seconds: float = 30.0) -> WaitPolicy:
        """Long enough for the service's own limit: DEPLOYMENT_TIMEOUT_IN_MINUTES plus provisioning."""
        return cls(timeout_seconds=60.0 * (deployment_timeout_minutes + provisioning_minutes),
                   poll_seconds=poll_seconds)


DEFAULT_WAIT = WaitPolicy()
PollHook = Callable[[int, Any], None]


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


def _wait(client: Any, first: Any, fetch: Callable[[], Any], done: Callable[[Any], bool], policy: WaitPolicy,
          on_poll: PollHook | None) -> Any:
    """`oci.wait_until` on our own fetch; returns the final response or raises MaximumWaitTimeExceeded."""
    return oci.wait_until(
        client, first, evaluate_response=lambda response: done(response.data),
        fetch_func=lambda response=None: fetch(),
        max_interval_seconds=max(1, math.ceil(policy.poll_seconds)), max_wait_seconds=policy.timeout_seconds,
        **({"wait_callback": on_poll} if on_poll else {}),
    )


def wait_for_work_request(ds: oci.data_science.DataScienceClient, work_request_id: str, what: str,
                          policy: WaitPolicy, *, model_deployment_id: str | None = None,
                          on_poll: PollHook | None = None):
    """Wait until the work request leaves ACCEPTED/IN_PROGRESS; raise DeploymentFailedError unless SUCCEEDED."""
    first = ds.get_work_request(work_request_id)
    try:
        final = _wait(ds, first, lambda: ds.get_work_request(work_request_id),
                      lambda wr: wr.status in WORK_REQUEST_DONE, policy, on_poll)
    except oci.exceptions.MaximumWaitTimeExceeded:
        wr = ds.get_work_request(work_request_id).data
        raise StillInProgressError(
            f"{what}: work request {work_request_id} is still {wr.status} ({wr.percent_complete or 0:.0f}%) after "
            f"{policy.timeout_seconds:.0f} s of waiting. This is not a failure: the service keeps working and "
            "nothing was deleted. Run the same command again to keep waiting, or check the work request.",
            model_deployment_id=model_deployment_id, work_request_id=work_request_id,
        ) from None
    wr = final.data
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


def _failure(ds, md: Any, what: str, work_request_id: str | None) -> DeploymentFailedError:
    errors, logs = work_request_diagnostics(ds, work_request_id) if work_request_id else ([], [])
    hint = (" NEEDS_ATTENTION means the update did not apply cleanly and the deployment keeps serving its "
            "previous configuration." if md.lifecycle_state == "NEEDS_ATTENTION" else
            " Typical causes: the container did not answer the health endpoint before "
            "DEPLOYMENT_TIMEOUT_IN_MINUTES, STORAGE_SIZE_IN_GB too small for image + artifact, or the image "
            "could not be pulled (policy: allow any-user to read repos ... datasciencemodeldeployment).")
    return DeploymentFailedError(
        f"{what}: model deployment {md.id} is {md.lifecycle_state} ({md.lifecycle_details or 'no details'}).{hint} "
        f"Work-request errors: {'; '.join(errors) or 'none reported'}. "
        f"Last log lines: {' | '.join(logs) or 'none'}.",
        model_deployment_id=md.id, work_request_id=work_request_id, lifecycle_state=md.lifecycle_state,
        work_request_errors=errors, work_request_logs=logs,
    )


def wait_for_deployment_state(ds: oci.data_science.DataScienceClient, model_deployment_id: str, target: str,
                              what: str, policy: WaitPolicy, *, work_request_id: str | None = None,
                              on_poll: PollHook | None = None):
    """Wait for `target`; FAILED and NEEDS_ATTENTION end the wait with DeploymentFailedError."""
    def settled(md: Any) -> bool:
        return md.lifecycle_state == target or (md.lifecycle_state in DEPLOYMENT_TERMINAL_BAD
                                                and target not in DEPLOYMENT_TERMINAL_BAD)

    md = settle_deployment(ds, model_deployment_id, what, policy, done=settled, work_request_id=work_request_id,
                           on_poll=on_poll)
    if md.lifecycle_state != target:
        raise _failure(ds, md, what, work_request_id)
    return md


def settle_deployment(ds: oci.data_science.DataScienceClient, model_deployment_id: str, what: str,
                      policy: WaitPolicy, *, done: Callable[[Any], bool] | None = None,
                      work_request_id: str | None = None, on_poll: PollHook | None = None):
    """The deployment once it is in no transition (CREATING/UPDATING/DELETING), whatever state that is."""
    done = done or (lambda md: md.lifecycle_state not in DEPLOYMENT_TRANSITIONAL)
    first = ds.get_model_deployment(model_deployment_id)
    try:
        return _wait(ds, first, lambda: ds.get_model_deployment(model_deployment_id), done, policy, on_poll).data
    except oci.exceptions.MaximumWaitTimeExceeded:
        state = ds.get_model_deployment(model_deployment_id).data.lifecycle_state
        raise StillInProgressError(
            f"{what}: model deployment {model_deployment_id} is still {state} after {policy.timeout_seconds:.0f} s "
            "of waiting. This is not a failure and nothing was deleted: the service may still finish. Run the same "
            "command again to keep waiting (it picks the deployment up where it is), or run teardown to remove it.",
            model_deployment_id=model_deployment_id, work_request_id=work_request_id, lifecycle_state=state,
        ) from None
