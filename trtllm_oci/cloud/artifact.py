"""Model-artifact upload into the Data Science model catalog.

Up to `direct_limit_bytes` (2 GiB, like ADS `_MAX_ARTIFACT_SIZE_IN_BYTES` in
oracle/accelerated-data-science:ads/model/datascience_model.py@2.15.2) the zip is streamed straight from the open
file with `create_model_artifact(content_length=...)`, so the SDK never buffers it. Above, the zip goes to an
Object Storage bucket by parallel multipart upload and is then pulled in by `export_model_artifact`
(oracle-samples/oci-data-science-ai-samples:model-deployment/containers/llm/llama2/create-large-modelcatalog.py).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import oci
from oci.data_science.models import ArtifactExportDetailsObjectStorage, ExportModelArtifactDetails
from oci.object_storage.models import (
    CommitMultipartUploadDetails,
    CommitMultipartUploadPartDetails,
    CreateMultipartUploadDetails,
)

from trtllm_oci.cloud.clients import OciClients
from trtllm_oci.cloud.errors import ArtifactUploadError, DeploymentFailedError
from trtllm_oci.cloud.waiting import DEFAULT_WAIT, WaitPolicy, wait_for_work_request

log = logging.getLogger(__name__)

DIRECT_UPLOAD_LIMIT_BYTES = 2 * 1024**3
DEFAULT_PART_SIZE_BYTES = 128 * 1024**2
MAX_MULTIPART_PARTS = 10000  # Object Storage multipart limit


@dataclass(frozen=True)
class StagingBucket:
    """Where artifacts above the direct limit are staged before export into the catalog."""

    bucket: str
    region: str
    namespace: str | None = None  # looked up with get_namespace when None


def file_sha256(path: str, chunk_bytes: int = 8 * 1024**2) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def _upload_direct(clients: OciClients, model_id: str, path: str, size: int) -> None:
    with open(path, "rb") as fh:
        clients.data_science.create_model_artifact(
            model_id, fh, content_length=size,
            content_disposition=f"attachment; filename={os.path.basename(path)}",
            opc_retry_token=uuid.uuid4().hex,
        )


def _part_md5(path: str, offset: int, length: int) -> tuple[bytes, str]:
    with open(path, "rb") as fh:
        fh.seek(offset)
        data = fh.read(length)
    return data, base64.b64encode(hashlib.md5(data).digest()).decode("ascii")


def multipart_upload(clients: OciClients, namespace: str, bucket: str, object_name: str, path: str, *,
                     part_size: int = DEFAULT_PART_SIZE_BYTES, parallel_parts: int = 4) -> None:
    """Upload `path` in parallel parts; the upload is aborted if any part or the commit fails."""
    size = os.path.getsize(path)
    part_size = max(part_size, -(-size // MAX_MULTIPART_PARTS))
    offsets = list(range(0, size, part_size)) or [0]
    storage = clients.object_storage
    upload = storage.create_multipart_upload(
        namespace, bucket, CreateMultipartUploadDetails(object=object_name, content_type="application/zip"),
    ).data

    def send(index_offset: tuple[int, int]) -> CommitMultipartUploadPartDetails:
        index, offset = index_offset
        data, md5 = _part_md5(path, offset, min(part_size, size - offset))
        response = storage.upload_part(namespace, bucket, object_name, upload.upload_id, index + 1, data,
                                       content_length=len(data), content_md5=md5)
        return CommitMultipartUploadPartDetails(part_num=index + 1, etag=response.headers["etag"])

    try:
        with ThreadPoolExecutor(max_workers=max(1, parallel_parts)) as pool:
            parts = list(pool.map(send, enumerate(offsets)))
        storage.commit_multipart_upload(namespace, bucket, object_name, upload.upload_id,
                                        CommitMultipartUploadDetails(parts_to_commit=parts))
    except BaseException:
        try:
            storage.abort_multipart_upload(namespace, bucket, object_name, upload.upload_id)
        except oci.exceptions.ServiceError as abort_exc:
            log.warning("could not abort multipart upload %s of %s/%s: %s %s", upload.upload_id, bucket,
                        object_name, abort_exc.status, abort_exc.code)
        raise


def upload_model_artifact(clients: OciClients, model_id: str, artifact_path: str, *,
                          direct_limit_bytes: int = DIRECT_UPLOAD_LIMIT_BYTES, staging: StagingBucket | None = None,
                          part_size: int = DEFAULT_PART_SIZE_BYTES, parallel_parts: int = 4,
                          wait: WaitPolicy = DEFAULT_WAIT, keep_staging_object: bool = False) -> str:
    """Attach the zip at `artifact_path` to catalog model `model_id`. Returns "direct" or "object_storage"."""
    if not os.path.isfile(artifact_path):
        raise ArtifactUploadError(f"model artifact {artifact_path!r} does not exist; build the artifact zip first.")
    size = os.path.getsize(artifact_path)
    if size <= direct_limit_bytes:
        log.info("uploading %d-byte artifact directly to model %s", size, model_id)
        _upload_direct(clients, model_id, artifact_path, size)
        return "direct"
    if staging is None:
        raise ArtifactUploadError(
            f"model artifact {artifact_path!r} is {size / 1024**3:.2f} GiB, above the {direct_limit_bytes} byte "
            "direct-upload limit; pass staging=StagingBucket(bucket=<bucket>, region=<region>) for the Object "
            "Storage export path (policies: allow service datascience to manage object-family in the bucket)."
        )
    namespace = staging.namespace or clients.object_storage.get_namespace().data
    object_name = f"trtllm-oci/artifacts/{model_id}/{os.path.basename(artifact_path)}"
    log.info("uploading %d-byte artifact to oci://%s@%s/%s", size, staging.bucket, namespace, object_name)
    multipart_upload(clients, namespace, staging.bucket, object_name, artifact_path,
                     part_size=part_size, parallel_parts=parallel_parts)
    try:
        response = clients.data_science.export_model_artifact(
            model_id,
            ExportModelArtifactDetails(artifact_export_details=ArtifactExportDetailsObjectStorage(
                namespace=namespace, source_bucket=staging.bucket, source_object_name=object_name,
                source_region=staging.region)),
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
                clients.object_storage.delete_object(namespace, staging.bucket, object_name)
            except oci.exceptions.ServiceError as exc:
                log.warning("could not delete staging object %s/%s: %s %s", staging.bucket, object_name,
                            exc.status, exc.code)
    return "object_storage"
