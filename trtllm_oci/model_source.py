"""Where a model's config.json comes from: a local directory, or only that one file from the Hugging Face Hub."""

from __future__ import annotations

import os
from pathlib import Path

from trtllm_oci.errors import TrtllmOciError
from trtllm_oci.model_facts import ModelFacts, load_model_facts
from trtllm_oci.spec import ModelSource


def fetch_config_json(source: ModelSource) -> Path:
    """The path of config.json: read in place for a local model, else downloaded alone (a few KB)."""
    if source.local_dir is not None:
        return Path(source.local_dir)
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(
            hf_hub_download(source.hf_repo, "config.json", revision=source.revision, token=os.environ.get("HF_TOKEN"))
        )
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


def model_facts_for(source: ModelSource) -> ModelFacts:
    return load_model_facts(fetch_config_json(source))
