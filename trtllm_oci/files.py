"""Writing files so that readers only ever see complete ones, and exclusive locks between processes.

Every directory this tool produces (a downloaded snapshot, a cache entry, a model repository, the Triton
backend, the demo model) is filled under a staging name beside its final place and renamed into place in
one step; every small metadata file is written beside its target and replaced in one step. A crash leaves
a staging directory that the next run removes or resumes, never a half-written directory under the final
name.

Locks are `filelock` flocks: the kernel drops one when its holder dies, so a crashed holder leaves no
stale lock, and the lock file is never deleted (unlinking a flock'd file would let a third process lock a
fresh inode while a second still waits on the old one).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol

import filelock

from trtllm_oci.errors import ArtifactError, WaitTimeoutError


class PathEscapeError(ArtifactError):
    """A path from a manifest, an archive, a listing or a link would leave the directory it belongs to."""


def inside(root: Path, path: Path) -> bool:
    """Whether `path`, with every link and '..' resolved, is `root` or below it."""
    return Path(os.path.realpath(path)).is_relative_to(os.path.realpath(root))


def path_inside(root: Path, relative: str, what: str) -> Path:
    """`root / relative` for a relative path that came from outside (a manifest, a listing, an archive);
    an absolute path, a '..' that climbs out, or a link out of `root` is refused, naming `what` it came from."""
    if not relative or os.path.isabs(relative) or "\x00" in relative:
        raise PathEscapeError(f"{what} names the path {relative!r}, which is not a relative path inside {root}; "
                              "refusing to use it (the source is corrupt or hostile)")
    candidate = root / relative
    if not inside(root, candidate):
        raise PathEscapeError(f"{what} names the path {relative!r}, which leads outside {root}; refusing to use it "
                              "(the source is corrupt or hostile)")
    return candidate


class LockTimeoutError(WaitTimeoutError):
    """Another process held the lock for longer than the caller was willing to wait."""


class LockFactory(Protocol):
    """Makes an exclusive lock for a name (a cache key, a repo@sha); used as `with lock(name): ...`."""

    def __call__(self, name: str) -> AbstractContextManager[None]: ...


@contextmanager
def file_lock(path: Path, timeout_s: float | None = None) -> Iterator[None]:
    """Hold an exclusive flock on `path` (created if missing) for the block; `timeout_s=None` waits forever."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(path, timeout=-1 if timeout_s is None else timeout_s)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise LockTimeoutError(
            f"Timed out after {timeout_s:.0f}s waiting for lock {path}; another run holds it. "
            "Wait for that run to finish, or raise the timeout."
        ) from None
    try:
        yield
    finally:
        lock.release()


class DirectoryFileLocks:
    """`LockFactory` that maps a name to `<directory>/<name>.lock` and takes `file_lock` on it."""

    def __init__(self, directory: Path, timeout_s: float | None = None) -> None:
        self.directory = Path(directory)
        self.timeout_s = timeout_s

    def __call__(self, name: str) -> AbstractContextManager[None]:
        safe = "".join(c if c.isalnum() or c in "-_.@" else "_" for c in name)
        return file_lock(self.directory / f"{safe}.lock", timeout_s=self.timeout_s)


def fsync_dir(directory: Path) -> None:
    """Make a rename inside `directory` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: str | bytes, *, durable: bool = True) -> None:
    """Write `data` to `path` through a temporary file beside it, replaced in one step."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with tmp.open("wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    if durable:
        fsync_dir(path.parent)


def install_dir(staging: Path, final: Path, *, replace: bool = False, durable: bool = False) -> None:
    """Rename the filled `staging` directory to `final` in one step.

    With `replace`, an existing `final` is moved aside first and removed after, so a failure leaves either
    the old or the new tree; without it an existing `final` is an error (FileExistsError) and `staging` stays.
    """
    if final.exists() and replace:
        old = final.with_name(f".{final.name}.replaced-{os.getpid()}-{uuid.uuid4().hex[:6]}")
        final.rename(old)
        try:
            staging.rename(final)
        except BaseException:
            old.rename(final)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        if final.exists():
            raise FileExistsError(f"{final} already exists")
        staging.rename(final)
    if durable:
        fsync_dir(final.parent)


@contextmanager
def staged_dir(final: Path, *, replace: bool = False, durable: bool = False) -> Iterator[Path]:
    """Yield an empty directory beside `final` to fill; on success it becomes `final` (`install_dir`), on any
    error it is removed and `final` is untouched."""
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.staging-", dir=final.parent))
    try:
        yield staging
        install_dir(staging, final, replace=replace, durable=durable)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
