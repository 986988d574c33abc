"""What every stage's task shares: logging, retry conditions, visible skips."""

from __future__ import annotations

import logging
from typing import Any

from prefect import get_run_logger, task
from prefect.exceptions import MissingContextError
from prefect.logging.handlers import APILogHandler
from prefect.states import Completed, State

from trtllm_oci.hub.errors import HF_TOKEN_SECRET_BLOCK
from trtllm_oci.log_redaction import DOMAIN_LOGGER, RedactCredentialsFilter, install_redaction
from trtllm_oci.settings import Settings

# Where Prefect's run records go (prefect/logging/logging.yml at 3.8.8): get_run_logger() and the engines'
# own lines ("Task run failed with exception: ..." with its traceback, "Finished in state Failed(...)") are
# logged on prefect.task_runs / prefect.flow_runs (prefect/logging/loggers.py task_run_logger,
# flow_run_logger), whose `api` handler sends them to the API; they then propagate through `prefect` to the
# root console handler.
PREFECT_RUN_LOGGERS = ("prefect", "prefect.flow_runs", "prefect.task_runs")


class RunLogForwarder(APILogHandler):
    """Sends a record to the Prefect run log when it is emitted inside a flow or task run; outside one
    (a CLI call, a worker thread without the run context) it stays on the console only, without the
    warning Prefect's own handler gives there. Redacts URL credentials before anything leaves."""

    def __init__(self) -> None:
        super().__init__()
        self.addFilter(RedactCredentialsFilter())

    def emit(self, record: logging.LogRecord) -> None:
        from prefect.context import FlowRunContext, TaskRunContext

        if getattr(record, "flow_run_id", None) or FlowRunContext.get() or TaskRunContext.get():
            super().emit(record)


def forward_domain_logs() -> None:
    """The domain package logs through `trtllm_oci.*` module loggers because it does not import Prefect;
    attach the run-log forwarder at INFO so cache quarantines, lease waits, downloads and OCI waits show in
    the Prefect UI beside the task's own lines. Idempotent."""
    domain = logging.getLogger(DOMAIN_LOGGER)
    if not any(isinstance(h, RunLogForwarder) for h in domain.handlers):
        domain.addHandler(RunLogForwarder())
    if domain.level == logging.NOTSET:
        domain.setLevel(logging.INFO)


def redact_run_logs() -> None:
    """Run logs are stored in the API and shown in the UI to everyone with access to the workspace: put the
    URL-credentials filter on the domain logger, Prefect's run loggers and their API handler, and the root
    console handler. Idempotent."""
    install_redaction(*PREFECT_RUN_LOGGERS)


forward_domain_logs()
redact_run_logs()


def run_logger() -> logging.Logger | logging.LoggerAdapter:
    """The run logger inside a flow or task run; the module logger when a task's .fn is called directly."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger(DOMAIN_LOGGER)


def secret_value(block_name: str) -> str | None:
    """The value of a Prefect Secret block, or None when no such block exists (or there is no API to ask)."""
    from prefect.blocks.system import Secret

    try:
        return Secret.load(block_name).get()
    except (ValueError, RuntimeError):
        return None


def hf_token(settings: Settings) -> str | None:
    """The Hugging Face token every stage sends: the `hf-token` Secret block first, then HF_TOKEN; never logged."""
    return secret_value(HF_TOKEN_SECRET_BLOCK) or settings.hf_token_value


def is_transient(exc: BaseException) -> bool:
    """Network trouble and server-side errors are worth a retry; bad input, auth and 4xx are not."""
    from trtllm_oci.hub.errors import is_retryable

    if is_retryable(exc):
        return True
    import oci

    if isinstance(exc, oci.exceptions.ServiceError):
        return exc.status == 429 or exc.status >= 500
    return isinstance(exc, oci.exceptions.RequestException | oci.exceptions.ConnectTimeout)


def retry_if_transient(task: Any, task_run: Any, state: State) -> bool:
    """Prefect retry_condition_fn: retry only errors that another attempt can fix."""
    try:
        state.result()
    except Exception as exc:  # noqa: BLE001 - classify whatever the task raised
        return is_transient(exc)
    return False


@task(name="skip-stage", task_run_name="skip-{stage}")
def skip_stage(stage: str, reason: str) -> State:
    """Shows a stage that does not apply as its own task run in a 'Skipped' state, with the reason."""
    run_logger().info("stage %s skipped: %s", stage, reason)
    return Completed(name="Skipped", message=reason, data={"stage": stage, "skipped": True, "reason": reason})
