"""Log records leave the process without the credentials of any URL in them (HF_ENDPOINT, `bench --url`):
a `logging.Filter` that redacts a record's message, its arguments and its traceback, and the one place that
puts it on the loggers and handlers records go through. Plain `logging`: the CLI installs it, and the Prefect
wrappers (tasks/common.py) install it on Prefect's run loggers too."""

from __future__ import annotations

import logging

from trtllm_oci.errors import redact_credentials

DOMAIN_LOGGER = "trtllm_oci"

# Renders tracebacks exactly as logging.Formatter does, so a redacted record shows what it would have shown.
_TRACEBACK_FORMATTER = logging.Formatter()


class RedactCredentialsFilter(logging.Filter):
    """Rewrites the record in place, so every handler after this point (on this logger and on the ones it
    propagates to) sees only the redacted text: the message merged with its arguments, the traceback
    pre-rendered into `exc_text` (which logging.Formatter reuses) with `exc_info` dropped (a formatter that
    renders the exception object itself, as Prefect's JsonFormatter does, would show it raw), and the stack.
    Idempotent: a record that passes several copies of the filter is redacted once."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string; logging reports it with msg and args verbatim
            message = f"{record.msg} {record.args!r}"
        record.msg, record.args = redact_credentials(message), None
        if record.exc_info:
            if not record.exc_text:
                record.exc_text = _TRACEBACK_FORMATTER.formatException(record.exc_info)
            record.exc_info = None
        if record.exc_text:
            record.exc_text = redact_credentials(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_credentials(record.stack_info)
        return True


def _add_once(target: logging.Logger | logging.Handler) -> None:
    if not any(isinstance(f, RedactCredentialsFilter) for f in target.filters):
        target.addFilter(RedactCredentialsFilter())


def install_redaction(*logger_names: str) -> None:
    """Put the filter on the domain logger and on each named logger (a logger's filters see the records
    logged on it directly, and survive logging.config reconfiguring it), on their handlers and the root
    logger's (a handler's filters see the records propagated from child loggers, such as `trtllm_oci.hub.retry`,
    which a parent logger's filters never see), and on logging.lastResort (what prints warnings when no
    handler is configured, as in the CLI). Idempotent; call it again after handlers are added."""
    for name in (DOMAIN_LOGGER, *logger_names):
        logger = logging.getLogger(name)
        _add_once(logger)
        for handler in logger.handlers:
            _add_once(handler)
    for handler in logging.getLogger().handlers:
        _add_once(handler)
    if logging.lastResort is not None:
        _add_once(logging.lastResort)
