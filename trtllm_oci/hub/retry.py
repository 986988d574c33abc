"""Retries of transient Hub failures inside one call (tenacity), below the task-level retries of the flows.

The in-call retries ride out short outages while a multi-GB transfer is under way and keep the partial
files; a failure that persists through them raises `HubTransferError`, which a Prefect task retry then
resumes from the partial files."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from pydantic import BaseModel, Field
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from trtllm_oci.hub.errors import HubTransferError, is_retryable, retry_after_s

logger = logging.getLogger(__name__)


class RetryPolicy(BaseModel):
    """Exponential backoff with jitter for transient Hub errors (see `is_retryable`)."""

    max_attempts: int = Field(default=6, ge=1)
    base_delay_s: float = Field(default=1.0, ge=0)
    max_delay_s: float = Field(default=60.0, ge=0)
    max_retry_after_s: float = Field(default=300.0, ge=0)

    def delay_s(self, attempt: int, retry_after_s: float | None = None) -> float:
        """Delay before attempt `attempt + 1` (attempt counts from 1): full jitter, floored by Retry-After."""
        cap = min(self.max_delay_s, self.base_delay_s * (2 ** (attempt - 1)))
        delay = random.uniform(cap / 2, cap)
        if retry_after_s is not None:
            delay = max(delay, min(retry_after_s, self.max_retry_after_s))
        return delay


_T = TypeVar("_T")


class _Translated(Exception):
    """Carries an exception `translate` mapped to one of ours, so tenacity stops and we raise it bare."""

    def __init__(self, mapped: BaseException) -> None:
        self.mapped = mapped


def call_with_retries(fn: Callable[[], _T], *, what: str, policy: RetryPolicy,
                      translate: Callable[[BaseException], BaseException],
                      sleep: Callable[[float], None] = time.sleep) -> _T:
    """`fn()`, retried while it fails with a retryable error (`is_retryable`), waiting `policy.delay_s` (which
    honours Retry-After); an error `translate` maps to one of ours is raised at once, without the chain."""

    def attempt() -> _T:
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - classified by translate and is_retryable
            mapped = translate(exc)
            if mapped is not exc:
                raise _Translated(mapped) from None
            raise

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        return policy.delay_s(state.attempt_number, retry_after_s(exc) if exc else None)

    def log_retry(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        logger.warning("%s failed (%s: %s); attempt %d/%d, retrying in %.1fs", what, type(exc).__name__, exc,
                       state.attempt_number, policy.max_attempts, state.upcoming_sleep)

    retrying = Retrying(
        stop=stop_after_attempt(policy.max_attempts),
        wait=wait,
        retry=retry_if_exception(lambda e: not isinstance(e, _Translated) and is_retryable(e)),
        before_sleep=log_retry,
        sleep=sleep,
        reraise=True,
    )
    try:
        return retrying(attempt)
    except _Translated as translated:
        raise translated.mapped from None
    except Exception as exc:
        if is_retryable(exc):
            raise HubTransferError(
                f"{what} still failing after {policy.max_attempts} attempts: {type(exc).__name__}: {exc}. "
                "Partial files are kept; re-running resumes them."
            ) from exc
        raise
