"""A release's model: its config.json for plans, its files for builds, its commit for cache keys.

The token is the caller's (the flows read the `hf-token` Secret block first, the CLI only HF_TOKEN), so
every stage that touches the Hub sends the same one."""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from trtllm_oci.checkpoint.quant_config import (
    HF_QUANT_CONFIG_FILENAME,
    CheckpointQuantization,
    read_checkpoint_quantization,
)
from trtllm_oci.model_facts import ModelFacts, load_model_facts
from trtllm_oci.settings import Settings
from trtllm_oci.spec import ModelSource

if TYPE_CHECKING:
    from trtllm_oci.hub.download import ProgressCallback
    from trtllm_oci.hub.snapshot import DownloadResult

# The Hub client (huggingface_hub, httpx) is imported where a Hub model is used: a plan on a local
# directory, the common case, starts without it.


def model_facts(source: ModelSource, settings: Settings, token: str | None) -> ModelFacts:
    """The architecture facts the planner needs, from config.json alone (no weights are downloaded)."""
    if source.local_dir is not None:
        return load_model_facts(Path(source.local_dir))
    assert source.hf_repo is not None
    from trtllm_oci.hub.model_config import fetch_config_json

    return load_model_facts(fetch_config_json(source.hf_repo, source.revision, token=token,
                                              endpoint=settings.hf_endpoint))


def checkpoint_quantization(source: ModelSource, settings: Settings, token: str | None,
                            trtllm_version: str) -> CheckpointQuantization:
    """How the checkpoint is quantized already, read as TensorRT-LLM reads it (hf_quant_config.json first, then
    config.json's quantization_config), from its small files only."""
    if source.local_dir is not None:
        return read_checkpoint_quantization(Path(source.local_dir), trtllm_version)
    assert source.hf_repo is not None
    from trtllm_oci.hub.model_config import fetch_config_json, fetch_optional_file

    config = fetch_config_json(source.hf_repo, source.revision, token=token, endpoint=settings.hf_endpoint)
    modelopt = fetch_optional_file(source.hf_repo, source.revision, HF_QUANT_CONFIG_FILENAME, token=token,
                                   endpoint=settings.hf_endpoint)
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(config, Path(tmp) / "config.json")
        if modelopt is not None:
            shutil.copy(modelopt, Path(tmp) / HF_QUANT_CONFIG_FILENAME)
        return read_checkpoint_quantization(Path(tmp), trtllm_version)


def chat_template_present(source: ModelSource, settings: Settings, token: str | None) -> bool:
    """Whether the model's tokenizer has a chat template, from its small tokenizer files (Hub or local)."""
    from trtllm_oci.checkpoint.chat_template import CHAT_TEMPLATE_FILES, has_chat_template

    if source.local_dir is not None:
        return has_chat_template(Path(source.local_dir))
    assert source.hf_repo is not None
    from trtllm_oci.hub.model_config import fetch_config_json, fetch_optional_file

    fetch_config_json(source.hf_repo, source.revision, token=token, endpoint=settings.hf_endpoint)  # reachable?
    with tempfile.TemporaryDirectory() as tmp:
        for name in CHAT_TEMPLATE_FILES:
            found = fetch_optional_file(source.hf_repo, source.revision, name, token=token,
                                        endpoint=settings.hf_endpoint)
            if found is not None:
                shutil.copy(found, Path(tmp) / name)
        return has_chat_template(Path(tmp))


def fetch_model(source: ModelSource, settings: Settings, token: str | None,
                progress: ProgressCallback | None = None) -> DownloadResult:
    """The model's files on this host: a local directory as it is, or a Hub snapshot under
    `<TRTLLM_OCI_HOME>/models`, pinned to the commit its revision points at now."""
    from trtllm_oci.hub.download import download_model
    from trtllm_oci.hub.snapshot import use_local_model

    if source.local_dir is not None:
        return use_local_model(Path(source.local_dir))
    assert source.hf_repo is not None
    return download_model(source.hf_repo, source.revision, settings.models_dir, token=token,
                          endpoint=settings.hf_endpoint, progress=progress)


def model_commit(source: ModelSource, settings: Settings, token: str | None, *, dry_run: bool) -> tuple[str, str]:
    """(commit sha, how it was obtained) without downloading the weights; a dry run on a local directory
    that lacks weights keys on its config.json alone and says so."""
    from trtllm_oci.hub.download import resolve_revision
    from trtllm_oci.hub.errors import LocalModelError
    from trtllm_oci.hub.snapshot import use_local_model

    if source.local_dir is not None:
        try:
            return use_local_model(Path(source.local_dir)).commit_sha, "local directory content"
        except LocalModelError:
            if not dry_run:
                raise
            config = Path(source.local_dir)
            config = config / "config.json" if config.is_dir() else config
            return "local-config-" + hashlib.sha256(config.read_bytes()).hexdigest(), "config.json only (dry run)"
    assert source.hf_repo is not None
    if re.fullmatch(r"[0-9a-f]{40}", source.revision):
        return source.revision, "commit sha given"
    sha = resolve_revision(source.hf_repo, source.revision, token=token, endpoint=settings.hf_endpoint)
    return sha, f"resolved {source.revision} on the Hub"
