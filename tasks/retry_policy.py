"""Which failures a flow-level retry can fix. A flow's `retries` re-runs the whole run after any exception,
and Prefect 3.8 flows have no retry condition: a refusal of the user's input, credentials or capacity would
be re-run after the delay and refused again. Raising one of those through `retry_only_transient_failures`
sets the run's remaining retries to zero first, so the run fails at once with the first message."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from trtllm_oci.errors import AccessError, CapacityError, InputError
from trtllm_oci.tasks.common import run_logger

# Retrying cannot change these: the user must change the spec, the credentials or what is asked for. A
# ServiceError, ProcessError, ArtifactError or timeout may be transient and keeps the flow's retry.
NOT_RETRIED: tuple[type[Exception], ...] = (InputError, AccessError, CapacityError)


@contextmanager
def retry_only_transient_failures() -> Iterator[None]:
    """Inside a flow run: an exception of a `NOT_RETRIED` kind ends the run without its remaining retries."""
    try:
        yield
    except NOT_RETRIED as exc:
        _cancel_remaining_retries(type(exc).__name__)
        raise


def _cancel_remaining_retries(kind: str) -> None:
    from prefect.client.orchestration import get_client
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    flow_run = context.flow_run if context is not None else None
    if flow_run is None or not flow_run.empirical_policy.retries:
        return
    policy = flow_run.empirical_policy.model_copy(update={"retries": 0})
    with get_client(sync_client=True) as client:
        # The server's retry rule reads the run's policy when the Failed state is proposed, just after this.
        client.update_flow_run(flow_run_id=flow_run.id, empirical_policy=policy)
    flow_run.empirical_policy = policy
    run_logger().info("not retrying the run: a %s needs a change to the spec, credentials or request", kind)
