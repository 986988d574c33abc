"""From a release spec to the Model Deployment request: image reference, Triton command line, sizes."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

import oci.regions

from trtllm_oci.cloud.artifact import ArtifactRoute, ServingLayout
from trtllm_oci.cloud.deployment import IMAGE_DIGEST_PLACEHOLDER, DeploymentRequest
from trtllm_oci.engine.versions import get_version
from trtllm_oci.errors import SpecError
from trtllm_oci.image.refs import ocir_image_ref
from trtllm_oci.repo.assemble import MODEL_REPOSITORY_DIR, oci_deploy_root
from trtllm_oci.serving.launch import deploy_cmd
from trtllm_oci.spec import OciTarget, ReleaseSpec

# The NVIDIA trtllm-python-py3 images unpack to 40+ GB (oracle-samples Triton_TensorRT guide); used to size
# STORAGE_SIZE_IN_GB before the real size is known from the pushed image.
TRTLLM_IMAGE_SIZE_ESTIMATE_BYTES = 45 * 10**9
REPOSITORY_DIR_NAME = "repository"


def storage_image_bytes(measured_size_bytes: int | None) -> int:
    """Image bytes to size STORAGE_SIZE_IN_GB with: the pushed image's measured size (PublishedImage.size_bytes),
    else the estimate (a dry run comes before the push)."""
    return measured_size_bytes or TRTLLM_IMAGE_SIZE_ESTIMATE_BYTES


def region_key(region: str) -> str:
    keys = {long: short for short, long in oci.regions.REGIONS_SHORT_NAMES.items()}
    if region not in keys:
        raise SpecError(f"target.region {region!r} is not an OCI region the oci SDK knows; e.g. us-ashburn-1")
    return keys[region]


def oci_target(spec: ReleaseSpec) -> OciTarget:
    if not isinstance(spec.target, OciTarget):
        raise SpecError(f"release {spec.release_id} has target.kind={spec.target.kind!r}; deploying needs kind: oci")
    if not spec.target.ocir_namespace:
        raise SpecError("target.ocir_namespace is required to push the serving image (get it with `oci os ns get`)")
    return spec.target


def serving_image_tag(spec: ReleaseSpec) -> str:
    try:
        ours = version("trtllm-oci")
    except PackageNotFoundError:  # running from a source tree that was not pip-installed
        ours = "0+source"
    return f"{get_version(spec.trtllm_version).image_tag}-trtllm-oci{ours}".replace("+", "-")


def serving_image_ref(spec: ReleaseSpec) -> str:
    target = oci_target(spec)
    return ocir_image_ref(region_key(target.region), target.ocir_namespace, target.ocir_repository, serving_image_tag(spec))


def deployment_request(
    spec: ReleaseSpec,
    *,
    image_digest: str = IMAGE_DIGEST_PLACEHOLDER,
    artifact_size_bytes: int,
    artifact_sha256: str | None = None,
    image_size_bytes: int = TRTLLM_IMAGE_SIZE_ESTIMATE_BYTES,
    artifact_route: ArtifactRoute = "direct",
    layout: ServingLayout | None = None,
) -> DeploymentRequest:
    """The BYOC request for a release; the model repository lives inside the artifact at its deploy root.

    `layout` (trtllm_oci.cloud.artifact.by_reference_layout) replaces the zip's layout for a model by reference.
    """
    target = oci_target(spec)
    # Triton gets the configs' directory, not the artifact root: engine/ and tokenizer/ sit beside it.
    repo_dir = layout.model_repository if layout else f"{oci_deploy_root(REPOSITORY_DIR_NAME)}/{MODEL_REPOSITORY_DIR}"
    port = spec.serving.http_port
    # The image's launcher expands the per-rank mpirun argv inside the container, so cmd stays short at any
    # world size (the expanded argv is ~400 bytes a rank; Data Science allows < 2048).
    cmd = deploy_cmd(
        repo_dir,
        spec.parallelism.world_size,
        http_port=port,
        grpc_port=spec.serving.grpc_port,
        metrics_port=spec.serving.grpc_port + 1,
        links=layout.links if layout else None,
        serving_root=layout.deploy_root if layout else None,
    )
    return DeploymentRequest(
        region=target.region,
        compartment_id=target.compartment_id,
        project_id=target.project_id,
        shape=target.shape,
        instance_count=target.instance_count,
        autoscaling=target.autoscaling,
        bandwidth_mbps=target.bandwidth_mbps,
        display_name=spec.release_id,
        description=f"trtllm-oci release {spec.release_id}: {spec.model.label}, {spec.quantization.method.value}, "
        f"tp={spec.parallelism.tp} pp={spec.parallelism.pp}, TensorRT-LLM {spec.trtllm_version}",
        release_id=spec.release_id,
        image=serving_image_ref(spec),
        image_digest=image_digest,
        cmd=cmd,
        server_port=port,
        health_port=port,
        streaming=spec.serving.streaming,
        predict_model="tensorrt_llm_bls" if spec.serving.include_bls and spec.serving.streaming else "ensemble",
        artifact_size_bytes=artifact_size_bytes,
        image_size_bytes=image_size_bytes,
        artifact_sha256=artifact_sha256,
        access_log_id=target.access_log_id,
        access_log_group_id=target.log_group_id if target.access_log_id else None,
        predict_log_id=target.predict_log_id,
        predict_log_group_id=target.log_group_id if target.predict_log_id else None,
        deployment_timeout_minutes=target.deployment_timeout_minutes,
        world_size=spec.parallelism.world_size,
        artifact_route=artifact_route,
        extra_env=dict(target.extra_env),
    )
