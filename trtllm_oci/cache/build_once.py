"""Build each artifact at most once across concurrent runs and hosts."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from trtllm_oci.cache.key import EngineCacheKey, cache_key
from trtllm_oci.cache.manifest import ArtifactSummarizer, EngineManifest, EngineStore, LockFactoryArg
from trtllm_oci.files import LockTimeoutError


def build_once(inputs: EngineCacheKey, store: EngineStore, build_fn: Callable[[Path], Path | None],
               summarize: ArtifactSummarizer, lock: LockFactoryArg | None = None,
               verify_checksums: bool = False) -> tuple[EngineManifest, bool]:
    """Return `(manifest, hit)`; build at most once per key across concurrent runs.

    Fast path: a verified `lookup` hit returns without locking. Otherwise take `lock(key)` (default:
    the store's flock), look up again (a concurrent run may have published while we waited), and only
    then call `build_fn(build_dir)`. `build_fn` writes the engine into `build_dir` (a scratch dir on the
    store's filesystem, so publishing is a rename) and returns the engine directory (None = build_dir);
    `summarize` (the backend's) says what the built directory is, so the store can check it before publishing.
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
            manifest = store.publish(key, Path(engine_dir), inputs, summarize, move=True)
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
            raise LockTimeoutError(f"Could not acquire the build lock for engine {name} within {acquire_timeout}s; "
                               "another run is still building it.")
        try:
            yield
        finally:
            lock_manager.release_lock(f"engine-build-{name}", holder)

    return _lock
