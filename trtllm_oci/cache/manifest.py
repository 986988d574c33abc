"""What a cache entry is: its files with their digests, a typed summary of the artifact, and the key inputs.

Stores keep `<key>/engine/...` plus a `manifest.json` that is written LAST, so an entry without a manifest
is by construction incomplete. What flows between pipeline stages is the small `EngineManifest`, never
artifact bytes. What an artifact's summary says (world size, files needed to load) comes from the backend
that made it (`summarize` callables), so the cache holds engines and checkpoints alike.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from trtllm_oci.cache.key import EngineCacheKey
from trtllm_oci.errors import ArtifactError

MANIFEST_NAME = "manifest.json"
ENGINE_SUBDIR = "engine"
_HASH_CHUNK = 16 * 1024 * 1024

LockFactoryArg = Callable[[str], AbstractContextManager[None]]


class EngineValidationError(ArtifactError, ValueError):
    """A built engine directory is not what the key inputs promise (world size, rank files, config.json)."""


class MaterializeError(ArtifactError):
    """An engine cannot be made available at the requested place without copying its bytes."""


class ArtifactSummary(BaseModel):
    """The facts callers act on: how many ranks the artifact serves and which files must be present."""

    # Manifests written before this model existed carried more engine facts (and a cache_hit flag).
    model_config = ConfigDict(extra="ignore", frozen=True)

    backend: str = Field(description="tensorrtllm (engines), reference (CPU reference checkpoint), ...")
    version: str | None = Field(default=None, description="TensorRT-LLM version the artifact was made by/for")
    world_size: int = Field(ge=1)
    tp_size: int = Field(ge=1)
    pp_size: int = Field(ge=1)
    max_batch_size: int | None = None
    max_input_len: int | None = None
    max_seq_len: int | None = None
    max_num_tokens: int | None = None
    required_files: list[str] = Field(default_factory=list)


ArtifactSummarizer = Callable[[Path], ArtifactSummary]


class EngineFile(BaseModel):
    model_config = ConfigDict(frozen=True)

    path: str  # relative to the engine directory
    size: int
    sha256: str


class EngineManifest(BaseModel):
    """What a build task returns: where the engine is and what it is (a few KB of JSON)."""

    key: str
    uri: str  # file:///... or oci://<bucket>@<namespace>/<prefix>/<key>/engine/
    files: list[EngineFile]
    artifact: ArtifactSummary = Field(validation_alias=AliasChoices("artifact", "engine"))
    created_at: datetime
    inputs: EngineCacheKey

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


def validate_artifact_dir(engine_dir: Path, inputs: EngineCacheKey, summarize: ArtifactSummarizer) -> ArtifactSummary:
    """The artifact's summary, checked against what the key asks for (world size, every required file)."""
    summary = summarize(engine_dir)
    if summary.world_size != inputs.world_size or summary.tp_size * summary.pp_size != inputs.world_size:
        raise EngineValidationError(
            f"{engine_dir / 'config.json'} says world_size={summary.world_size} (tp={summary.tp_size}, "
            f"pp={summary.pp_size}) but the cache key asks for tp={inputs.tp} x pp={inputs.pp}; the checkpoint was "
            "converted with a different mapping. Re-run conversion with matching --tp_size/--pp_size.")
    missing = [n for n in summary.required_files if not (engine_dir / n).is_file()]
    if missing:
        raise EngineValidationError(f"{engine_dir} lacks {missing}; the build did not produce every rank.")
    return summary


def manifest_problem(manifest: EngineManifest, key: str) -> str | None:
    """Why a stored manifest cannot be trusted for `key` (before any file is looked at), or None."""
    from trtllm_oci.cache.key import cache_key

    if manifest.key != key:
        return f"manifest key {manifest.key} does not match the entry {key}"
    if cache_key(manifest.inputs) != key:
        return "manifest inputs do not hash to the entry key"
    if manifest.artifact.world_size != manifest.inputs.world_size:
        return f"engine world_size {manifest.artifact.world_size} != tp*pp {manifest.inputs.world_size}"
    listed = {f.path for f in manifest.files}
    if missing := [n for n in manifest.artifact.required_files if n not in listed]:
        return f"manifest lists no {missing}"
    return None


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(_HASH_CHUNK):
            h.update(block)
    return h.hexdigest()


def fsync_and_hash(path: Path) -> str:
    with path.open("rb") as fh:
        os.fsync(fh.fileno())
    return sha256_file(path)


def artifact_files(engine_dir: Path) -> list[Path]:
    return sorted(p for p in engine_dir.rglob("*") if p.is_file())


def utc_stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")


@runtime_checkable
class EngineStore(Protocol):
    def lookup(self, key: str, verify_checksums: bool = False) -> EngineManifest | None: ...

    def publish(self, key: str, built_dir: Path, inputs: EngineCacheKey, summarize: ArtifactSummarizer,
                move: bool = False) -> EngineManifest: ...

    def materialize(self, manifest: EngineManifest, dest: Path | None = None) -> Path: ...

    def evict(self, key: str) -> bool: ...

    def new_build_dir(self, key: str) -> AbstractContextManager[Path]: ...

    def default_lock(self) -> LockFactoryArg: ...


