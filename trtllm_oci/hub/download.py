"""Download the files a TensorRT-LLM build needs from the Hugging Face Hub, pinned to a commit.

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
import json
import logging
import os
import random
import re
import shutil
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, TextIO, TypeVar

import httpx2
from huggingface_hub import HfApi, hf_hub_url
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    OfflineModeIsEnabled,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status
from pydantic import BaseModel, ConfigDict, Field

from trtllm_oci.errors import AccessError, CapacityError, InputError, ServiceError
from trtllm_oci.files import DirectoryFileLocks

logger = logging.getLogger(__name__)

HF_TOKEN_ENV = "HF_TOKEN"
COMPLETE_MARKER = ".trtllm-oci-download.json"
DEFAULT_MIN_FREE_BYTES_MARGIN = 2 * 1024**3
_CHUNK_BYTES = 8 * 1024 * 1024
_COMMIT_SHA_RE = re.compile(r"^[0-9a-f]{40}$")

ProgressCallback = Callable[[int, int, str], None]
LockFactoryArg = Callable[[str], AbstractContextManager[None]]


# --------------------------------------------------------------------------------------------- errors


class GatedModelError(AccessError):
    """The repository is gated and the token is missing or has not been granted access."""

    def __init__(self, repo_id: str, status: int | None, server_message: str, token_provided: bool) -> None:
        self.repo_id = repo_id
        self.status = status
        self.license_url = f"https://huggingface.co/{repo_id}"
        if token_provided:
            action = (
                f"Your token was sent but has not been granted access. Open {self.license_url}, accept the "
                "license / request access with the account that owns the token, wait for approval, and re-run."
            )
        else:
            action = (
                f"No token was sent. Accept the license at {self.license_url}, then provide a token with read "
                f"access: set the {HF_TOKEN_ENV} environment variable, or store it in a Prefect Secret block "
                "and pass it as the flow's hf_token."
            )
        detail = f" (HTTP {status}: {server_message.strip()})" if server_message.strip() else f" (HTTP {status})"
        super().__init__(f"Model {repo_id} is gated{detail}. {action}")


class ModelNotFoundError(InputError, LookupError):
    """The repository, the revision or a listed file does not exist (or is private and hidden)."""

    def __init__(self, repo_id: str, revision: str | None, what: Literal["repository", "revision", "file"],
                 detail: str = "", filename: str | None = None) -> None:
        self.repo_id = repo_id
        self.revision = revision
        self.what = what
        self.filename = filename
        rev = revision if revision is not None else "main"
        if what == "revision":
            msg = (f"Revision {rev!r} does not exist in model repo {repo_id}. Use a branch, tag or full "
                   f"40-character commit sha listed at https://huggingface.co/{repo_id}/commits/main.")
        elif what == "file":
            msg = (f"File {filename!r} is listed for {repo_id}@{rev} but the Hub returned 404 for it; the "
                   "revision may have been rewritten. Pin a commit sha and retry.")
        else:
            msg = (f"Model repo {repo_id!r} (revision {rev!r}) was not found. Check the repo id for typos; if "
                   f"it is private, set {HF_TOKEN_ENV} (or the Prefect Secret) to a token that can read it.")
        if detail.strip():
            msg += f" Hub said: {detail.strip()}"
        super().__init__(msg)


class HubAccessDeniedError(AccessError):
    """401/403 that is not a gated-repo refusal: an invalid or under-scoped token."""


class InsufficientDiskError(CapacityError, OSError):
    """The destination filesystem does not have room for the download plus the safety margin."""

    def __init__(self, path: Path, needed_bytes: int, free_bytes: int, margin_bytes: int) -> None:
        self.path = path
        self.needed_bytes = needed_bytes
        self.free_bytes = free_bytes
        self.margin_bytes = margin_bytes
        super().__init__(
            f"Not enough disk space at {path}: need {_human(needed_bytes)} to download plus a "
            f"{_human(margin_bytes)} margin, but only {_human(free_bytes)} is free. Free space there, "
            "or point dest_root at a larger volume."
        )


class HubTransferError(ServiceError):
    """A transient transfer failure that persisted through the in-process retries.

    Partial files are kept, so retrying the whole call (e.g. a Prefect task retry) resumes them.
    """


class ChecksumMismatchError(HubTransferError):
    """A downloaded file's digest does not match the Hub's; the partial file was discarded."""


class NoModelFilesError(InputError):
    """The repository lacks what a build needs (config.json or weights)."""


class LocalModelError(InputError):
    """A local model directory is missing config.json, weights or tokenizer files."""


# --------------------------------------------------------------------------------------------- models


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


class RetryPolicy(BaseModel):
    """Exponential backoff with jitter for transient Hub errors (see `is_retryable`)."""

    max_attempts: int = Field(default=6, ge=1)
    base_delay_s: float = Field(default=1.0, ge=0)
    max_delay_s: float = Field(default=60.0, ge=0)
    max_retry_after_s: float = Field(default=300.0, ge=0)

    def delay_s(self, attempt: int, retry_after_s: float | None = None) -> float:
        """Delay before attempt `attempt + 1` (attempt counts from 1): full jitter, floored by Retry-After."""
        cap = min(self.max_delay_s, self.base_delay_s * (2 ** (attempt - 1)))
        delay = random.uniform(cap / 2, cap)
        if retry_after_s is not None:
            delay = max(delay, min(retry_after_s, self.max_retry_after_s))
        return delay


# ------------------------------------------------------------------------------------ classification


_RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


def _status_of(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


def is_retryable(exc: BaseException) -> bool:
    """True for failures worth retrying: connection errors, timeouts, 408/429/5xx, truncated transfers.

    Never for 401/403/404, gated repos, missing disk space or bad local input. Pure and cheap, so a
    Prefect `retry_condition_fn` can call it on the exception a task raised.
    """
    if isinstance(exc, (GatedModelError, ModelNotFoundError, HubAccessDeniedError, InsufficientDiskError,
                        NoModelFilesError, LocalModelError, OfflineModeIsEnabled)):
        return False
    if isinstance(exc, HubTransferError):
        return True
    if isinstance(exc, (HfHubHTTPError, httpx2.HTTPStatusError)):
        status = _status_of(exc)
        return status is not None and (status in _RETRYABLE_STATUS or 500 <= status < 600)
    if isinstance(exc, (httpx2.TimeoutException, httpx2.NetworkError, httpx2.RemoteProtocolError,
                        httpx2.ProxyError)):
        return True
    return isinstance(exc, (ConnectionError, TimeoutError))


def _retry_after_s(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    if response is None or getattr(response, "status_code", None) not in (429, 503):
        return None
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        return None  # HTTP-date form: fall back to our own backoff


def _translate(exc: BaseException, repo_id: str, revision: str | None, token_provided: bool,
               filename: str | None = None) -> BaseException:
    """Map huggingface_hub's HTTP errors to our actionable, non-retryable ones; others pass through."""
    server_message = ""
    response = getattr(exc, "response", None)
    if response is not None:
        server_message = response.headers.get("X-Error-Message", "") or ""
    status = _status_of(exc)
    if isinstance(exc, GatedRepoError):
        return GatedModelError(repo_id, status, server_message, token_provided)
    if isinstance(exc, RevisionNotFoundError):
        return ModelNotFoundError(repo_id, revision, "revision", server_message)
    if isinstance(exc, RemoteEntryNotFoundError):
        return ModelNotFoundError(repo_id, revision, "file", server_message, filename=filename)
    if isinstance(exc, RepositoryNotFoundError):
        return ModelNotFoundError(repo_id, revision, "repository", server_message)
    if isinstance(exc, HfHubHTTPError) and status in (401, 403):
        return HubAccessDeniedError(
            f"The Hub refused access to {repo_id} (HTTP {status}: {server_message or 'no detail'}). The token in "
            f"{HF_TOKEN_ENV} / the Prefect Secret is invalid or lacks read scope; create a read token at "
            "https://huggingface.co/settings/tokens."
        )
    if isinstance(exc, HfHubHTTPError) and status == 404:
        return ModelNotFoundError(repo_id, revision, "file" if filename else "repository", server_message,
                                  filename=filename)
    return exc


_T = TypeVar("_T")


def _call_with_retries(fn: Callable[[], _T], *, what: str, policy: RetryPolicy,
                          translate: Callable[[BaseException], BaseException],
                          sleep: Callable[[float], None] = time.sleep) -> _T:
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - classified right below
            mapped = translate(exc)
            if mapped is not exc:
                raise mapped from None
            if not is_retryable(exc):
                raise
            if attempt >= policy.max_attempts:
                raise HubTransferError(
                    f"{what} still failing after {attempt} attempts: {type(exc).__name__}: {exc}. Partial "
                    "files are kept; re-running resumes them."
                ) from exc
            delay = policy.delay_s(attempt, _retry_after_s(exc))
            logger.warning("%s failed (%s: %s); attempt %d/%d, retrying in %.1fs", what, type(exc).__name__,
                           exc, attempt, policy.max_attempts, delay)
            sleep(delay)


# ------------------------------------------------------------------------------------- file selection


_ALWAYS = {"config.json", "generation_config.json"}
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


def _has_weights(names: list[str]) -> bool:
    return any(n.endswith((".safetensors", ".bin")) for n in names)


# ----------------------------------------------------------------------------------------- revision


def resolve_token(token: str | None) -> str | None:
    """Explicit token, else `$HF_TOKEN`, else None (huggingface_hub then uses a token saved by `hf auth login`)."""
    return token or os.environ.get(HF_TOKEN_ENV) or None


def resolve_revision(repo_id: str, revision: str | None, token: str | None = None, endpoint: str | None = None,
                     retry: RetryPolicy | None = None) -> str:
    """Commit sha that `revision` (branch, tag, sha; None = main) points at now."""
    token = resolve_token(token)
    api = HfApi(endpoint=endpoint)
    info = _call_with_retries(
        lambda: api.model_info(repo_id, revision=revision, token=token),
        what=f"Resolving {repo_id}@{revision or 'main'}", policy=retry or RetryPolicy(),
        translate=lambda e: _translate(e, repo_id, revision, token is not None),
    )
    if not info.sha:
        raise ModelNotFoundError(repo_id, revision, "revision", "the Hub returned no commit sha")
    return info.sha


# ----------------------------------------------------------------------------------------- download


def repo_dir_name(repo_id: str) -> str:
    return repo_id.replace("/", "--")


def _human(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.1f} {unit}" if unit != "B" else f"{int(value)} B"
        value /= 1024
    return f"{n} B"


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
    final = staging / remote.path
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
    info = _call_with_retries(
        lambda: api.model_info(repo_id, revision=sha, files_metadata=True, token=token),
        what=f"Listing files of {repo_id}@{sha}", policy=policy, translate=translate)
    siblings = {s.rfilename: s for s in (info.siblings or [])}
    wanted = select_files(list(siblings))
    if "config.json" not in wanted or not _has_weights(wanted):
        raise NoModelFilesError(
            f"{repo_id}@{sha} has no {'config.json' if 'config.json' not in wanted else 'safetensors/.bin weights'} "
            f"at the top level (files: {sorted(siblings)[:20]}). TensorRT-LLM needs a Hugging Face "
            "transformers-format repo; pick that repo or pass a local directory.")
    missing_sizes = [n for n in wanted if siblings[n].size is None]
    sizes: dict[str, tuple[int, str | None, str | None]] = {}
    if missing_sizes:
        infos = _call_with_retries(
            lambda: api.get_paths_info(repo_id, missing_sizes, revision=sha, token=token),
            what=f"Reading sizes of {len(missing_sizes)} files of {repo_id}@{sha}", policy=policy,
            translate=translate)
        for p in infos:
            lfs = getattr(p, "lfs", None)
            sizes[p.path] = (p.size, lfs.sha256 if lfs else None, None if lfs else p.blob_id)
    remote: list[_RemoteFile] = []
    for name in wanted:
        s = siblings[name]
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
    token = resolve_token(token)
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
            return _translate(exc, repo_id, sha, token_provided, filename)

        api = HfApi(endpoint=endpoint)
        remote = _list_remote_files(api, repo_id, sha, token, policy, translate)
        total = sum(r.size for r in remote)

        staging = repo_dir / f".staging-{sha}"
        staging.mkdir(parents=True, exist_ok=True)
        already = 0
        for r in remote:
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
                _call_with_retries(
                    lambda r=r, url=url, report=report: _fetch_one(url, headers, r, staging, report, timeout),
                    what=f"Downloading {repo_id}/{r.path}@{sha[:12]}", policy=policy,
                    translate=lambda e, name=r.path: translate(e, name))
            finished_bytes += r.size
            report(0, base=finished_bytes)

        result = DownloadResult(
            repo_id=repo_id, requested_revision=revision, commit_sha=sha, local_dir=snapshot,
            files=[ModelFile(path=r.path, size=r.size, sha256=r.sha256) for r in sorted(remote, key=lambda r: r.path)],
            total_bytes=total,
        )
        _write_marker(staging, result)
        os.rename(staging, snapshot)
        _fsync_dir(repo_dir)
        logger.info("Downloaded %s@%s (%s, %d files) to %s", repo_id, sha, _human(total), len(remote), snapshot)
        return result


def _write_marker(directory: Path, result: DownloadResult) -> None:
    tmp = directory / (COMPLETE_MARKER + ".tmp")
    with tmp.open("w") as f:
        f.write(result.model_dump_json(indent=2))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, directory / COMPLETE_MARKER)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
    if not _has_weights(selected):
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


# ------------------------------------------------------------------------------------------ progress


def tty_progress_printer(stream: TextIO | None = None, min_interval_s: float | None = None) -> ProgressCallback:
    """A `progress` callback for CLIs: one self-overwriting line on a terminal, periodic lines otherwise.

    Prints at most every `min_interval_s` (0.2 s on a tty, 10 s when piped), always on completion.
    """
    out = stream if stream is not None else sys.stderr
    is_tty = bool(getattr(out, "isatty", lambda: False)())
    interval = min_interval_s if min_interval_s is not None else (0.2 if is_tty else 10.0)
    started = time.monotonic()
    last = [float("-inf")]

    def printer(done: int, total: int, current_file: str) -> None:
        now = time.monotonic()
        finished = total > 0 and done >= total
        if not finished and now - last[0] < interval:
            return
        last[0] = now
        pct = 100.0 * done / total if total else 100.0
        rate = done / max(now - started, 1e-6)
        line = f"[{pct:5.1f}%] {_human(done)} / {_human(total)}  {_human(int(rate))}/s  {current_file}"
        if is_tty:
            out.write("\r\x1b[K" + line + ("\n" if finished else ""))
        else:
            out.write(line + "\n")
        out.flush()

    return printer
