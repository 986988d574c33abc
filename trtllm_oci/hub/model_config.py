"""A model's config.json alone (a few KB) from the Hugging Face Hub, for plans and dry runs that must not
download the weights."""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlsplit

from trtllm_oci.errors import AccessError, InputError, ServiceError, redact_credentials
from trtllm_oci.hub.errors import HF_TOKEN_ENV, HF_TOKEN_SECRET_BLOCK


def fetch_config_json(repo_id: str, revision: str, token: str | None = None, endpoint: str | None = None) -> Path:
    """The local path of `repo_id@revision`'s config.json, from huggingface_hub's cache or the Hub.

    `token` is sent as given (the caller reads the Secret block or HF_TOKEN); `endpoint` is the Hub's base URL
    (default: huggingface_hub's)."""
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    label = f"{repo_id}@{revision}"
    try:
        return Path(hf_hub_download(repo_id, "config.json", revision=revision, token=token, endpoint=endpoint,
                                    local_files_only=True))
    except LocalEntryNotFoundError:
        pass
    # huggingface_hub retries a failed connection five times with backoff (~23 s); plan and dry runs are
    # interactive, so one quick connection attempt decides whether the Hub is reachable at all.
    if not constants.HF_HUB_OFFLINE:
        base = endpoint or constants.ENDPOINT
        unreachable = _unreachable(base)
        base = redact_credentials(base)
        if unreachable:
            raise ServiceError(
                f"cannot fetch config.json of {label}: the Hugging Face Hub at {base} is unreachable "
                f"({unreachable}) and the file is not in the local cache; use a local model directory holding its "
                f"config.json instead (--model DIR / model.local_dir), or set HF_ENDPOINT to a reachable mirror")
    try:
        return Path(hf_hub_download(repo_id, "config.json", revision=revision, token=token, endpoint=endpoint))
    except LocalEntryNotFoundError as exc:
        raise ServiceError(
            f"cannot fetch config.json of {label}: the Hugging Face Hub is unreachable and it is not in the local "
            f"cache; use a local model directory holding its config.json instead (--model DIR / model.local_dir) "
            f"({exc.__class__.__name__})"
        ) from None
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        if status in (401, 403):
            raise AccessError(
                f"cannot fetch config.json of {label} (HTTP {status}); accept the license at "
                f"https://huggingface.co/{repo_id} and set {HF_TOKEN_ENV} (or, for flows, the Prefect Secret block "
                f"{HF_TOKEN_SECRET_BLOCK!r})") from None
        raise InputError(f"cannot fetch config.json of {label} (HTTP {status}); check the repo id and revision") from None


def _unreachable(endpoint: str, timeout_s: float = 5.0) -> str | None:
    """Why a TCP connection to `endpoint` fails, or None when it connects."""
    parts = urlsplit(endpoint)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=timeout_s):
            return None
    except OSError as exc:
        return f"{parts.hostname}:{port}: {exc.strerror or exc}"


def fetch_optional_file(repo_id: str, revision: str, filename: str, token: str | None = None,
                        endpoint: str | None = None) -> Path | None:
    """A small repository file (e.g. hf_quant_config.json) from huggingface_hub's cache or the Hub; None when
    the repository has no such file. Call after `fetch_config_json`, which checks the Hub is reachable."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError

    try:
        return Path(hf_hub_download(repo_id, filename, revision=revision, token=token, endpoint=endpoint))
    except EntryNotFoundError:
        return None
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        if status == 404:
            return None
        raise ServiceError(f"cannot fetch {filename} of {repo_id}@{revision} (HTTP {status})") from None
