"""Stages for an OCI target: serving image to OCIR, Model Deployment, smoke test, teardown."""

from __future__ import annotations

from prefect import task
from prefect.tasks import exponential_backoff

from trtllm_oci.cloud.clients import OciClients
from trtllm_oci.cloud.deployment import DeploymentResult, TeardownReport, deploy, teardown_release
from trtllm_oci.cloud.invoke import SmokeResult, smoke_test
from trtllm_oci.cloud.ocir import ensure_container_repository
from trtllm_oci.errors import ServiceError
from trtllm_oci.image.build import SERVING_CONTEXT
from trtllm_oci.image.publish import PublishedImage, publish_image
from trtllm_oci.image.refs import RegistryAuth, parse_image_ref
from trtllm_oci.release.deployment import (
    OCIR_AUTH_TOKEN_SECRET_BLOCK,
    base_image,
    deployment_request,
    oci_clients,
    oci_target,
    registry_auth,
    serving_image_ref,
)
from trtllm_oci.repo.package import PackageResult
from trtllm_oci.settings import current_settings
from trtllm_oci.spec import ReleaseSpec
from trtllm_oci.tasks.common import retry_if_transient, run_logger, secret_value
from trtllm_oci.tasks.docker_blocks import docker_client_from_block, registry_auth_from_block


def release_clients(spec: ReleaseSpec) -> OciClients:
    return oci_clients(oci_target(spec), current_settings())


def release_registry_auth(spec: ReleaseSpec, clients: OciClients, credentials_block: str | None = None) -> RegistryAuth:
    """In order: a prefect-docker DockerRegistryCredentials block (by name); an auth token kept in the
    `ocir-auth-token` Secret block (value `<user>:<token>`); else a short-lived token signed with the
    pipeline's own OCI identity."""
    if credentials_block:
        return registry_auth_from_block(credentials_block)
    return registry_auth(oci_target(spec), clients, current_settings(), secret_value(OCIR_AUTH_TOKEN_SECRET_BLOCK))


@task(
    name="publish-serving-image",
    task_run_name="image-{spec.release_id}",
    retries=2,
    retry_delay_seconds=exponential_backoff(backoff_factor=30),
    retry_jitter_factor=0.5,
    retry_condition_fn=retry_if_transient,
    timeout_seconds=3 * 3600,
    persist_result=True,
)
def publish_image_task(
    spec: ReleaseSpec,
    source_revision: str,
    docker_host_block: str | None = None,
    registry_credentials_block: str | None = None,
) -> PublishedImage:
    """Build the serving image FROM the version's tritonserver image and push it, unless OCIR already has it.

    docker_host_block / registry_credentials_block: names of saved prefect-docker DockerHost and
    DockerRegistryCredentials blocks; without them the environment's Docker engine (DOCKER_HOST) is used.
    """
    import docker

    log = run_logger()
    target = oci_target(spec)
    clients = release_clients(spec)
    ensure_container_repository(clients.artifacts, target.compartment_id, target.ocir_repository)
    ref = parse_image_ref(serving_image_ref(spec))
    client = docker_client_from_block(docker_host_block) if docker_host_block else docker.from_env()
    try:
        return publish_image(
            SERVING_CONTEXT,
            SERVING_CONTEXT / "Dockerfile.serving",
            ref.repository,
            ref.tag,
            {"BASE_IMAGE": base_image(spec)},
            {"ai.trtllm-oci.trtllm-version": spec.trtllm_version, "ai.trtllm-oci.source-revision": source_revision},
            release_registry_auth(spec, clients, registry_credentials_block),
            client,
            log.info,
        )
    finally:
        client.close()


@task(name="deploy-model", task_run_name="deploy-{spec.release_id}", timeout_seconds=5 * 3600, persist_result=True)
def deploy_task(spec: ReleaseSpec, image: PublishedImage, artifact: PackageResult) -> DeploymentResult:
    """Create or update (zero-downtime) the Model Deployment of this release and wait until it is ACTIVE.

    Not retried by Prefect: the SDK retries safe calls itself, and a failed deploy cleans up after itself.
    """
    req = deployment_request(spec, image_digest=image.digest, artifact_size_bytes=artifact.size_bytes,
                             artifact_sha256=artifact.sha256)
    result = deploy(release_clients(spec), req, str(artifact.zip_path))
    run_logger().info("deployment %s %s: %s (%s)", result.model_deployment_id, result.action, result.url,
                      result.lifecycle_state)
    return result


@task(name="smoke-test-endpoint", task_run_name="smoke-{spec.release_id}", retries=3,
      retry_delay_seconds=exponential_backoff(backoff_factor=10), retry_condition_fn=retry_if_transient,
      timeout_seconds=300)
def smoke_test_task(spec: ReleaseSpec, deployment: DeploymentResult) -> SmokeResult:
    if not deployment.url:
        raise ServiceError(f"deployment {deployment.model_deployment_id} reports no URL; check it in the console")
    result = smoke_test(deployment.url, release_clients(spec).auth.signer, streaming=spec.serving.streaming)
    run_logger().info("smoke test: %r in %.2f s", result.text[:80], result.seconds)
    return result


@task(name="teardown-release", task_run_name="teardown-{spec.release_id}", timeout_seconds=3 * 3600)
def teardown_task(spec: ReleaseSpec) -> TeardownReport:
    target = oci_target(spec)
    report = teardown_release(release_clients(spec), target.compartment_id, spec.release_id, project_id=target.project_id)
    run_logger().info("teardown of %s: %s", spec.release_id, report)
    return report
