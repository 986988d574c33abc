"""Where a model's config.json comes from: a local directory, or only that one file from the Hugging Face Hub."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlsplit

from trtllm_oci.errors import TrtllmOciError
from trtllm_oci.model_facts import ModelFacts, load_model_facts
from trtllm_oci.spec import ModelSource


def fetch_config_json(source: ModelSource, endpoint: str | None = None) -> Path:
    """The path of config.json: read in place for a local model, else downloaded alone (a few KB).

    `endpoint`: the Hub's base URL (default: huggingface_hub's, i.e. $HF_ENDPOINT or https://huggingface.co)."""
    if source.local_dir is not None:
        return Path(source.local_dir)
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    token = os.environ.get("HF_TOKEN")
    try:
        return Path(hf_hub_download(source.hf_repo, "config.json", revision=source.revision, token=token,
                                    endpoint=endpoint, local_files_only=True))
    except LocalEntryNotFoundError:
        pass
    # huggingface_hub retries a failed connection five times with backoff (~23 s); plan and dry runs are
    # interactive, so one quick connection attempt decides whether the Hub is reachable at all.
    if not constants.HF_HUB_OFFLINE:
        endpoint = endpoint or constants.ENDPOINT
        unreachable = _unreachable(endpoint)
        if unreachable:
            raise TrtllmOciError(
                f"cannot fetch config.json of {source.label}: the Hugging Face Hub at {endpoint} is unreachable "
                f"({unreachable}) and the file is not in the local cache; use a local model directory holding its "
                f"config.json instead (--model DIR / model.local_dir), or set HF_ENDPOINT to a reachable mirror")
    try:
        return Path(hf_hub_download(source.hf_repo, "config.json", revision=source.revision, token=token,
                                    endpoint=endpoint))
    except LocalEntryNotFoundError as exc:
        raise TrtllmOciError(
            f"cannot fetch config.json of {source.label}: the Hugging Face Hub is unreachable and it is not in "
            f"the local cache; use a local model directory holding its config.json instead (--model DIR / model.local_dir) ({exc.__class__.__name__})"
        ) from None
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        hint = (
            f"accept the license at https://huggingface.co/{source.hf_repo} and set HF_TOKEN"
            if status in (401, 403)
            else "check the repo id and revision"
        )
        raise TrtllmOciError(f"cannot fetch config.json of {source.label} (HTTP {status}); {hint}") from None


def _unreachable(endpoint: str, timeout_s: float = 5.0) -> str | None:
    """Why a TCP connection to `endpoint` fails, or None when it connects."""
    parts = urlsplit(endpoint)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=timeout_s):
            return None
    except OSError as exc:
        return f"{parts.hostname}:{port}: {exc.strerror or exc}"


def model_facts_for(source: ModelSource) -> ModelFacts:
    return load_model_facts(fetch_config_json(source))
