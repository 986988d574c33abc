"""Stages for an OCI target: serving image to OCIR, Model Deployment, smoke test, teardown."""

from __future__ import annotations

import os

from prefect import task
from prefect.tasks import exponential_backoff
from trtllm_oci.tasks.common import retry_if_transient, run_logger, secret_value

from trtllm_oci.cloud.artifact import ObjectPrefix
from trtllm_oci.cloud.auth import make_signer
from trtllm_oci.cloud.clients import OciClients
from trtllm_oci.cloud.deployment import DeploymentResult, TeardownReport, deploy, teardown_release
from trtllm_oci.cloud.invoke import SmokeResult, smoke_test
from trtllm_oci.cloud.ocir import ensure_container_repository, ocir_login_token
from trtllm_oci.cloud.release_request import (
    deployment_request,
    oci_target,
    region_key,
    serving_image_ref,
    storage_image_bytes,
)
from trtllm_oci.engine.stores import oci_endpoint_overrides
from trtllm_oci.engine.versions import get_version
from trtllm_oci.image.build import SERVING_CONTEXT
from trtllm_oci.image.prefect_blocks import docker_client_from_block, registry_auth_from_block
from trtllm_oci.image.publish import PublishedImage, publish_image
from trtllm_oci.image.refs import RegistryAuth, parse_image_ref
from trtllm_oci.repo.package import PackageResult
from trtllm_oci.spec import ReleaseSpec

OCIR_AUTH_TOKEN_SECRET_BLOCK = "ocir-auth-token"


def oci_clients(spec: ReleaseSpec) -> OciClients:
    target = oci_target(spec)
    return OciClients(make_signer(target.auth, profile=target.profile), region=target.region,
                      endpoints=oci_endpoint_overrides())


def registry_auth(spec: ReleaseSpec, clients: OciClients, credentials_block: str | None = None) -> RegistryAuth:
    """In order: a prefect-docker DockerRegistryCredentials block (by name); an auth token kept in the
    `ocir-auth-token` Secret block (value `<user>:<token>`); else a short-lived token from OCIR's docker token
    endpoint signed with the pipeline's own OCI identity, so a pipeline inside OCI needs no stored secret."""
    if credentials_block:
        return registry_auth_from_block(credentials_block)
    target = oci_target(spec)
    key = region_key(target.region)
    stored = secret_value(OCIR_AUTH_TOKEN_SECRET_BLOCK)
    if stored is not None:
        if ":" not in stored:
            raise ValueError(f"the Secret block {OCIR_AUTH_TOKEN_SECRET_BLOCK!r} must hold '<user>:<auth token>' "
                             "(user without the namespace); re-save it in that form")
        user, token = stored.split(":", 1)
        return RegistryAuth.ocir(key, target.ocir_namespace, user, token)
    _, jwt = ocir_login_token(key, clients.auth.signer, base_url=os.environ.get("TRTLLM_OCI_OCIR_TOKEN_URL"))
    return RegistryAuth.ocir_token(key, jwt)


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
    clients = oci_clients(spec)
    ensure_container_repository(clients.artifacts, target.compartment_id, target.ocir_repository)
    ref = parse_image_ref(serving_image_ref(spec))
    version = get_version(spec.trtllm_version)
    client = docker_client_from_block(docker_host_block) if docker_host_block else docker.from_env()
    try:
        return publish_image(
            SERVING_CONTEXT,
            SERVING_CONTEXT / "Dockerfile.serving",
            ref.repository,
            ref.tag,
            {"BASE_IMAGE": version.serving_image},
            {"ai.trtllm-oci.trtllm-version": spec.trtllm_version, "ai.trtllm-oci.source-revision": source_revision},
            registry_auth(spec, clients, registry_credentials_block),
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
    target = oci_target(spec)
    req = deployment_request(spec, image_digest=image.digest, artifact_size_bytes=artifact.size_bytes,
                             artifact_sha256=artifact.sha256, image_size_bytes=storage_image_bytes(image.size_bytes))
    staging = ObjectPrefix.parse(target.artifact_bucket) if target.artifact_bucket else None
    result = deploy(oci_clients(spec), req, str(artifact.zip_path), staging=staging)
    run_logger().info("deployment %s %s: %s (%s)", result.model_deployment_id, result.action, result.url,
                      result.lifecycle_state)
    return result


@task(name="smoke-test-endpoint", task_run_name="smoke-{spec.release_id}", retries=3,
      retry_delay_seconds=exponential_backoff(backoff_factor=10), retry_condition_fn=retry_if_transient,
      timeout_seconds=300)
def smoke_test_task(spec: ReleaseSpec, deployment: DeploymentResult) -> SmokeResult:
    if not deployment.url:
        raise RuntimeError(f"deployment {deployment.model_deployment_id} reports no URL; check it in the console")
    result = smoke_test(deployment.url, oci_clients(spec).auth.signer, streaming=spec.serving.streaming,
                        routes=deployment.routes)
    run_logger().info("smoke test: %r in %.2f s", result.text[:80], result.seconds)
    return result


@task(name="teardown-release", task_run_name="teardown-{spec.release_id}", timeout_seconds=3 * 3600)
def teardown_task(spec: ReleaseSpec) -> TeardownReport:
    target = oci_target(spec)
    report = teardown_release(oci_clients(spec), target.compartment_id, spec.release_id, project_id=target.project_id)
    run_logger().info("teardown of %s: %s", spec.release_id, report)
    return report
