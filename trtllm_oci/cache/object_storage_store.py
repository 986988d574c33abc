"""The engine cache in an OCI Object Storage bucket, shared by every build and serving host.

Layout under `<prefix>/`:

    <key>/engine-<publish id>/<file>   engine files of one publish (multipart, parts uploaded in parallel)
    <key>/manifest.json                created last and only if absent: the first complete publish wins
    locks/<key>.json                   build lease (ObjectStorageLeaseLocks)
    quarantine/<key>.<stamp>.json      manifests of entries found corrupt, kept for inspection

Each publish uploads under its own `engine-<id>/` and then creates the manifest with `if-none-match: *`, the
Object Storage counterpart of the local store's rename: a crash or a lost race leaves objects no manifest points
to (the loser deletes its own), never a manifest over mixed bytes; TensorRT-LLM builds are not bit-reproducible,
so two publishes of one key must not share object names. Objects of publishes that crashed before cleaning up
stay until `evict(key)` or a bucket lifecycle rule removes them.

Calls (oci-python-sdk:src/oci/object_storage/object_storage_client.py@2.189.0): get/put/delete/rename object,
list_objects(fields="name,size", start=...), ranged get_object(range="bytes=a-b"); uploads through
`oci.object_storage.UploadManager` (transfer/upload_manager.py). `client` is an `ObjectStorageClient`; its retry
strategy covers 429/5xx/timeouts. Conditional requests answer 412 when their precondition fails.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import logging
import os
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

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
    manifest_problem,
    sha256_file,
    utc_stamp,
    validate_artifact_dir,
)
from trtllm_oci.cache_location import ObjectStorageCacheLocation
from trtllm_oci.errors import ArtifactError, InputError, ServiceError
from trtllm_oci.files import DirectoryFileLocks, LockTimeoutError

logger = logging.getLogger(__name__)

_HASH_CHUNK = 16 * 2**20
_MARKER = ".engine-key"
_OUTLINE_MARKER = ".engine-outline"  # trtllm_oci.cloud.artifact.OUTLINE_MARKER: placeholders, never an engine
OUTLINE_SMALL_FILE_BYTES = 16 * 2**20
ENGINE_SUFFIX = ".engine"  # rank{R}.engine, or {name}_{dtype}_tp{T}_rank{R}.engine (trtllm_versions.yaml engine_naming)


def unsafe_path(path: str) -> str | None:
    """Why a manifest's file path could write outside its engine directory, or None if it cannot.

    Paths come from a bucket others may write to (issue 15): only plain relative POSIX paths without `..`, empty
    segments, backslashes or NUL, and not the store's own marker names, are accepted.
    """
    if not path or "\\" in path or "\0" in path:
        return "empty, or has a backslash or NUL"
    posix = PurePosixPath(path)
    if posix.is_absolute():
        return "is absolute"
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts):
        return "has an empty, '.' or '..' segment"
    if parts[0] in (_MARKER, _OUTLINE_MARKER):
        return "names the store's own marker file"
    return None


class ObjectStorageCacheError(ServiceError):
    """Object Storage refused a cache operation (missing bucket, permissions, signature)."""


def _service_error():
    import oci  # deferred: the SDK import costs ~1 s and only this store needs it

    return oci.exceptions.ServiceError


class OciObjectStorageEngineStore:
    """Engines in `oci://<bucket>@<namespace>/<prefix>/`.

    `lookup` reads the manifest and checks every object's size with one listing; `verify_checksums=True`
    streams every object through sha256. `materialize` downloads with parallel ranged GETs written with
    `os.pwrite` into pre-sized files, verifies sha256 and renames the directory into place (default place:
    `download_root/<key>`, reused while its files still match). The default build lock is a lease object in
    the bucket, so build hosts that share the bucket build each key once.
    """

    def __init__(self, client: Any, namespace: str, bucket: str, prefix: str = "", *,
                 part_size: int = 128 * 2**20, parallelism: int = 8, range_size: int = 64 * 2**20,
                 download_root: Path, lease_seconds: float = 300.0,
                 lock_poll_seconds: float = 10.0, lock_timeout_seconds: float | None = None) -> None:
        self.client = client
        self.namespace = namespace
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.part_size = part_size
        self.parallelism = parallelism
        self.range_size = range_size
        self.download_root = Path(download_root)
        self.lease_seconds = lease_seconds
        self.lock_poll_seconds = lock_poll_seconds
        self.lock_timeout_seconds = lock_timeout_seconds

    @classmethod
    def at(cls, location: ObjectStorageCacheLocation, client: Any, **options: Any) -> OciObjectStorageEngineStore:
        return cls(client, location.namespace, location.bucket, location.prefix, **options)

    @property
    def location(self) -> str:
        return f"oci://{self.bucket}@{self.namespace}" + (f"/{self.prefix}" if self.prefix else "")

    def _name(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    def _uri(self, object_prefix: str) -> str:
        return f"oci://{self.bucket}@{self.namespace}/{object_prefix}/"

    def _engine_prefix(self, manifest: EngineManifest) -> str:
        head = f"oci://{self.bucket}@{self.namespace}/"
        expected = self._name(manifest.key, "")
        if not manifest.uri.startswith(head) or not manifest.uri[len(head):].startswith(expected):
            raise MaterializeError(f"Engine {manifest.key} is stored at {manifest.uri}, not in this cache "
                                   f"({self.location}); open the store its manifest names.")
        return manifest.uri[len(head):].rstrip("/")

    # ---------------------------------------------------------------- error translation
    @contextmanager
    def _calls(self, what: str) -> Iterator[None]:
        """Turn an Object Storage refusal into an error naming the cache and the fix."""
        ServiceError = _service_error()
        try:
            yield
        except ServiceError as exc:
            raise ObjectStorageCacheError(self._explain(exc, what)) from None

    def _explain(self, exc: Any, what: str) -> str:
        where = f"engine cache {self.location}"
        if exc.status == 404 and exc.code in ("BucketNotFound", "NotAuthorizedOrNotFound"):
            return (f"{what}: bucket {self.bucket!r} does not exist in namespace {self.namespace!r}, or this "
                    f"identity may not use it ({exc.code}). Create it (`oci os bucket create --name {self.bucket} "
                    f"--compartment-id <ocid>`), grant 'manage objects' on it, or fix engine_cache.uri ({where}).")
        if exc.status == 404 and exc.code == "NamespaceNotFound":
            return (f"{what}: namespace {self.namespace!r} does not exist; `oci os ns get` prints the tenancy's "
                    f"namespace. Fix engine_cache.uri ({where}).")
        if exc.status == 401:
            return (f"{what}: OCI rejected the request's signature ({exc.code}); check engine_cache.auth/profile and "
                    f"the API key's fingerprint, and that this host's clock is right ({where}).")
        if exc.status == 403:
            return (f"{what}: not authorized ({exc.code}: {exc.message}); the identity needs a policy such as "
                    f"'allow group <g> to manage objects in compartment <c> where target.bucket.name="
                    f"'{self.bucket}'' ({where}).")
        return f"{what}: Object Storage answered {exc.status} {exc.code}: {exc.message} ({where})."

    # ---------------------------------------------------------------- reads
    def _get_text(self, name: str) -> str | None:
        """The object's text, None if the object does not exist."""
        ServiceError = _service_error()
        try:
            response = self.client.get_object(self.namespace, self.bucket, name)
        except ServiceError as exc:
            if exc.status == 404 and exc.code == "ObjectNotFound":
                return None
            raise ObjectStorageCacheError(self._explain(exc, f"reading {name}")) from None
        return response.data.content.decode()

    def read_text(self, name: str) -> str | None:
        """A small object kept beside the engines (`<prefix>/<name>`, e.g. a quality baseline); None if absent."""
        return self._get_text(self._name(name))

    def write_text(self, name: str, text: str) -> None:
        """Write a small object beside the engines; a later write of the same name replaces it."""
        with self._calls(f"writing {self._name(name)}"):
            self.client.put_object(self.namespace, self.bucket, self._name(name), text.encode(),
                                   content_type="application/json")

    def _list_sizes(self, object_prefix: str) -> dict[str, int]:
        prefix = object_prefix.rstrip("/") + "/"
        sizes: dict[str, int] = {}
        start = None
        with self._calls(f"listing {prefix}"):
            while True:
                kwargs: dict[str, Any] = {"prefix": prefix, "fields": "name,size"}
                if start:
                    kwargs["start"] = start
                data = self.client.list_objects(self.namespace, self.bucket, **kwargs).data
                for obj in data.objects:
                    sizes[obj.name[len(prefix):]] = obj.size
                start = data.next_start_with
                if not start:
                    return sizes

    def lookup(self, key: str, verify_checksums: bool = False) -> EngineManifest | None:
        text = self._get_text(self._name(key, MANIFEST_NAME))
        if text is None:
            return None
        try:
            manifest = EngineManifest.model_validate_json(text)
        except ValueError as exc:
            self._quarantine(key, f"manifest.json is unreadable ({str(exc).splitlines()[0]})")
            return None
        reason = self._verify(key, manifest, verify_checksums)
        if reason is not None:
            self._quarantine(key, reason)
            return None
        return manifest

    def _verify(self, key: str, manifest: EngineManifest, full: bool) -> str | None:
        for f in manifest.files:
            if why := unsafe_path(f.path):
                return f"file path {f.path!r} {why}: it could write outside engine-downloads/{key}"
        if problem := manifest_problem(manifest, key):
            return problem
        try:
            object_prefix = self._engine_prefix(manifest)
        except MaterializeError as exc:
            return str(exc)
        sizes = self._list_sizes(object_prefix)
        for f in manifest.files:
            if f.path not in sizes:
                return f"object for {f.path} is missing"
            if sizes[f.path] != f.size:
                return f"object for {f.path} is {sizes[f.path]} bytes, manifest says {f.size}"
        if full:
            for f in manifest.files:
                digest = self._remote_sha256(f"{object_prefix}/{f.path}")
                if digest != f.sha256:
                    return f"{f.path} sha256 {digest} != manifest {f.sha256}"
        return None

    def _remote_sha256(self, name: str) -> str:
        h = hashlib.sha256()
        with self._calls(f"reading {name}"):
            response = self.client.get_object(self.namespace, self.bucket, name)
            for chunk in response.data.raw.stream(_HASH_CHUNK, decode_content=False):
                h.update(chunk)
        return h.hexdigest()

    def _quarantine(self, key: str, reason: str) -> None:
        import oci

        target = self._name("quarantine", f"{key}.{utc_stamp()}.json")
        details = oci.object_storage.models.RenameObjectDetails(source_name=self._name(key, MANIFEST_NAME),
                                                                new_name=target)
        try:
            self.client.rename_object(self.namespace, self.bucket, details)
        except oci.exceptions.ServiceError as exc:
            if not (exc.status == 404 and exc.code == "ObjectNotFound"):
                raise ObjectStorageCacheError(self._explain(exc, f"quarantining {key}")) from None
        logger.warning("Engine cache entry %s in %s is corrupt: %s. Moved its manifest to %s; it will be rebuilt.",
                       key, self.location, reason, target)

    # ---------------------------------------------------------------- writes
    @contextmanager
    def new_build_dir(self, key: str) -> Iterator[Path]:
        # Beside the downloads, not in /tmp: a 70B build writes checkpoints and engines of ~2x the weights.
        scratch = self.download_root.parent / "build-scratch"
        scratch.mkdir(parents=True, exist_ok=True)
        path = Path(tempfile.mkdtemp(prefix=f"{key[:12]}-", dir=scratch))
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def default_lock(self) -> LockFactoryArg:
        return ObjectStorageLeaseLocks(self.client, self.namespace, self.bucket, self._name("locks"),
                                       lease_seconds=self.lease_seconds, poll_seconds=self.lock_poll_seconds,
                                       acquire_timeout_seconds=self.lock_timeout_seconds)

    def publish(self, key: str, built_dir: Path, inputs: EngineCacheKey, summarize: ArtifactSummarizer,
                move: bool = False) -> EngineManifest:
        from oci.object_storage import UploadManager

        if cache_key(inputs) != key:
            raise InputError(f"Key {key} is not cache_key(inputs) = {cache_key(inputs)}.")
        built_dir = Path(built_dir)
        summary = validate_artifact_dir(built_dir, inputs, summarize)
        existing = self.lookup(key)
        if existing is not None:
            return existing
        paths = artifact_files(built_dir)
        with ThreadPoolExecutor(max_workers=min(self.parallelism, max(1, len(paths)))) as pool:
            digests = list(pool.map(sha256_file, paths))
        files = [EngineFile(path=p.relative_to(built_dir).as_posix(), size=p.stat().st_size, sha256=d)
                 for p, d in zip(paths, digests, strict=True)]
        object_prefix = self._name(key, f"{ENGINE_SUBDIR}-{utc_stamp()}-{uuid.uuid4().hex[:8]}")
        uploader = UploadManager(self.client, allow_multipart_uploads=True, allow_parallel_uploads=True,
                                 parallel_process_count=self.parallelism)
        won = False
        try:
            total, done = sum(f.size for f in files), 0
            logger.info("uploading engine %s (%d files, %.1f GiB) to %s", key, len(files), total / 2**30,
                        self._uri(object_prefix))
            with self._calls(f"uploading engine {key}"):
                for i, f in enumerate(files, 1):
                    uploader.upload_file(self.namespace, self.bucket, f"{object_prefix}/{f.path}",
                                         str(built_dir / f.path), part_size=self.part_size)
                    done += f.size
                    logger.info("uploaded %s: %d/%d files, %.1f of %.1f GiB", f.path, i, len(files), done / 2**30,
                                total / 2**30)
            sizes = self._list_sizes(object_prefix)
            wrong = [f.path for f in files if sizes.get(f.path) != f.size]
            if wrong:
                raise ServiceError(f"After upload, objects for {wrong} are missing or have the wrong size in "
                                       f"{self._uri(object_prefix)}; the manifest was not written. Retry the build.")
            manifest = EngineManifest(key=key, uri=self._uri(object_prefix), files=files, artifact=summary,
                                      created_at=datetime.now(UTC), inputs=inputs)
            won = self._create_manifest(key, manifest)
        finally:
            if not won:
                self._delete_prefix(object_prefix)
        if move:
            shutil.rmtree(built_dir, ignore_errors=True)
        if won:
            return manifest
        winner = self.lookup(key)
        if winner is None:
            raise ArtifactError(f"Another publish of engine {key} won the race but its entry does not verify; "
                                 "run the build again.")
        logger.info("engine %s was published by another run while this one uploaded; using that one", key)
        return winner

    def _create_manifest(self, key: str, manifest: EngineManifest) -> bool:
        """True if `manifest` is the key's manifest now. A 412 is either a rival's manifest or our own whose
        answer was lost and whose retry met if-none-match (the SDK retries timeouts): the stored manifest says
        which, by the publish's own object prefix (unique per publish)."""
        ServiceError = _service_error()
        name = self._name(key, MANIFEST_NAME)
        try:
            self.client.put_object(self.namespace, self.bucket, name, manifest.model_dump_json(indent=2).encode(),
                                   content_type="application/json", if_none_match="*")
        except ServiceError as exc:
            if exc.status != 412:
                raise ObjectStorageCacheError(self._explain(exc, f"writing the manifest of {key}")) from None
            text = self._get_text(name)
            try:
                stored = EngineManifest.model_validate_json(text) if text is not None else None
            except ValueError:
                stored = None
            if stored is not None and stored.uri == manifest.uri and stored.files == manifest.files:
                logger.info("the manifest of engine %s was written by this publish (its first answer was lost)",
                            key)
                return True
            return False
        return True

    def _delete_prefix(self, object_prefix: str) -> None:
        ServiceError = _service_error()
        try:
            names = list(self._list_sizes(object_prefix))
        except ObjectStorageCacheError as exc:
            logger.warning("could not list %s to clean it up: %s", object_prefix, exc)
            return
        for name in names:
            try:
                self.client.delete_object(self.namespace, self.bucket, f"{object_prefix}/{name}")
            except ServiceError as exc:
                if exc.status != 404:
                    logger.warning("could not delete %s/%s: %s %s", object_prefix, name, exc.status, exc.code)

    # ---------------------------------------------------------------- materialize
    def materialize(self, manifest: EngineManifest, dest: Path | None = None) -> Path:
        """A local directory holding the engine: `dest`, or `download_root/<key>` by default.

        A directory already holding this manifest's files (marker `.engine-key` == key, sizes equal) is returned
        without downloading. Runs on one host that materialize the same place at once download it once.
        """
        dest = Path(dest) if dest is not None else self.download_root / manifest.key
        self._refuse_unsafe(manifest)
        object_prefix = self._engine_prefix(manifest)
        if self._holds(dest, manifest):
            return dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        with DirectoryFileLocks(dest.parent / ".locks")(dest.name):
            if self._holds(dest, manifest):
                return dest
            partial = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.partial")
            partial.mkdir(parents=True)
            try:
                self._download(manifest, object_prefix, partial)
                (partial / _MARKER).write_text(manifest.key + "\n")
                if dest.exists():
                    stale = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.stale")
                    os.rename(dest, stale)
                    shutil.rmtree(stale, ignore_errors=True)
                os.rename(partial, dest)
                return dest
            finally:
                shutil.rmtree(partial, ignore_errors=True)

    def _refuse_unsafe(self, manifest: EngineManifest) -> None:
        for f in manifest.files:
            if why := unsafe_path(f.path):
                current = self._get_text(self._name(manifest.key, MANIFEST_NAME))
                if current is not None and EngineManifest.model_validate_json(current).files == manifest.files:
                    self._quarantine(manifest.key, f"file path {f.path!r} {why}")
                raise MaterializeError(
                    f"Engine {manifest.key}: the manifest lists {f.path!r}, which {why} and would be written outside "
                    f"its directory; nothing was downloaded. Evict the key (or let the cache quarantine it) and "
                    "rebuild; check who may write to the bucket.")

    def materialize_outline(self, manifest: EngineManifest, dest: Path | None = None, *,
                            small_file_bytes: int = OUTLINE_SMALL_FILE_BYTES) -> Path:
        """The engine's small files (config.json ...) and sparse placeholders of its engines and other big files, for
        a host that only assembles a repository whose engine stays in the bucket (a model by reference). No engine
        byte is downloaded, however small the engine (rank files are `*.engine` in every naming of the version
        table); the marker `.engine-outline` tells packaging and `materialize` it is not an engine."""
        self._refuse_unsafe(manifest)
        object_prefix = self._engine_prefix(manifest)
        dest = Path(dest) if dest is not None else self.download_root / f"{manifest.key}.outline"
        marker = dest / _OUTLINE_MARKER
        if marker.is_file() and marker.read_text().strip() == manifest.key and all(
                (dest / f.path).is_file() and (dest / f.path).stat().st_size == f.size for f in manifest.files):
            return dest
        partial = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.partial")
        partial.mkdir(parents=True)
        try:
            for f in manifest.files:
                target = partial / f.path
                target.parent.mkdir(parents=True, exist_ok=True)
                if f.size <= small_file_bytes and not f.path.endswith(ENGINE_SUFFIX):
                    with self._calls(f"reading {f.path} of engine {manifest.key}"):
                        response = self.client.get_object(self.namespace, self.bucket, f"{object_prefix}/{f.path}")
                    target.write_bytes(response.data.content)
                    if sha256_file(target) != f.sha256:
                        raise MaterializeError(f"Downloaded {f.path} of engine {manifest.key} does not match its "
                                               "manifest; evict the key and rebuild.")
                else:
                    with target.open("wb") as fh:
                        fh.truncate(f.size)
            (partial / _OUTLINE_MARKER).write_text(manifest.key + "\n")
            if dest.exists():
                shutil.rmtree(dest)
            os.rename(partial, dest)
            return dest
        finally:
            shutil.rmtree(partial, ignore_errors=True)

    @staticmethod
    def _holds(dest: Path, manifest: EngineManifest) -> bool:
        marker = dest / _MARKER
        return marker.is_file() and marker.read_text().strip() == manifest.key and all(
            (dest / f.path).is_file() and (dest / f.path).stat().st_size == f.size for f in manifest.files)

    def _download(self, manifest: EngineManifest, object_prefix: str, into: Path) -> None:
        jobs = []
        for f in manifest.files:
            target = into / f.path
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("wb") as fh:
                fh.truncate(f.size)
            jobs += [(f"{object_prefix}/{f.path}", target, start, min(start + self.range_size, f.size) - 1)
                     for start in range(0, f.size, self.range_size)]
        total = manifest.total_bytes
        logger.info("downloading engine %s (%.1f GiB in %d ranges) from %s", manifest.key, total / 2**30, len(jobs),
                    manifest.uri)
        with self._calls(f"downloading engine {manifest.key}"), ThreadPoolExecutor(self.parallelism) as pool:
            # Results are consumed here, on the caller's thread, so progress lines reach the run's log.
            done, next_tenth = 0, 1
            for (_, _, first, last), _ in zip(jobs, pool.map(lambda job: self._fetch_range(*job), jobs), strict=True):
                done += last - first + 1
                if total and done * 10 >= next_tenth * total:
                    logger.info("downloaded %.1f of %.1f GiB (%d%%)", done / 2**30, total / 2**30, 100 * done // total)
                    next_tenth = done * 10 // total + 1
        for f in manifest.files:
            digest = sha256_file(into / f.path)
            if digest != f.sha256:
                raise MaterializeError(f"Downloaded {f.path} has sha256 {digest}, manifest says {f.sha256}; the "
                                       f"object changed after publish. Evict key {manifest.key} and rebuild.")

    def _fetch_range(self, name: str, target: Path, first: int, last: int) -> None:
        response = self.client.get_object(self.namespace, self.bucket, name, range=f"bytes={first}-{last}")
        fd = os.open(target, os.O_WRONLY)
        try:
            offset = first
            for chunk in response.data.raw.stream(4 * 2**20, decode_content=False):
                os.pwrite(fd, chunk, offset)
                offset += len(chunk)
            if offset != last + 1:
                raise MaterializeError(f"{name}: got bytes {first}-{offset - 1}, expected {first}-{last}; the "
                                       "object is shorter than its manifest says. Evict the key and rebuild.")
        finally:
            os.close(fd)

    def evict(self, key: str) -> bool:
        """Delete the manifest first (the entry disappears at once), then every object under `<key>/`."""
        ServiceError = _service_error()
        try:
            self.client.delete_object(self.namespace, self.bucket, self._name(key, MANIFEST_NAME))
            found = True
        except ServiceError as exc:
            if not (exc.status == 404 and exc.code == "ObjectNotFound"):
                raise ObjectStorageCacheError(self._explain(exc, f"evicting {key}")) from None
            found = False
        self._delete_prefix(self._name(key))
        return found


class ObjectStorageLeaseLocks:
    """`name -> context manager`: an exclusive lease held as the object `<prefix>/<name>.json`.

    Acquire creates the object with `if-none-match: *`; the holder rewrites it (`if-match: <etag>`) every
    lease/3 seconds while it works. A waiter takes over a lease whose object the server last modified more than
    `lease_seconds` ago (both times from the server's Date/Last-Modified headers, so host clocks do not matter),
    again with `if-match`, so exactly one waiter wins. Release deletes it with `if-match`.
    """

    def __init__(self, client: Any, namespace: str, bucket: str, prefix: str, *, lease_seconds: float = 300.0,
                 poll_seconds: float = 10.0, acquire_timeout_seconds: float | None = None,
                 holder: str | None = None) -> None:
        if lease_seconds < 3:
            raise InputError(f"lease_seconds={lease_seconds} is too short to renew (HTTP dates have 1 s resolution); "
                             "use 3 or more.")
        self.client = client
        self.namespace = namespace
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.acquire_timeout_seconds = acquire_timeout_seconds
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def _object(self, name: str) -> str:
        return f"{self.prefix}/{name}.json" if self.prefix else f"{name}.json"

    def _body(self) -> bytes:
        return json.dumps({"holder": self.holder, "lease_seconds": self.lease_seconds}).encode()

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        obj = self._object(name)
        etag = self._acquire(obj)
        state: dict[str, Any] = {"etag": etag, "lost": False}
        stop = threading.Event()
        renewer = threading.Thread(target=self._renew, args=(obj, state, stop), daemon=True,
                                   name=f"lease-{name[:12]}")
        renewer.start()
        try:
            yield
        finally:
            stop.set()
            renewer.join()
            if not state["lost"]:
                self._release(obj, state["etag"])

    def _acquire(self, obj: str) -> str:
        ServiceError = _service_error()
        deadline = None if self.acquire_timeout_seconds is None else time.monotonic() + self.acquire_timeout_seconds
        waited = False
        while True:
            try:
                response = self.client.put_object(self.namespace, self.bucket, obj, self._body(),
                                                  content_type="application/json", if_none_match="*")
                return response.headers["etag"]
            except ServiceError as exc:
                if exc.status != 412:
                    raise ObjectStorageCacheError(f"taking the build lease {obj} in oci://{self.bucket}@"
                                                  f"{self.namespace}: {exc.status} {exc.code}: {exc.message}") from None
            current = self._read(obj)
            if current is not None:
                holder, etag, age = current
                if holder == self.holder:  # our own create succeeded but its answer was lost and retried
                    return etag
                if age > self.lease_seconds:
                    taken = self._take_over(obj, etag)
                    if taken is not None:
                        logger.warning("took over the build lease %s from %s, silent for %.0f s", obj, holder, age)
                        return taken
                elif not waited:
                    logger.info("engine build lease %s is held by %s; waiting for it", obj, holder)
                    waited = True
            if deadline is not None and time.monotonic() >= deadline:
                raise LockTimeoutError(f"Timed out after {self.acquire_timeout_seconds:.0f}s waiting for the build "
                                       f"lease {obj}; another run is still building this engine.")
            time.sleep(self.poll_seconds)

    def _read(self, obj: str) -> tuple[str, str, float] | None:
        """(holder, etag, seconds since the server last modified it), or None if it is gone."""
        ServiceError = _service_error()
        try:
            response = self.client.get_object(self.namespace, self.bucket, obj)
        except ServiceError as exc:
            if exc.status == 404:
                return None
            raise ObjectStorageCacheError(f"reading the build lease {obj}: {exc.status} {exc.code}") from None
        try:
            holder = json.loads(response.data.content).get("holder", "?")
        except ValueError:
            holder = "?"
        headers = response.headers
        now = email.utils.parsedate_to_datetime(headers["date"]).timestamp()
        modified = email.utils.parsedate_to_datetime(headers["last-modified"]).timestamp()
        return holder, headers["etag"], now - modified

    def _take_over(self, obj: str, stale_etag: str) -> str | None:
        ServiceError = _service_error()
        try:
            response = self.client.put_object(self.namespace, self.bucket, obj, self._body(),
                                              content_type="application/json", if_match=stale_etag)
        except ServiceError as exc:
            if exc.status in (404, 412):
                return None
            raise ObjectStorageCacheError(f"taking over the build lease {obj}: {exc.status} {exc.code}") from None
        return response.headers["etag"]

    def _renew(self, obj: str, state: dict, stop: threading.Event) -> None:
        ServiceError = _service_error()
        while not stop.wait(self.lease_seconds / 3):
            try:
                response = self.client.put_object(self.namespace, self.bucket, obj, self._body(),
                                                  content_type="application/json", if_match=state["etag"])
                state["etag"] = response.headers["etag"]
            except ServiceError as exc:
                if exc.status in (404, 412):
                    state["lost"] = True
                    logger.error("lost the build lease %s (another run took it over after %.0f s without renewal); "
                                 "the cache still keeps only one publish of this engine", obj, self.lease_seconds)
                    return
                logger.warning("could not renew the build lease %s: %s %s; retrying", obj, exc.status, exc.code)
            except Exception as exc:  # a renewal failure must not kill the build; the next tick retries
                logger.warning("could not renew the build lease %s: %s; retrying", obj, exc)

    def _release(self, obj: str, etag: str) -> None:
        ServiceError = _service_error()
        try:
            self.client.delete_object(self.namespace, self.bucket, obj, if_match=etag)
        except ServiceError as exc:
            if exc.status not in (404, 412):
                logger.warning("could not release the build lease %s: %s %s; it expires after %.0f s", obj,
                               exc.status, exc.code, self.lease_seconds)
