"""Content-addressed cache of built TensorRT-LLM engines.

The key is the sha256 of a canonical JSON of everything that changes the engine bytes (`EngineCacheKey`).
Stores keep `<key>/engine/...` plus a `manifest.json` that is written LAST, so an entry without a
manifest is by construction incomplete. What flows between pipeline stages is the small
`EngineManifest`, never engine bytes.

Local store layout (`LocalEngineStore(root)`):

    <root>/entries/<key>/engine/{config.json, rank0.engine, ...}
    <root>/entries/<key>/stat.json        size/mtime_ns/inode per file, for cheap verification
    <root>/entries/<key>/manifest.json    the last file written, before the staging dir is renamed in
    <root>/tmp/<key>.<pid>.<rand>/          staging (publish) and build scratch dirs, same filesystem
    <root>/quarantine/<key>.<utc-stamp>/    corrupt entries, moved aside for inspection
    <root>/locks/<key>.lock                 flock used by build_once

The Object Storage store is in `object_storage_store.py`; `stores.open_engine_store` picks one from a location.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, field_validator

from trtllm_oci.errors import ArtifactError, InputError
from trtllm_oci.files import DirectoryFileLocks

logger = logging.getLogger(__name__)

CACHE_ENV = "TRTLLM_OCI_CACHE"
CACHE_KEY_SCHEMA = 1
MANIFEST_NAME = "manifest.json"
STAT_NAME = "stat.json"
ENGINE_SUBDIR = "engine"
_HASH_CHUNK = 16 * 1024 * 1024
_STALE_TMP_AGE_S = 24 * 3600

LockFactoryArg = Callable[[str], AbstractContextManager[None]]
UNRESOLVED_DIGEST_PREFIX = "unresolved:"
CPU_REFERENCE_ARCH = "cpu"  # the CPU reference backend's artifact runs on no GPU


class EngineValidationError(ArtifactError):
    """A built engine directory is not what the key inputs promise (world size, rank files, config.json)."""


class MaterializeError(ArtifactError):
    """An engine cannot be made available at the requested place without copying its bytes."""


# ---------------------------------------------------------------------------------------------- key


def default_cache_root() -> Path:
    """`$TRTLLM_OCI_CACHE`, else `engines/` under the trtllm-oci home (`$TRTLLM_OCI_HOME` or ~/.cache/trtllm-oci)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    home = os.environ.get("TRTLLM_OCI_HOME")
    return (Path(home).expanduser() if home else Path.home() / ".cache" / "trtllm-oci") / "engines"


BuildOptionValue = bool | int | float | str | None | list[Any] | dict[str, Any]


class EngineCacheKey(BaseModel):
    """Everything that determines the engine bytes. Changing ANY field changes `cache_key()`.

    `build_options` holds the trtllm-build limits and flags exactly as passed (e.g. max_batch_size,
    max_seq_len, max_num_tokens, gemm_plugin, use_paged_context_fmha); an option left out and an
    option set to its default give different keys, so pass the same (complete) dict every time.
    `image_digest` must be a content digest, not a tag: a tag can move to a different TRT-LLM build.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    model_commit_sha: str = Field(min_length=1)
    quantization: str = Field(min_length=1, description='e.g. "none", "fp8", "int4_awq", "w4a8_awq"')
    kv_cache_dtype: str = Field(min_length=1, description='e.g. "auto", "fp8", "int8"')
    tp: int = Field(ge=1)
    pp: int = Field(ge=1)
    build_options: dict[str, BuildOptionValue] = Field(default_factory=dict)
    trtllm_version: str = Field(min_length=1)
    image_digest: str
    gpu_arch: str

    @field_validator("image_digest")
    @classmethod
    def _digest(cls, v: str) -> str:
        # "unresolved:<image ref>" is only for dry runs on machines without the image; a build resolves the digest.
        if not (re.fullmatch(r"sha256:[0-9a-f]{64}", v) or v.startswith(UNRESOLVED_DIGEST_PREFIX)):
            raise InputError(f"image_digest {v!r} is not a content digest; pass 'sha256:<64 hex>' "
                             "(docker inspect --format '{{index .RepoDigests 0}}'), not a tag.")
        return v

    @field_validator("gpu_arch")
    @classmethod
    def _arch(cls, v: str) -> str:
        if v != CPU_REFERENCE_ARCH and not re.fullmatch(r"sm\d{2,3}[a-z]?", v):
            raise InputError(f"gpu_arch {v!r} must look like 'sm90' (H100/H200), 'sm80' (A100), 'sm89' (L40S) "
                             "or 'sm100' (B200): engines are only valid on the compute capability they were built for.")
        return v

    @property
    def world_size(self) -> int:
        return self.tp * self.pp


def _canonical(value: Any, where: str) -> Any:
    """JSON-safe value with one spelling per meaning: 2.0 -> 2, other floats -> their shortest repr string."""
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InputError(f"{where} is {value!r}; non-finite numbers cannot be part of a cache key.")
        return int(value) if value.is_integer() else f"float:{value!r}"
    if isinstance(value, dict):
        return {str(k): _canonical(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise InputError(f"{where} has unsupported type {type(value).__name__}; use JSON scalars, lists or dicts.")


def canonical_key_json(inputs: EngineCacheKey) -> str:
    """Sorted keys, no whitespace, ASCII, floats normalised (see `_canonical`), plus the key schema version."""
    payload = _canonical({"schema": CACHE_KEY_SCHEMA, **inputs.model_dump(mode="python")}, "inputs")
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def cache_key(inputs: EngineCacheKey) -> str:
    """sha256 hex of `canonical_key_json(inputs)`."""
    return hashlib.sha256(canonical_key_json(inputs).encode("ascii")).hexdigest()


# ---------------------------------------------------------------------------------------- manifest


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
    engine: dict[str, Any]  # summary of the engine dir (see summarize_engine_dir)
    created_at: datetime
    inputs: EngineCacheKey

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


REFERENCE_CONFIG_NAME = "engine_config.json"
REFERENCE_MARKER = "trtllm_oci_cpu_reference"


def summarize_engine_dir(engine_dir: Path, trtllm_version: str) -> dict[str, Any]:
    """The engine facts callers act on, plus `required_files`: what must be present for the engine to load.

    TensorRT-LLM engines are read by `engine_config.read_engine_config` (trtllm-build and legacy build.py
    layouts) and their rank files named per version. The CPU reference backend's artifact (an HF checkpoint
    with an `engine_config.json` carrying REFERENCE_MARKER) lists its own files.
    """
    from trtllm_oci.build.engine_config import EngineConfigError, expected_rank_files, read_engine_config
    from trtllm_oci.versions import get_version

    reference = engine_dir / REFERENCE_CONFIG_NAME
    if reference.is_file():
        try:
            config = json.loads(reference.read_text())
        except ValueError as exc:
            raise EngineValidationError(f"{reference} is not valid JSON ({exc}); the build did not finish.") from None
        marker = config.get(REFERENCE_MARKER)
        if not isinstance(marker, dict) or not marker.get("files"):
            raise EngineValidationError(f"{reference} lacks the {REFERENCE_MARKER} block listing the artifact's files.")
        mapping = config.get("pretrained_config", {}).get("mapping", {})
        build = config.get("build_config", {})
        return {
            "backend": "reference",
            "version": config.get("version"),
            "world_size": int(mapping.get("world_size", 1)),
            "tp_size": int(mapping.get("tp_size", 1)),
            "pp_size": int(mapping.get("pp_size", 1)),
            **{k: build.get(k) for k in ("max_batch_size", "max_input_len", "max_seq_len", "max_num_tokens")},
            "required_files": sorted(marker["files"]) + [REFERENCE_CONFIG_NAME],
        }
    try:
        summary = read_engine_config(engine_dir)
        required = expected_rank_files(summary, get_version(trtllm_version))
    except EngineConfigError as exc:
        raise EngineValidationError(str(exc)) from None
    return {"backend": "tensorrtllm", **summary.model_dump(), "version": summary.trtllm_version, "required_files": required}


def _validate_engine_dir(engine_dir: Path, inputs: EngineCacheKey) -> dict[str, Any]:
    summary = summarize_engine_dir(engine_dir, inputs.trtllm_version)
    if summary["world_size"] != inputs.world_size or summary["tp_size"] * summary["pp_size"] != inputs.world_size:
        raise EngineValidationError(
            f"{engine_dir / 'config.json'} says world_size={summary['world_size']} (tp={summary['tp_size']}, "
            f"pp={summary['pp_size']}) but the cache key asks for tp={inputs.tp} x pp={inputs.pp}; the checkpoint was "
            "converted with a different mapping. Re-run conversion with matching --tp_size/--pp_size.")
    missing = [n for n in summary["required_files"] if not (engine_dir / n).is_file()]
    if missing:
        raise EngineValidationError(f"{engine_dir} lacks {missing}; the build did not produce every rank.")
    return summary


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(_HASH_CHUNK):
            h.update(block)
    return h.hexdigest()


def _fsync_and_hash(path: Path) -> str:
    with path.open("rb") as fh:
        os.fsync(fh.fileno())
    return _sha256_file(path)


def _engine_files(engine_dir: Path) -> list[Path]:
    return sorted(p for p in engine_dir.rglob("*") if p.is_file())


def _write_json_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    with tmp.open("w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _utc_stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")


# ------------------------------------------------------------------------------------------- stores


@runtime_checkable
class EngineStore(Protocol):
    def lookup(self, key: str, verify_checksums: bool = False) -> EngineManifest | None: ...

    def publish(self, key: str, built_dir: Path, inputs: EngineCacheKey, move: bool = False) -> EngineManifest: ...

    def materialize(self, manifest: EngineManifest, dest: Path | None = None) -> Path: ...

    def evict(self, key: str) -> bool: ...

    def new_build_dir(self, key: str) -> AbstractContextManager[Path]: ...

    def default_lock(self) -> LockFactoryArg: ...


class LocalEngineStore:
    """Engines on a local (or shared POSIX) filesystem; hits cost a few stat() calls, never a copy.

    Verification on `lookup`: the manifest parses and matches the key, world_size == tp*pp, every file
    (all rank files included) exists with the recorded size, and its (mtime_ns, inode) equal the ones
    recorded in `stat.json` at publish time. A file whose size matches but whose mtime/inode changed
    (touched, restored from backup) is re-hashed and accepted only if its sha256 still matches.
    `verify_checksums=True` re-hashes every file (minutes for 20+ GB; use it after disk trouble).
    """

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else default_cache_root()
        self.entries = self.root / "entries"
        self.tmp = self.root / "tmp"
        self.quarantine_dir = self.root / "quarantine"
        for d in (self.entries, self.tmp, self.quarantine_dir, self.root / "locks"):
            d.mkdir(parents=True, exist_ok=True)

    def entry_dir(self, key: str) -> Path:
        if not re.fullmatch(r"[0-9a-f]{64}", key):
            raise InputError(f"Cache key {key!r} is not a sha256 hex digest; compute it with cache_key(inputs).")
        return self.entries / key

    def default_lock(self) -> LockFactoryArg:
        return DirectoryFileLocks(self.root / "locks")

    # ---------------------------------------------------------------- lookup
    def lookup(self, key: str, verify_checksums: bool = False) -> EngineManifest | None:
        entry = self.entry_dir(key)
        if not entry.exists():
            return None
        reason = None
        manifest: EngineManifest | None = None
        manifest_path = entry / MANIFEST_NAME
        if not manifest_path.is_file():
            reason = "manifest.json is missing (entries appear complete by rename, so something removed it)"
        else:
            try:
                manifest = EngineManifest.model_validate_json(manifest_path.read_text())
            except (OSError, ValueError) as exc:
                reason = f"manifest.json is unreadable ({type(exc).__name__}: {str(exc).splitlines()[0]})"
        if manifest is not None:
            reason = self._verify(entry, key, manifest, verify_checksums)
        if reason is not None:
            self._quarantine(key, reason)
            return None
        return manifest

    def _verify(self, entry: Path, key: str, manifest: EngineManifest, full: bool) -> str | None:
        if manifest.key != key:
            return f"manifest key {manifest.key} does not match the entry {key}"
        if cache_key(manifest.inputs) != key:
            return "manifest inputs do not hash to the entry key"
        world = manifest.inputs.world_size
        if manifest.engine.get("world_size") != world:
            return f"engine world_size {manifest.engine.get('world_size')} != tp*pp {world}"
        listed = {f.path for f in manifest.files}
        missing_ranks = [n for n in manifest.engine.get("required_files", []) if n not in listed]
        if missing_ranks:
            return f"manifest lists no {missing_ranks}"
        try:
            stats = json.loads((entry / STAT_NAME).read_text())
        except (OSError, ValueError):
            stats = {}
        engine_dir = entry / ENGINE_SUBDIR
        restat = False
        for f in manifest.files:
            path = engine_dir / f.path
            try:
                st = path.stat()
            except FileNotFoundError:
                return f"{f.path} is missing"
            if st.st_size != f.size:
                return f"{f.path} is {st.st_size} bytes, manifest says {f.size} (truncated or replaced)"
            cheap_ok = stats.get(f.path) == [st.st_size, st.st_mtime_ns, st.st_ino]
            if full or not cheap_ok:
                digest = _sha256_file(path)
                if digest != f.sha256:
                    return f"{f.path} sha256 {digest} != manifest {f.sha256}"
                if not cheap_ok:
                    restat = True
        if restat:
            self._write_stats(entry, manifest)
        return None

    def _write_stats(self, entry: Path, manifest: EngineManifest) -> None:
        engine_dir = entry / ENGINE_SUBDIR
        stats = {}
        for f in manifest.files:
            st = (engine_dir / f.path).stat()
            stats[f.path] = [st.st_size, st.st_mtime_ns, st.st_ino]
        _write_json_atomic(entry / STAT_NAME, json.dumps(stats, sort_keys=True))

    def _quarantine(self, key: str, reason: str) -> None:
        target = self.quarantine_dir / f"{key}.{_utc_stamp()}"
        try:
            os.rename(self.entries / key, target)
        except FileNotFoundError:
            return  # another process quarantined or evicted it first
        (target / "QUARANTINE_REASON.txt").write_text(reason + "\n")
        logger.warning("Engine cache entry %s is corrupt: %s. Moved it to %s; it will be rebuilt.", key, reason,
                       target)

    # ---------------------------------------------------------------- publish
    @contextmanager
    def new_build_dir(self, key: str) -> Iterator[Path]:
        """Scratch dir on the store's filesystem, so `publish(..., move=True)` is a rename, not a copy."""
        self.entry_dir(key)
        self.clean_stale_tmp()
        path = self.tmp / f"{key}.{os.getpid()}.{uuid.uuid4().hex[:8]}.build"
        path.mkdir(parents=True)
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def publish(self, key: str, built_dir: Path, inputs: EngineCacheKey, move: bool = False) -> EngineManifest:
        """Validate, hash and atomically install `built_dir` under `key`; returns the manifest.

        `move=True` renames `built_dir` into the store (must be on the same filesystem, e.g. a
        `new_build_dir`), otherwise its files are copied. Steps: validate, stage under tmp/, fsync and
        hash every file, write stat.json, write manifest.json last, then rename the staging dir to
        entries/<key> in one step. A crash leaves only a tmp/ dir (removed by `clean_stale_tmp` once its
        process is gone) and nothing under entries/. If a valid entry already exists it is returned and
        the new build dropped.
        """
        if cache_key(inputs) != key:
            raise InputError(f"Key {key} is not cache_key(inputs) = {cache_key(inputs)}; compute it from the "
                             "same EngineCacheKey you pass here.")
        built_dir = Path(built_dir)
        summary = _validate_engine_dir(built_dir, inputs)
        self.clean_stale_tmp()
        stage = self.tmp / f"{key}.{os.getpid()}.{uuid.uuid4().hex[:8]}.publish"
        stage.mkdir(parents=True)
        try:
            engine_dir = stage / ENGINE_SUBDIR
            if move:
                os.rename(built_dir, engine_dir)
            else:
                shutil.copytree(built_dir, engine_dir)
            paths = _engine_files(engine_dir)
            # hashlib releases the GIL on large updates: one thread per rank file hashes in parallel.
            with ThreadPoolExecutor(max_workers=max(1, min(len(paths), os.cpu_count() or 1))) as pool:
                digests = list(pool.map(_fsync_and_hash, paths))
            files = [EngineFile(path=p.relative_to(engine_dir).as_posix(), size=p.stat().st_size, sha256=d)
                     for p, d in zip(paths, digests, strict=True)]
            entry = self.entries / key
            manifest = EngineManifest(key=key, uri=(entry / ENGINE_SUBDIR).resolve().as_uri(), files=files,
                                      engine=summary, created_at=datetime.now(UTC), inputs=inputs)
            stats = {}
            for f in files:
                st = (engine_dir / f.path).stat()
                stats[f.path] = [st.st_size, st.st_mtime_ns, st.st_ino]
            _write_json_atomic(stage / STAT_NAME, json.dumps(stats, sort_keys=True))
            _write_json_atomic(stage / MANIFEST_NAME, manifest.model_dump_json(indent=2))  # last file written
            existing = self.lookup(key)
            if existing is not None:
                logger.info("Engine %s was published concurrently; keeping the existing entry", key)
                return existing
            os.rename(stage, entry)  # the complete entry, manifest included, appears in one step
            _fsync_dir(self.entries)
            logger.info("Published engine %s (%d files, %.1f GiB)", key, len(files), manifest.total_bytes / 2**30)
            return manifest
        finally:
            if stage.exists():
                shutil.rmtree(stage, ignore_errors=True)

    def clean_stale_tmp(self, max_age_s: float = _STALE_TMP_AGE_S) -> list[Path]:
        """Remove tmp/ dirs whose creating process is gone (same host) or that are older than `max_age_s`."""
        removed = []
        now = time.time()
        for d in self.tmp.iterdir():
            parts = d.name.split(".")
            pid = int(parts[1]) if len(parts) >= 3 and parts[1].isdigit() else None
            try:
                age = now - d.stat().st_mtime
            except FileNotFoundError:
                continue
            if (pid is not None and pid != os.getpid() and not _pid_alive(pid)) or age > max_age_s:
                shutil.rmtree(d, ignore_errors=True)
                removed.append(d)
        return removed

    # ---------------------------------------------------------------- use / evict
    def materialize(self, manifest: EngineManifest, dest: Path | None = None) -> Path:
        """The engine directory to hand to Triton. `dest=None`: the stored directory itself (read-only use).

        With `dest`, a tree of hard links to the stored files (same filesystem required; the link shares
        the inode, so writing through it would be detected as corruption on the next lookup). Never copies.
        """
        stored = self.entry_dir(manifest.key) / ENGINE_SUBDIR
        if dest is None:
            return stored
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        for f in manifest.files:
            target = dest / f.path
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists():
                if os.path.samefile(target, stored / f.path):
                    continue
                target.unlink()
            try:
                os.link(stored / f.path, target)
            except OSError as exc:
                raise MaterializeError(
                    f"Cannot hard-link {stored / f.path} to {target} ({exc.strerror}); hard links need the same "
                    f"filesystem. Use materialize(manifest) to get the stored path {stored}, or put dest on "
                    f"{self.root}'s filesystem. Engine bytes are never copied on a cache hit.") from exc
        return dest

    def evict(self, key: str) -> bool:
        entry = self.entry_dir(key)
        doomed = self.tmp / f"{key}.{os.getpid()}.{uuid.uuid4().hex[:8]}.evict"
        try:
            os.rename(entry, doomed)
        except FileNotFoundError:
            return False
        shutil.rmtree(doomed, ignore_errors=True)
        return True


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ------------------------------------------------------------------------------------------ build once


def build_once(inputs: EngineCacheKey, store: EngineStore, build_fn: Callable[[Path], Path | None],
               lock: LockFactoryArg | None = None, verify_checksums: bool = False) -> tuple[EngineManifest, bool]:
    """Return `(manifest, hit)`; build at most once per key across concurrent runs.

    Fast path: a verified `lookup` hit returns without locking. Otherwise take `lock(key)` (default:
    the store's flock), look up again (a concurrent run may have published while we waited), and only
    then call `build_fn(build_dir)`. `build_fn` writes the engine into `build_dir` (a scratch dir on the
    store's filesystem, so publishing is a rename) and returns the engine directory (None = build_dir).
    `lock` is any `name -> context manager`; e.g. Prefect's FileSystemLockManager/RedisLockManager
    wrapped with `lock_manager_lock`.
    """
    key = cache_key(inputs)
    hit = store.lookup(key, verify_checksums=verify_checksums)
    if hit is not None:
        return hit, True
    locks = lock or store.default_lock()
    with locks(key):
        hit = store.lookup(key, verify_checksums=verify_checksums)
        if hit is not None:
            return hit, True
        with store.new_build_dir(key) as build_dir:
            engine_dir = build_fn(build_dir) or build_dir
            manifest = store.publish(key, Path(engine_dir), inputs, move=True)
        return manifest, False


def lock_manager_lock(lock_manager: Any, holder: str | None = None, acquire_timeout: float | None = None,
                      hold_timeout: float | None = None) -> LockFactoryArg:
    """Adapt an object with Prefect's LockManager protocol (`acquire_lock(key, holder, acquire_timeout,
    hold_timeout) -> bool`, `release_lock(key, holder)`; prefect:src/prefect/locking/protocol.py@3.8.8) to
    `build_once`'s `lock`. Duck-typed, so this module does not import Prefect."""
    holder = holder or f"{os.uname().nodename}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    @contextmanager
    def _lock(name: str) -> Iterator[None]:
        if not lock_manager.acquire_lock(f"engine-build-{name}", holder, acquire_timeout=acquire_timeout,
                                         hold_timeout=hold_timeout):
            raise TimeoutError(f"Could not acquire the build lock for engine {name} within {acquire_timeout}s; "
                               "another run is still building it.")
        try:
            yield
        finally:
            lock_manager.release_lock(f"engine-build-{name}", holder)

    return _lock
