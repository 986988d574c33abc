"""A model snapshot on disk: which repository files a build needs, and a local directory used as is."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from trtllm_oci.hub.errors import LocalModelError


class ModelFile(BaseModel):
    """One file of a snapshot, relative to `local_dir`."""

    model_config = ConfigDict(frozen=True)

    path: str
    size: int
    sha256: str | None = None  # LFS files: the Hub's sha256, verified after download


class DownloadResult(BaseModel):
    """What the download stage hands to the build stage (small and JSON-serialisable)."""

    repo_id: str
    requested_revision: str | None
    commit_sha: str
    local_dir: Path
    files: list[ModelFile]
    total_bytes: int
    source: Literal["hub", "local"] = "hub"
    completed_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


# ------------------------------------------------------------------------------------- file selection


# A pre-quantized checkpoint (ModelOpt) describes its quantization beside config.json; TensorRT-LLM reads both.
_ALWAYS = {"config.json", "generation_config.json", "hf_quant_config.json", "quant_cfg.json"}
_TOKENIZER_NAMES = {
    "tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
    "vocab.json", "vocab.txt", "merges.txt", "spiece.model", "sentencepiece.bpe.model", "chat_template.jinja",
    "chat_template.json", "preprocessor_config.json",
}
_SKIP_SAFETENSORS_PREFIXES = ("consolidated",)  # Mistral ships a second, non-HF copy of the weights


def select_files(sibling_names: list[str]) -> list[str]:
    """Pick the repo files a TensorRT-LLM checkpoint conversion needs, sorted.

    Kept (top level only): config.json, generation_config.json, tokenizer files (the HF tokenizer
    set plus `*.tiktoken`), remote-code `*.py` (custom configs/tokenizers need them), and the weights:
    all `*.safetensors` (except Mistral's duplicate `consolidated*`) with their `*.index.json`, or, only
    when no safetensors exist, `pytorch_model*.bin` with its index. Everything else (onnx, msgpack,
    h5, gguf, `original/`, READMEs, images...) is skipped.
    """
    top = [n for n in sibling_names if "/" not in n]
    chosen = {n for n in top if n in _ALWAYS or n in _TOKENIZER_NAMES or n.endswith(".tiktoken") or n.endswith(".py")}
    safetensors = [n for n in top if n.endswith(".safetensors") and not n.startswith(_SKIP_SAFETENSORS_PREFIXES)]
    if safetensors:
        chosen.update(safetensors)
        chosen.update(n for n in top if n.endswith(".safetensors.index.json"))
    else:
        chosen.update(n for n in top if n.startswith("pytorch_model") and n.endswith(".bin"))
        chosen.update(n for n in top if n.startswith("pytorch_model") and n.endswith(".bin.index.json"))
    return sorted(chosen)


def has_weights(names: list[str]) -> bool:
    return any(n.endswith((".safetensors", ".bin")) for n in names)


# ------------------------------------------------------------------------------------ local directory


def use_local_model(path: Path) -> DownloadResult:
    """Use a model directory already on disk (air-gapped mirrors, fine-tunes) instead of the Hub.

    Requires config.json (valid JSON), weights (`*.safetensors` or `pytorch_model*.bin`) and a
    tokenizer (tokenizer.json, tokenizer.model, vocab.json, vocab.txt or `*.tiktoken`).

    `commit_sha` is `"local-"` + sha256 over the sorted lines `path\\tsize\\tmtime_ns` of the selected
    files. It is cheap (no file contents are read, which matters at 100+ GB) and changes whenever a
    selected file is added, removed, resized or rewritten; it does NOT change for an in-place edit that
    preserves both size and mtime (e.g. `cp -p` of a same-sized file), so don't do that. It can never
    equal a Hub commit sha (40 hex chars), so local and Hub builds never share engine cache keys.
    """
    root = Path(path).expanduser().resolve()
    if not root.is_dir():
        raise LocalModelError(f"Local model path {root} is not a directory. Pass the directory holding config.json.")
    names = sorted(p.name for p in root.iterdir() if p.is_file())
    selected = select_files(names)
    config = root / "config.json"
    if not config.is_file():
        raise LocalModelError(f"{root} has no config.json; point at the Hugging Face model directory itself.")
    try:
        json.loads(config.read_text())
    except ValueError as exc:
        raise LocalModelError(f"{config} is not valid JSON ({exc}); re-export the model.") from None
    if not has_weights(selected):
        raise LocalModelError(
            f"{root} has no weights (*.safetensors or pytorch_model*.bin at the top level); found {names[:20]}.")
    if not any(n in {"tokenizer.json", "tokenizer.model", "vocab.json", "vocab.txt"} or n.endswith(".tiktoken")
               for n in selected):
        raise LocalModelError(
            f"{root} has no tokenizer (tokenizer.json, tokenizer.model, vocab.json, vocab.txt or *.tiktoken); "
            "save it next to the weights with tokenizer.save_pretrained().")
    files: list[ModelFile] = []
    digest = hashlib.sha256()
    for name in selected:
        st = (root / name).stat()
        files.append(ModelFile(path=name, size=st.st_size))
        digest.update(f"{name}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    return DownloadResult(
        repo_id=str(root), requested_revision=None, commit_sha="local-" + digest.hexdigest(), local_dir=root,
        files=files, total_bytes=sum(f.size for f in files), source="local",
    )


