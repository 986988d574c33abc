"""Inter-process exclusive locks on one host (or a shared filesystem that honours flock).

The lock file is never deleted: unlinking a flock'd file lets a third process lock a fresh inode
while a second one still waits on the old one, and both would then think they hold the lock.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol

from trtllm_oci.errors import WaitTimeoutError


class LockTimeoutError(WaitTimeoutError):
    """Another process held the lock for longer than the caller was willing to wait."""


class LockFactory(Protocol):
    """Makes an exclusive lock for a name (a cache key, a repo@sha); used as `with lock(name): ...`."""

    def __call__(self, name: str) -> AbstractContextManager[None]: ...


@contextmanager
def file_lock(path: Path, timeout_s: float | None = None, poll_s: float = 0.1) -> Iterator[None]:
    """Hold an exclusive `fcntl.flock` on `path` (created if missing) for the duration of the block.

    `timeout_s=None` waits forever. The kernel drops the lock when the holder dies, so a crashed
    holder never leaves a stale lock behind.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if timeout_s is None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        else:
            deadline = time.monotonic() + timeout_s
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                    if time.monotonic() >= deadline:
                        raise LockTimeoutError(
                            f"Timed out after {timeout_s:.0f}s waiting for lock {path}; another run holds it. "
                            "Wait for that run to finish, or raise the timeout."
                        ) from None
                    time.sleep(poll_s)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


class DirectoryFileLocks:
    """`LockFactory` that maps a name to `<directory>/<name>.lock` and takes `file_lock` on it."""

    def __init__(self, directory: Path, timeout_s: float | None = None) -> None:
        self.directory = Path(directory)
        self.timeout_s = timeout_s

    def __call__(self, name: str) -> AbstractContextManager[None]:
        safe = "".join(c if c.isalnum() or c in "-_.@" else "_" for c in name)
        return file_lock(self.directory / f"{safe}.lock", timeout_s=self.timeout_s)
