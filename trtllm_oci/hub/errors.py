"""The Hub client's errors, how they are classified (retry or not) and how huggingface_hub's HTTP errors
map onto them. A Prefect `retry_condition_fn` can call `is_retryable` on whatever a task raised."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import httpx2
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    OfflineModeIsEnabled,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from trtllm_oci.errors import AccessError, CapacityError, InputError, ServiceError

# Where a token is looked for: the flows read this Prefect Secret block first, then HF_TOKEN (settings).
HF_TOKEN_SECRET_BLOCK = "hf-token"
HF_TOKEN_ENV = "HF_TOKEN"


def human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.1f} {unit}" if unit != "B" else f"{int(value)} B"
        value /= 1024
    return f"{n} B"


class GatedModelError(AccessError):
    """The repository is gated and the token is missing or has not been granted access."""

    def __init__(self, repo_id: str, status: int | None, server_message: str, token_provided: bool) -> None:
        self.repo_id = repo_id
        self.status = status
        self.license_url = f"https://huggingface.co/{repo_id}"
        if token_provided:
            action = (
                f"Your token was sent but has not been granted access. Open {self.license_url}, accept the "
                "license / request access with the account that owns the token, wait for approval, and re-run."
            )
        else:
            action = (
                f"No token was sent. Accept the license at {self.license_url}, then provide a token with read "
                f"access: set the {HF_TOKEN_ENV} environment variable, or (for flows) store it in a Prefect Secret "
                f"block named {HF_TOKEN_SECRET_BLOCK!r}."
            )
        detail = f" (HTTP {status}: {server_message.strip()})" if server_message.strip() else f" (HTTP {status})"
        super().__init__(f"Model {repo_id} is gated{detail}. {action}")


class ModelNotFoundError(InputError, LookupError):
    """The repository, the revision or a listed file does not exist (or is private and hidden)."""

    def __init__(self, repo_id: str, revision: str | None, what: Literal["repository", "revision", "file"],
                 detail: str = "", filename: str | None = None) -> None:
        self.repo_id = repo_id
        self.revision = revision
        self.what = what
        self.filename = filename
        rev = revision if revision is not None else "main"
        if what == "revision":
            msg = (f"Revision {rev!r} does not exist in model repo {repo_id}. Use a branch, tag or full "
                   f"40-character commit sha listed at https://huggingface.co/{repo_id}/commits/main.")
        elif what == "file":
            msg = (f"File {filename!r} is listed for {repo_id}@{rev} but the Hub returned 404 for it; the "
                   "revision may have been rewritten. Pin a commit sha and retry.")
        else:
            msg = (f"Model repo {repo_id!r} (revision {rev!r}) was not found. Check the repo id for typos; if "
                   f"it is private, set {HF_TOKEN_ENV} (or the Prefect Secret) to a token that can read it.")
        if detail.strip():
            msg += f" Hub said: {detail.strip()}"
        super().__init__(msg)


class HubAccessDeniedError(AccessError):
    """401/403 that is not a gated-repo refusal: an invalid or under-scoped token."""


class InsufficientDiskError(CapacityError, OSError):
    """The destination filesystem does not have room for the download plus the safety margin."""

    def __init__(self, path: Path, needed_bytes: int, free_bytes: int, margin_bytes: int) -> None:
        self.path = path
        self.needed_bytes = needed_bytes
        self.free_bytes = free_bytes
        self.margin_bytes = margin_bytes
        super().__init__(
            f"Not enough disk space at {path}: need {human_bytes(needed_bytes)} to download plus a "
            f"{human_bytes(margin_bytes)} margin, but only {human_bytes(free_bytes)} is free. Free space there, "
            "or point dest_root at a larger volume."
        )


class HubTransferError(ServiceError):
    """A transient transfer failure that persisted through the in-process retries.

    Partial files are kept, so retrying the whole call (e.g. a Prefect task retry) resumes them.
    """


class ChecksumMismatchError(HubTransferError):
    """A downloaded file's digest does not match the Hub's; the partial file was discarded."""


class NoModelFilesError(InputError):
    """The repository lacks what a build needs (config.json or weights)."""


class LocalModelError(InputError):
    """A local model directory is missing config.json, weights or tokenizer files."""


# ------------------------------------------------------------------------------------ classification


_RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


def _status_of(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


def is_retryable(exc: BaseException) -> bool:
    """True for failures worth retrying: connection errors, timeouts, 408/429/5xx, truncated transfers.

    Never for 401/403/404, gated repos, missing disk space or bad local input. Pure and cheap, so a
    Prefect `retry_condition_fn` can call it on the exception a task raised.
    """
    if isinstance(exc, (GatedModelError, ModelNotFoundError, HubAccessDeniedError, InsufficientDiskError,
                        NoModelFilesError, LocalModelError, OfflineModeIsEnabled)):
        return False
    if isinstance(exc, HubTransferError):
        return True
    if isinstance(exc, (HfHubHTTPError, httpx2.HTTPStatusError)):
        status = _status_of(exc)
        return status is not None and (status in _RETRYABLE_STATUS or 500 <= status < 600)
    if isinstance(exc, (httpx2.TimeoutException, httpx2.NetworkError, httpx2.RemoteProtocolError,
                        httpx2.ProxyError)):
        return True
    return isinstance(exc, (ConnectionError, TimeoutError))


def retry_after_s(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    if response is None or getattr(response, "status_code", None) not in (429, 503):
        return None
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        return None  # HTTP-date form: fall back to our own backoff


def translate_hub_error(exc: BaseException, repo_id: str, revision: str | None, token_provided: bool,
               filename: str | None = None) -> BaseException:
    """Map huggingface_hub's HTTP errors to our actionable, non-retryable ones; others pass through."""
    server_message = ""
    response = getattr(exc, "response", None)
    if response is not None:
        server_message = response.headers.get("X-Error-Message", "") or ""
    status = _status_of(exc)
    if isinstance(exc, GatedRepoError):
        return GatedModelError(repo_id, status, server_message, token_provided)
    if isinstance(exc, RevisionNotFoundError):
        return ModelNotFoundError(repo_id, revision, "revision", server_message)
    if isinstance(exc, RemoteEntryNotFoundError):
        return ModelNotFoundError(repo_id, revision, "file", server_message, filename=filename)
    if isinstance(exc, RepositoryNotFoundError):
        return ModelNotFoundError(repo_id, revision, "repository", server_message)
    if isinstance(exc, HfHubHTTPError) and status in (401, 403):
        return HubAccessDeniedError(
            f"The Hub refused access to {repo_id} (HTTP {status}: {server_message or 'no detail'}). The token in "
            f"{HF_TOKEN_ENV} / the Prefect Secret block {HF_TOKEN_SECRET_BLOCK!r} is invalid or lacks read scope; create a read token at "
            "https://huggingface.co/settings/tokens."
        )
    if isinstance(exc, HfHubHTTPError) and status == 404:
        return ModelNotFoundError(repo_id, revision, "file" if filename else "repository", server_message,
                                  filename=filename)
    return exc


