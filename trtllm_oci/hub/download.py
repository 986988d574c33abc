"""Download the files a build needs from the Hugging Face Hub, pinned to a commit.

Layout under `dest_root`:

    <dest_root>/<org>--<name>/<commit_sha>/                 complete snapshot (has COMPLETE_MARKER)
    <dest_root>/<org>--<name>/.staging-<commit_sha>/        in-progress; `<file>.part` are partial files
    <dest_root>/<org>--<name>/.locks/<commit_sha>.lock      one downloader per snapshot

A snapshot directory only ever appears by renaming a fully verified staging directory that already
holds the completion marker, so a directory named after a sha is always complete.

Why not `snapshot_download`: in huggingface_hub 2.4.0 `_download_to_tmp_and_move` writes each file to a
process-unique `<etag>.<uuid>.incomplete` and unlinks it in a `finally`
(huggingface_hub:src/huggingface_hub/file_download.py@v2.4.0), so a partial multi-GB shard survives
neither a crash nor a task retry; its `http_get` only resumes within one call. Files are therefore
fetched here with our own ranged GETs into `.part` files that outlive the process, while metadata,
URLs, auth headers and error classification still come from huggingface_hub.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from functools import partial
from pathlib import Path

import httpx2
from huggingface_hub import HfApi, hf_hub_url
from huggingface_hub.hf_api import RepoFile
from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status
from pydantic import BaseModel

from trtllm_oci.files import DirectoryFileLocks, install_dir, path_inside, write_atomic
from trtllm_oci.hub.errors import (
    ChecksumMismatchError,
    HubTransferError,
    InsufficientDiskError,
    ModelNotFoundError,
    NoModelFilesError,
    human_bytes,
    translate_hub_error,
)
from trtllm_oci.hub.retry import RetryPolicy, call_with_retries
from trtllm_oci.hub.snapshot import DownloadResult, ModelFile, has_weights, select_files

logger = logging.getLogger(__name__)

COMPLETE_MARKER = ".trtllm-oci-download.json"
DEFAULT_MIN_FREE_BYTES_MARGIN = 2 * 1024**3
_CHUNK_BYTES = 8 * 1024 * 1024

ProgressCallback = Callable[[int, int, str], None]
LockFactoryArg = Callable[[str], AbstractContextManager[None]]


# ----------------------------------------------------------------------------------------- revision


def resolve_revision(repo_id: str, revision: str | None, token: str | None = None, endpoint: str | None = None,
                     retry: RetryPolicy | None = None) -> str:
    """Commit sha that `revision` (branch, tag, sha; None = main) points at now."""
    api = HfApi(endpoint=endpoint)
    info = call_with_retries(
        lambda: api.model_info(repo_id, revision=revision, token=token),
        what=f"Resolving {repo_id}@{revision or 'main'}", policy=retry or RetryPolicy(),
        translate=lambda e: translate_hub_error(e, repo_id, revision, token is not None),
    )
    if not info.sha:
        raise ModelNotFoundError(repo_id, revision, "revision", "the Hub returned no commit sha")
    if not _COMMIT_SHA_RE.fullmatch(info.sha):
        # It names the snapshot's directory: anything but a sha could climb out of the models directory.
        raise HubTransferError(f"the Hub answered {repo_id}@{revision or 'main'} with the commit {info.sha[:80]!r}, "
                               "which is not a 40-character hex sha; check HF_ENDPOINT points at a Hugging Face Hub")
    return info.sha


# ----------------------------------------------------------------------------------------- download


_COMMIT_SHA_RE = re.compile(r"[0-9a-f]{40}")
_REPO_ID_RE = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def repo_dir_name(repo_id: str) -> str:
    """`org--name`: one directory name (a repo id with '..' or more slashes is refused, it would climb out)."""
    if not _REPO_ID_RE.fullmatch(repo_id) or ".." in repo_id:
        raise ModelNotFoundError(repo_id, None, "repository", "not a Hugging Face repo id of the form '<org>/<name>'")
    return repo_id.replace("/", "--")


def _existing_ancestor(path: Path) -> Path:
    while not path.exists():
        path = path.parent
    return path


def _read_complete(snapshot: Path) -> DownloadResult | None:
    marker = snapshot / COMPLETE_MARKER
    try:
        result = DownloadResult.model_validate_json(marker.read_text())
    except (OSError, ValueError):
        return None
    for f in result.files:
        try:
            if (snapshot / f.path).stat().st_size != f.size:
                return None
        except OSError:
            return None
    return result.model_copy(update={"local_dir": snapshot})


def _git_blob_sha1_prefix(size: int) -> bytes:
    return b"blob %d\0" % size


class _RemoteFile(BaseModel):
    path: str
    size: int
    sha256: str | None = None  # LFS content hash
    blob_id: str | None = None  # git blob sha1 (non-LFS files only)


def _new_hasher(remote: _RemoteFile) -> tuple[hashlib._Hash | None, str | None]:
    if remote.sha256:
        return hashlib.sha256(), remote.sha256
    if remote.blob_id:
        h = hashlib.sha1(usedforsecurity=False)
        h.update(_git_blob_sha1_prefix(remote.size))
        return h, remote.blob_id
    return None, None


def _fetch_one(url: str, headers: dict[str, str], remote: _RemoteFile, staging: Path,
               report: Callable[[int], None], timeout: httpx2.Timeout) -> None:
    """One attempt at one file: resume `<file>.part` with a Range request, verify, rename into place.

    `report(bytes_of_this_file_on_disk)` is called as the file grows.
    """
    final = path_inside(staging, remote.path, "the Hub's file listing")
    part = staging / (remote.path + ".part")
    part.parent.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.exists() else 0
    if have > remote.size:
        part.unlink()
        have = 0
    hasher, expected_digest = _new_hasher(remote)
    if hasher is not None and have:
        with part.open("rb") as existing:
            while block := existing.read(_CHUNK_BYTES):
                hasher.update(block)
    report(have)

    if have < remote.size or remote.size == 0:
        request_headers = dict(headers)
        if have:
            request_headers["Range"] = f"bytes={have}-"
        with get_session().stream("GET", url, headers=request_headers, timeout=timeout) as response:
            if response.status_code >= 400:
                response.read()
                hf_raise_for_status(response)
            mode = "ab"
            if have and response.status_code == 200:
                # The server ignored Range: start over rather than append a second copy.
                logger.info("Server ignored Range for %s; restarting it from byte 0", remote.path)
                have = 0
                report(0)
                mode = "wb"
                hasher, expected_digest = _new_hasher(remote)
            elif have and response.status_code == 206:
                content_range = response.headers.get("Content-Range", "")
                if not content_range.startswith(f"bytes {have}-"):
                    raise HubTransferError(
                        f"Asked for {remote.path} from byte {have} but got Content-Range {content_range!r}.")
            with part.open(mode) as out:
                for chunk in response.iter_bytes():  # unbuffered: a drop keeps every byte received
                    if not chunk:
                        continue
                    out.write(chunk)
                    if hasher is not None:
                        hasher.update(chunk)
                    have += len(chunk)
                    report(have)
                out.flush()
                os.fsync(out.fileno())

    if have != remote.size:
        raise HubTransferError(f"{remote.path}: received {have} of {remote.size} bytes.")
    if hasher is not None and hasher.hexdigest() != expected_digest:
        part.unlink(missing_ok=True)
        report(0)
        raise ChecksumMismatchError(
            f"{remote.path}: digest {hasher.hexdigest()} does not match the Hub's {expected_digest}; "
            "the partial file was discarded and will be fetched again.")
    os.replace(part, final)


def _list_remote_files(api: HfApi, repo_id: str, sha: str, token: str | None, policy: RetryPolicy,
                       translate: Callable[[BaseException], BaseException]) -> list[_RemoteFile]:
    info = call_with_retries(
        lambda: api.model_info(repo_id, revision=sha, files_metadata=True, token=token),
        what=f"Listing files of {repo_id}@{sha}", policy=policy, translate=translate)
    siblings = {s.rfilename: s for s in (info.siblings or [])}
    wanted = select_files(list(siblings))
    if "config.json" not in wanted or not has_weights(wanted):
        raise NoModelFilesError(
            f"{repo_id}@{sha} has no {'config.json' if 'config.json' not in wanted else 'safetensors/.bin weights'} "
            f"at the top level (files: {sorted(siblings)[:20]}). TensorRT-LLM needs a Hugging Face "
            "transformers-format repo; pick that repo or pass a local directory.")
    missing_sizes = [n for n in wanted if siblings[n].size is None]
    sizes: dict[str, tuple[int, str | None, str | None]] = {}
    if missing_sizes:
        infos = call_with_retries(
            lambda: api.get_paths_info(repo_id, missing_sizes, revision=sha, token=token),
            what=f"Reading sizes of {len(missing_sizes)} files of {repo_id}@{sha}", policy=policy,
            translate=translate)
        for p in infos:
            if not isinstance(p, RepoFile):
                continue  # a folder: select_files picks top-level files only
            sizes[p.path] = (p.size, p.lfs.sha256 if p.lfs else None, None if p.lfs else p.blob_id)
    remote: list[_RemoteFile] = []
    for name in wanted:
        s = siblings[name]
        size: int | None
        if name in sizes:
            size, sha256, blob_id = sizes[name]
        else:
            size = s.size
            sha256 = s.lfs.sha256 if s.lfs else None
            blob_id = None if s.lfs else s.blob_id
        if size is None:
            raise HubTransferError(f"The Hub reported no size for {repo_id}/{name}; retry later.")
        remote.append(_RemoteFile(path=name, size=size, sha256=sha256, blob_id=blob_id))
    # Small files first: config.json / tokenizer failures (gating, 404) surface before gigabytes move.
    return sorted(remote, key=lambda r: (r.size, r.path))


def download_model(
    repo_id: str,
    revision: str | None,
    dest_root: Path,
    token: str | None = None,
    endpoint: str | None = None,
    progress: ProgressCallback | None = None,
    min_free_bytes_margin: int = DEFAULT_MIN_FREE_BYTES_MARGIN,
    retry: RetryPolicy | None = None,
    lock: LockFactoryArg | None = None,
    timeout_s: float = 60.0,
) -> DownloadResult:
    """Download the build-relevant files of `repo_id@revision` to `<dest_root>/<org>--<name>/<sha>`.

    Resolves the revision to a commit sha first, and downloads by that sha so a branch moving
    mid-download cannot mix commits. Returns at once (no listing, no transfer) if that snapshot is
    already complete. Raises `InsufficientDiskError` before transferring if the remaining bytes plus
    `min_free_bytes_margin` do not fit. `lock(name)` serialises concurrent downloads of one snapshot
    (default: flock under `<repo dir>/.locks`). `progress(done_bytes, total_bytes, current_file)`.
    """
    policy = retry or RetryPolicy()
    dest_root = Path(dest_root).expanduser()
    token_provided = token is not None
    sha = resolve_revision(repo_id, revision, token=token, endpoint=endpoint, retry=policy)
    logger.info("Resolved %s@%s to commit %s", repo_id, revision or "main", sha)

    repo_dir = dest_root / repo_dir_name(repo_id)
    snapshot = repo_dir / sha
    done = _read_complete(snapshot)
    if done is not None:
        return done.model_copy(update={"requested_revision": revision})

    locks = lock or DirectoryFileLocks(repo_dir / ".locks")
    with locks(sha):
        done = _read_complete(snapshot)  # another process may have finished while we waited
        if done is not None:
            return done.model_copy(update={"requested_revision": revision})
        if snapshot.exists():
            # A directory under the sha name without a valid marker was not made by us; keep it for inspection.
            quarantine = repo_dir / f".invalid-{sha}-{int(time.time())}"
            logger.warning("Snapshot dir %s has no valid completion marker; moving it to %s", snapshot, quarantine)
            snapshot.rename(quarantine)

        def translate(exc: BaseException, filename: str | None = None) -> BaseException:
            return translate_hub_error(exc, repo_id, sha, token_provided, filename)

        api = HfApi(endpoint=endpoint)
        remote = _list_remote_files(api, repo_id, sha, token, policy, translate)
        total = sum(r.size for r in remote)

        staging = repo_dir / f".staging-{sha}"
        staging.mkdir(parents=True, exist_ok=True)
        already = 0
        for r in remote:
            path_inside(staging, r.path, f"the Hub's file listing of {repo_id}@{sha[:12]}")
            if (staging / r.path).is_file() and (staging / r.path).stat().st_size == r.size:
                already += r.size
            elif (staging / (r.path + ".part")).is_file():
                already += min((staging / (r.path + ".part")).stat().st_size, r.size)
        needed = total - already
        free = shutil.disk_usage(_existing_ancestor(staging)).free
        if needed + min_free_bytes_margin > free:
            raise InsufficientDiskError(staging, needed, free, min_free_bytes_margin)

        headers = build_hf_headers(token=token)
        timeout = httpx2.Timeout(timeout_s, connect=min(timeout_s, 30.0))
        finished_bytes = 0
        for r in remote:
            target = staging / r.path

            def report(file_bytes: int, name: str = r.path, base: int = finished_bytes) -> None:
                if progress is not None:
                    progress(base + file_bytes, total, name)

            if not (target.is_file() and target.stat().st_size == r.size):  # else verified by an earlier run
                url = hf_hub_url(repo_id, r.path, revision=sha, endpoint=endpoint)
                fetch: Callable[[], None] = partial(_fetch_one, url, headers, r, staging, report, timeout)
                call_with_retries(fetch, what=f"Downloading {repo_id}/{r.path}@{sha[:12]}", policy=policy,
                                  translate=partial(translate, filename=r.path))
            finished_bytes += r.size
            report(0, base=finished_bytes)

        result = DownloadResult(
            repo_id=repo_id, requested_revision=revision, commit_sha=sha, local_dir=snapshot,
            files=[ModelFile(path=r.path, size=r.size, sha256=r.sha256) for r in sorted(remote, key=lambda r: r.path)],
            total_bytes=total,
        )
        write_atomic(staging / COMPLETE_MARKER, result.model_dump_json(indent=2))
        install_dir(staging, snapshot, durable=True)
        logger.info("Downloaded %s@%s (%s, %d files) to %s", repo_id, sha, human_bytes(total), len(remote), snapshot)
        return result
