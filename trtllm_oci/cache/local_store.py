"""The engine cache on a local (or shared POSIX) filesystem.

Local store layout (`LocalEngineStore(root)`):

    <root>/entries/<key>/engine/{config.json, rank0.engine, ...}
    <root>/entries/<key>/stat.json        size/mtime_ns/inode per file, for cheap verification
    <root>/entries/<key>/manifest.json    the last file written, before the staging dir is renamed in
    <root>/tmp/<key>.<pid>.<rand>/          staging (publish) and build scratch dirs, same filesystem
    <root>/quarantine/<key>.<utc-stamp>/    corrupt entries, moved aside for inspection
    <root>/locks/<key>.lock                 flock used by build_once

The Object Storage store is in `object_storage_store.py`; `stores.open_store` picks one for a location.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from trtllm_oci.cache.key import EngineCacheKey, cache_key
from trtllm_oci.cache.manifest import (
    ENGINE_SUBDIR,
    MANIFEST_NAME,
    ArtifactSummarizer,
    EngineFile,
    EngineManifest,
    LockFactoryArg,
    MaterializeError,
    artifact_files,
    fsync_and_hash,
    manifest_problem,
    sha256_file,
    utc_stamp,
    validate_artifact_dir,
)
from trtllm_oci.errors import InputError
from trtllm_oci.files import DirectoryFileLocks, install_dir, write_atomic

logger = logging.getLogger(__name__)

STAT_NAME = "stat.json"
_STALE_TMP_AGE_S = 24 * 3600


class LocalEngineStore:
    """Engines on a local (or shared POSIX) filesystem; hits cost a few stat() calls, never a copy.

    Verification on `lookup`: the manifest parses and matches the key, world_size == tp*pp, every file
    (all rank files included) exists with the recorded size, and its (mtime_ns, inode) equal the ones
    recorded in `stat.json` at publish time. A file whose size matches but whose mtime/inode changed
    (touched, restored from backup) is re-hashed and accepted only if its sha256 still matches.
    `verify_checksums=True` re-hashes every file (minutes for 20+ GB; use it after disk trouble).
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root).expanduser()
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
        if problem := manifest_problem(manifest, key):
            return problem
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
                digest = sha256_file(path)
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
        write_atomic(entry / STAT_NAME, json.dumps(stats, sort_keys=True))

    def _quarantine(self, key: str, reason: str) -> None:
        target = self.quarantine_dir / f"{key}.{utc_stamp()}"
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

    def publish(self, key: str, built_dir: Path, inputs: EngineCacheKey, summarize: ArtifactSummarizer,
                move: bool = False) -> EngineManifest:
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
        summary = validate_artifact_dir(built_dir, inputs, summarize)
        self.clean_stale_tmp()
        stage = self.tmp / f"{key}.{os.getpid()}.{uuid.uuid4().hex[:8]}.publish"
        stage.mkdir(parents=True)
        try:
            engine_dir = stage / ENGINE_SUBDIR
            if move:
                os.rename(built_dir, engine_dir)
            else:
                shutil.copytree(built_dir, engine_dir)
            paths = artifact_files(engine_dir)
            # hashlib releases the GIL on large updates: one thread per rank file hashes in parallel.
            with ThreadPoolExecutor(max_workers=max(1, min(len(paths), os.cpu_count() or 1))) as pool:
                digests = list(pool.map(fsync_and_hash, paths))
            files = [EngineFile(path=p.relative_to(engine_dir).as_posix(), size=p.stat().st_size, sha256=d)
                     for p, d in zip(paths, digests, strict=True)]
            entry = self.entries / key
            manifest = EngineManifest(key=key, uri=(entry / ENGINE_SUBDIR).resolve().as_uri(), files=files,
                                      artifact=summary, created_at=datetime.now(UTC), inputs=inputs)
            stats = {}
            for f in files:
                st = (engine_dir / f.path).stat()
                stats[f.path] = [st.st_size, st.st_mtime_ns, st.st_ino]
            write_atomic(stage / STAT_NAME, json.dumps(stats, sort_keys=True))
            write_atomic(stage / MANIFEST_NAME, manifest.model_dump_json(indent=2))  # last file written
            existing = self.lookup(key)
            if existing is not None:
                logger.info("Engine %s was published concurrently; keeping the existing entry", key)
                return existing
            install_dir(stage, entry, durable=True)  # the complete entry, manifest included, appears in one step
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


