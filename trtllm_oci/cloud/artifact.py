"""The model artifact of a release, attached to its catalog model by the cheapest route the service accepts.

Routes, best first (`choose_artifact_route` decides before anything is built, so the plan and the dry run can say
which and why):

- **by_reference**: the engines (or the Hugging Face checkpoint of the PyTorch backend) already sit in the `oci://`
  engine cache. The release's small files (model
  repository configs, tokenizer, manifest) go to a content-addressed prefix of `target.artifact_bucket`, and the
  catalog model references both prefixes with `register_model_artifact_reference` + `OSSModelArtifactReferenceDetails`
  (oci/data_science/models/oss_model_artifact_reference_details.py@2.189.0). Nothing is zipped or copied; the
  engine bytes are never moved again. The deployment sees every referenced object under
  /opt/ds/model/deployed_model/<object name> (ADS ads/aqua/modeldeployment/deployment.py@2.15.2 passes the object
  path under that folder to its containers; ads/aqua/common/utils.py generate_tei_cmd_var), so the serving
  image's launcher links them into one serving root (`by_reference_layout`).
- **object_storage_export**: the repository zip goes to the staging bucket through the SDK's `UploadManager`
  (parallel multipart) and `export_model_artifact` pulls it into the catalog (up to 400 GB, models-about.htm;
  oracle-samples model-deployment/containers/llm/llama2/create-large-modelcatalog.py).
- **direct**: `create_model_artifact` streams the zip from the open file, only up to 2 GiB (ADS
  `_MAX_ARTIFACT_SIZE_IN_BYTES`, ads/model/datascience_model.py@2.15.2); never above.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Literal

import oci
from oci.data_science.models import (
    ArtifactExportDetailsObjectStorage,
    ExportModelArtifactDetails,
    OSSModelArtifactReferenceDetails,
    RegisterModelArtifactReferenceDetails,
)
from pydantic import BaseModel, ConfigDict

from trtllm_oci.cache_location import ObjectStorageCacheLocation, parse_engine_cache_uri
from trtllm_oci.cloud.clients import OciClients
from trtllm_oci.cloud.errors import ArtifactUploadError, DeploymentFailedError, DeploymentLimitError
from trtllm_oci.cloud.waiting import WaitPolicy, wait_for_work_request

log = logging.getLogger(__name__)

DIRECT_UPLOAD_LIMIT_BYTES = 2 * 1024**3
DEFAULT_PART_SIZE_BYTES = 128 * 1024**2
MOUNT_ROOT = "/opt/ds/model/deployed_model"  # BYOC artifact mount (mod-dep-byoc.htm)
# Writable root the launcher fills with links to the referenced prefixes; the repository's configs name it.
SERVING_ROOT = "/tmp/trtllm-oci/serving"
ENGINE_DIR = "engine"
OUTLINE_MARKER = ".engine-outline"  # written by the engine store's outline: placeholders, never real engines
ArtifactRoute = Literal["by_reference", "object_storage_export", "direct"]
ROUTES: tuple[str, ...] = ("by_reference", "object_storage_export", "direct")
_HASH_CHUNK = 8 * 1024**2


class ObjectPrefix(BaseModel):
    """oci://<bucket>@<namespace>/<prefix>: a place in Object Storage."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    namespace: str
    bucket: str
    prefix: str = ""

    @classmethod
    def parse(cls, uri: str, *, field: str = "target.artifact_bucket") -> ObjectPrefix:
        location = parse_engine_cache_uri(uri)
        if not isinstance(location, ObjectStorageCacheLocation):
            raise DeploymentLimitError(f"{field} {uri!r} must be oci://<bucket>@<namespace>/<prefix>")
        return cls(namespace=location.namespace, bucket=location.bucket, prefix=location.prefix)

    @property
    def uri(self) -> str:
        return f"oci://{self.bucket}@{self.namespace}" + (f"/{self.prefix}" if self.prefix else "")

    def child(self, *parts: str) -> ObjectPrefix:
        return self.model_copy(update={"prefix": "/".join(p.strip("/") for p in (self.prefix, *parts) if p)})

    def object_name(self, relative: str) -> str:
        return "/".join(p for p in (self.prefix, relative) if p)


@dataclass(frozen=True)
class StagingBucket:
    """Where artifacts above the direct limit are staged before export into the catalog."""

    bucket: str
    region: str
    namespace: str | None = None  # looked up with get_namespace when None
    prefix: str = "trtllm-oci/artifacts"


class ZipArtifact(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    path: Path
    size_bytes: int
    sha256: str

    @classmethod
    def of(cls, path: str | Path) -> ZipArtifact:
        path = Path(path)
        if not path.is_file():
            raise ArtifactUploadError(f"model artifact {str(path)!r} does not exist; build the artifact zip first.")
        return cls(path=path, size_bytes=path.stat().st_size, sha256=file_sha256(str(path)))


class ReferencedArtifact(BaseModel):
    """Engines (or a checkpoint) by reference from the engine cache plus the release's small files staged beside
    them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    engine: ObjectPrefix
    engine_bytes: int
    # The cached artifact's directory in the assembled repository and its link in the serving root: `engine` for
    # Triton's configs, the served model's name for trtllm-serve (which names the model after its directory).
    artifact_dir: str = ENGINE_DIR
    repository_root: Path
    files: tuple[str, ...]  # relative to repository_root, uploaded under `staged`
    small_bytes: int
    staged: ObjectPrefix
    sha256: str  # identity: the engine's location and every small file's digest

    @property
    def size_bytes(self) -> int:
        return self.engine_bytes + self.small_bytes

    @property
    def references(self) -> list[ObjectPrefix]:
        return [self.engine, self.staged]


@dataclass(frozen=True)
class ServingLayout:
    """Where the deployed container finds the repository, and the links the launcher creates first."""

    deploy_root: str
    model_repository: str
    links: dict[str, str] = field(default_factory=dict)


def file_sha256(path: str, chunk_bytes: int = _HASH_CHUNK) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


# ---------------------------------------------------------------- route choice (plan stage, no API call)


@dataclass(frozen=True)
class ArtifactRouteChoice:
    route: ArtifactRoute
    reason: str
    bucket: ObjectPrefix | None = None  # staging / small-file bucket the route writes to


def default_artifact_bucket(engine_cache_uri: str | None) -> ObjectPrefix | None:
    """`target.artifact_bucket` when unset: `<engine cache>/releases` if the cache is in Object Storage."""
    if not engine_cache_uri:
        return None
    location = parse_engine_cache_uri(engine_cache_uri)
    if not isinstance(location, ObjectStorageCacheLocation):
        return None
    return ObjectPrefix(namespace=location.namespace, bucket=location.bucket, prefix=location.prefix).child("releases")


def choose_artifact_route(*, estimated_artifact_bytes: int, target_region: str, engine_cache_uri: str | None,
                          engine_cache_region: str | None = None, artifact_bucket_uri: str | None = None,
                          artifact_noun: str = "engines", not_referenceable: str | None = None,
                          direct_limit_bytes: int = DIRECT_UPLOAD_LIMIT_BYTES) -> ArtifactRouteChoice:
    """The route for a release's artifact and why, decided from the spec alone (so before any build or push).

    `artifact_noun` names what the cache holds (engines, the quantized checkpoint); `not_referenceable` says why
    the serving side cannot take it by reference even from an oci:// cache (None: it can)."""
    bucket = (ObjectPrefix.parse(artifact_bucket_uri) if artifact_bucket_uri
              else default_artifact_bucket(engine_cache_uri))
    cache = parse_engine_cache_uri(engine_cache_uri) if engine_cache_uri else None
    in_object_storage = isinstance(cache, ObjectStorageCacheLocation)
    same_region = engine_cache_region in (None, target_region)
    size = f"{estimated_artifact_bytes / 1024**3:.1f} GiB"
    if not_referenceable is None and in_object_storage and same_region and bucket is not None:
        return ArtifactRouteChoice("by_reference", (
            f"the {artifact_noun} are already in {engine_cache_uri}: the catalog model references them in place, and "
            f"only the configs and tokenizer go to {bucket.uri} (nothing zipped, no byte of them copied)"), bucket)
    why_not = (not_referenceable if not_referenceable is not None else
               "the engine cache is a local directory" if not in_object_storage else
               f"the engine cache is in {engine_cache_region}, the deployment in {target_region}")
    if estimated_artifact_bytes <= direct_limit_bytes:
        return ArtifactRouteChoice("direct", f"{why_not}; the {size} zip is within the 2 GiB direct-upload limit")
    if bucket is not None:
        return ArtifactRouteChoice("object_storage_export", (
            f"{why_not}; the {size} zip is above the 2 GiB direct-upload limit, so it is staged in {bucket.uri} and "
            "exported into the catalog"), bucket)
    raise DeploymentLimitError(
        f"the model artifact is about {size}, above the 2 GiB Data Science accepts by direct upload, and {why_not}. "
        "Set target.artifact_bucket: oci://<bucket>@<namespace>/<prefix> (a bucket in "
        f"{target_region} the Data Science service may read), or use an engine_cache in Object Storage "
        f"(oci://...) so the {artifact_noun} are referenced in place.")


# ---------------------------------------------------------------- by reference


def _small_files(repository_root: Path, artifact_dir: str) -> list[str]:
    files = []
    for path in sorted(Path(repository_root).rglob("*")):
        relative = path.relative_to(repository_root)
        if relative.parts[0] == artifact_dir or path.is_dir():
            continue
        files.append(relative.as_posix())
    return files


def plan_reference_artifact(repository_root: str | Path, *, engine_uri: str, engine_bytes: int,
                            artifact_bucket: ObjectPrefix, release_id: str, artifact_dir: str = ENGINE_DIR,
                            required: str = "model_repository/") -> ReferencedArtifact:
    """The by-reference artifact of an assembled repository whose engine (or checkpoint, under `artifact_dir`) lives
    at `engine_uri` (its manifest uri). `required`: a path the staged files must start with (the serving config).

    The staged prefix is named by the content's digest, so a re-run with the same files reuses it and a changed
    file never overwrites what a running deployment references.
    """
    root = Path(repository_root)
    engine = ObjectPrefix.parse(engine_uri.rstrip("/"), field="engine manifest uri")
    files = _small_files(root, artifact_dir)
    if not any(f.startswith(required) for f in files):
        raise ArtifactUploadError(f"{root} has no {required}; assemble the repository first.")
    digest = hashlib.sha256(f"engine {engine.uri}\n".encode())
    total = 0
    for relative in files:
        path = root / relative
        total += path.stat().st_size
        digest.update(f"{relative} {file_sha256(str(path))}\n".encode())
    sha = digest.hexdigest()
    staged = artifact_bucket.child(release_id, sha[:16])
    return ReferencedArtifact(engine=engine, engine_bytes=engine_bytes, artifact_dir=artifact_dir,
                              repository_root=root, files=tuple(files), small_bytes=total, staged=staged, sha256=sha)


def by_reference_layout(artifact: ReferencedArtifact) -> ServingLayout:
    """Serving root for a by-reference artifact: configs name SERVING_ROOT, the launcher links it to the mount.

    Triton's configs name directories only; trtllm-serve's --config names a file at the root, so for a checkpoint
    every top-level entry is linked."""
    engines = artifact.artifact_dir == ENGINE_DIR
    top = sorted({PurePosixPath(f).parts[0] for f in artifact.files if "/" in f or not engines})
    links = {name: f"{MOUNT_ROOT}/{artifact.staged.object_name(name)}" for name in top}
    links[artifact.artifact_dir] = f"{MOUNT_ROOT}/{artifact.engine.prefix}"
    return ServingLayout(deploy_root=SERVING_ROOT, model_repository=f"{SERVING_ROOT}/model_repository", links=links)


def _md5_b64(path: Path) -> str:
    digest = hashlib.md5()  # noqa: S324 - Object Storage reports object MD5s; this compares against them
    with path.open("rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            digest.update(chunk)
    return base64.b64encode(digest.digest()).decode()


@dataclass
class UploadReport:
    route: str
    uploaded_bytes: int = 0
    uploaded_objects: int = 0
    reused_objects: int = 0
    local_copy_bytes: int = 0


def _existing_objects(clients: OciClients, where: ObjectPrefix) -> dict[str, tuple[int, str | None]]:
    storage = clients.object_storage
    found: dict[str, tuple[int, str | None]] = {}
    start = None
    prefix = where.prefix.rstrip("/") + "/"
    while True:
        kwargs = {"prefix": prefix, "fields": "name,size,md5"}
        if start:
            kwargs["start"] = start
        data = storage.list_objects(where.namespace, where.bucket, **kwargs).data
        for obj in data.objects:
            found[obj.name[len(prefix):]] = (obj.size, obj.md5)
        start = data.next_start_with
        if not start:
            return found


def stage_small_files(clients: OciClients, artifact: ReferencedArtifact, *, parallel: int = 4) -> UploadReport:
    """Upload the small files not already at the staged prefix (same size and MD5)."""
    from oci.object_storage import UploadManager

    report = UploadReport("by_reference")
    existing = _existing_objects(clients, artifact.staged)
    uploader = UploadManager(clients.object_storage, allow_parallel_uploads=True, parallel_process_count=parallel)
    for relative in artifact.files:
        path = artifact.repository_root / relative
        size = path.stat().st_size
        have = existing.get(relative)
        if have is not None and have[0] == size and have[1] == _md5_b64(path):
            report.reused_objects += 1
            continue
        uploader.upload_file(artifact.staged.namespace, artifact.staged.bucket, artifact.staged.object_name(relative),
                             str(path.resolve()))
        report.uploaded_bytes += size
        report.uploaded_objects += 1
    return report


def register_by_reference(clients: OciClients, model_id: str, artifact: ReferencedArtifact,
                          wait: WaitPolicy) -> UploadReport:
    report = stage_small_files(clients, artifact)
    details = RegisterModelArtifactReferenceDetails(model_artifact_references=[
        OSSModelArtifactReferenceDetails(namespace=ref.namespace, bucket_name=ref.bucket, prefix=ref.prefix)
        for ref in artifact.references])
    try:
        response = clients.data_science.register_model_artifact_reference(details, model_id,
                                                                           opc_retry_token=uuid.uuid4().hex)
    except oci.exceptions.ServiceError as exc:
        raise ArtifactUploadError(
            f"registering {', '.join(r.uri for r in artifact.references)} as the artifact of model {model_id} "
            f"failed: {exc.status} {exc.code}: {exc.message}. The Data Science service needs to read these buckets "
            "(allow service datascience to manage object-family in compartment <c> where target.bucket.name=...)."
        ) from None
    work_request = response.headers.get("opc-work-request-id")
    if work_request:  # the API may register asynchronously; wait like any work request then
        wait_for_work_request(clients.data_science, work_request, f"registering the artifact of model {model_id}",
                              wait)
    log.info("model %s references %s (%d small files uploaded, %d reused)", model_id,
             ", ".join(r.uri for r in artifact.references), report.uploaded_objects, report.reused_objects)
    return report


# ---------------------------------------------------------------- zip: direct or staged + export


def _refuse_outline(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            outline = [n for n in archive.namelist() if n.endswith(f"/{ENGINE_DIR}/{OUTLINE_MARKER}")]
    except zipfile.BadZipFile:
        return
    if outline:
        raise ArtifactUploadError(
            f"{path} packs an engine outline ({outline[0]}): placeholders of the engine files, not the engines. It "
            "can only be deployed by reference; reassemble from the real engine to zip it.")


def _upload_direct(clients: OciClients, model_id: str, artifact: ZipArtifact) -> None:
    with artifact.path.open("rb") as fh:
        clients.data_science.create_model_artifact(
            model_id, fh, content_length=artifact.size_bytes,
            content_disposition=f"attachment; filename={artifact.path.name}",
            opc_retry_token=uuid.uuid4().hex,
        )


def export_from_bucket(clients: OciClients, model_id: str, artifact: ZipArtifact, staging: ObjectPrefix,
                       region: str, wait: WaitPolicy, *, part_size: int = DEFAULT_PART_SIZE_BYTES,
                       parallel_parts: int = 4, keep_staging_object: bool = False) -> UploadReport:
    """UploadManager the zip to `staging`, export it into the catalog, then delete the staged object."""
    from oci.object_storage import UploadManager

    object_name = staging.object_name(f"{model_id}/{artifact.path.name}")
    log.info("uploading %d-byte artifact to oci://%s@%s/%s", artifact.size_bytes, staging.bucket, staging.namespace,
             object_name)
    uploader = UploadManager(clients.object_storage, allow_multipart_uploads=True, allow_parallel_uploads=True,
                             parallel_process_count=max(1, parallel_parts))
    try:
        uploader.upload_file(staging.namespace, staging.bucket, object_name, str(artifact.path), part_size=part_size,
                             content_type="application/zip")
    except oci.exceptions.ServiceError as exc:
        raise ArtifactUploadError(f"uploading {artifact.path} to {staging.uri} failed: {exc.status} {exc.code}: "
                                  f"{exc.message}") from None
    report = UploadReport("object_storage_export", uploaded_bytes=artifact.size_bytes, uploaded_objects=1)
    try:
        response = clients.data_science.export_model_artifact(
            model_id,
            ExportModelArtifactDetails(artifact_export_details=ArtifactExportDetailsObjectStorage(
                namespace=staging.namespace, source_bucket=staging.bucket, source_object_name=object_name,
                source_region=region)),
            opc_retry_token=uuid.uuid4().hex,
        )
        wait_for_work_request(clients.data_science, response.headers["opc-work-request-id"],
                              f"exporting artifact into model {model_id}", wait)
    except DeploymentFailedError as exc:
        raise ArtifactUploadError(
            f"{exc} Check that the Data Science service may read bucket {staging.bucket!r} "
            "(allow service datascience to manage object-family ... where target.bucket.name=...)."
        ) from None
    finally:
        if not keep_staging_object:
            try:
                clients.object_storage.delete_object(staging.namespace, staging.bucket, object_name)
            except oci.exceptions.ServiceError as exc:
                log.warning("could not delete staging object %s/%s: %s %s", staging.bucket, object_name,
                            exc.status, exc.code)
    return report


def attach_artifact(clients: OciClients, model_id: str, artifact: ZipArtifact | ReferencedArtifact, *,
                    region: str, wait: WaitPolicy, staging: ObjectPrefix | None = None,
                    direct_limit_bytes: int = DIRECT_UPLOAD_LIMIT_BYTES, part_size: int = DEFAULT_PART_SIZE_BYTES,
                    parallel_parts: int = 4) -> UploadReport:
    """Attach `artifact` to catalog model `model_id` by its route; never a direct upload above the limit."""
    if isinstance(artifact, ReferencedArtifact):
        return register_by_reference(clients, model_id, artifact, wait)
    _refuse_outline(artifact.path)
    if artifact.size_bytes <= direct_limit_bytes:
        log.info("uploading %d-byte artifact directly to model %s", artifact.size_bytes, model_id)
        _upload_direct(clients, model_id, artifact)
        return UploadReport("direct", uploaded_bytes=artifact.size_bytes, uploaded_objects=1)
    if staging is None:
        raise ArtifactUploadError(
            f"model artifact {str(artifact.path)!r} is {artifact.size_bytes / 1024**3:.2f} GiB, above the "
            f"{direct_limit_bytes}-byte direct-upload limit; set target.artifact_bucket (oci://<bucket>@<namespace>/"
            "<prefix>, a StagingBucket here) for the Object Storage export route, or deploy by reference from an "
            "oci:// engine cache.")
    return export_from_bucket(clients, model_id, artifact, staging, region, wait, part_size=part_size,
                              parallel_parts=parallel_parts)


def staging_prefix(clients: OciClients, staging: StagingBucket | ObjectPrefix | None) -> ObjectPrefix | None:
    if staging is None or isinstance(staging, ObjectPrefix):
        return staging
    namespace = staging.namespace or clients.object_storage.get_namespace().data
    return ObjectPrefix(namespace=namespace, bucket=staging.bucket, prefix=staging.prefix)


def artifact_volume_bytes(size_bytes: int, route: str) -> int:
    """Bytes the deployment's volume holds for the artifact: a zip is downloaded and unzipped beside itself
    (llama2 README "Insufficient boot volume storage"); referenced objects are downloaded once."""
    return size_bytes if route == "by_reference" else 2 * size_bytes


__all__ = ["DIRECT_UPLOAD_LIMIT_BYTES", "ROUTES", "ArtifactRouteChoice", "ObjectPrefix", "ReferencedArtifact",
           "ServingLayout", "StagingBucket", "UploadReport", "ZipArtifact", "artifact_volume_bytes", "attach_artifact",
           "by_reference_layout", "choose_artifact_route", "default_artifact_bucket", "file_sha256",
           "plan_reference_artifact", "staging_prefix"]
