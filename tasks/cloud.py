"""Stages for an OCI target: serving image to OCIR, Model Deployment, smoke test, teardown."""

from __future__ import annotations

from prefect import task
from prefect.tasks import exponential_backoff

from trtllm_oci.backends.base import PreparedArtifact, ServingConfig
from trtllm_oci.cloud.artifact import (
    ArtifactRouteChoice,
    ObjectPrefix,
    ReferencedArtifact,
    by_reference_layout,
)
from trtllm_oci.cloud.clients import OciClients
from trtllm_oci.cloud.deployment import DeploymentResult, TeardownReport, deploy, teardown_release
from trtllm_oci.cloud.invoke import SmokeResult, smoke_test
from trtllm_oci.cloud.ocir import ensure_container_repository
from trtllm_oci.errors import ServiceError, SpecError
from trtllm_oci.evaluate.gate import QualityVerdict
from trtllm_oci.image.build import SERVING_CONTEXT
from trtllm_oci.image.publish import PublishedImage, publish_image
from trtllm_oci.image.refs import RegistryAuth, RegistryLogin
from trtllm_oci.release.deployment import (
    OCIR_AUTH_TOKEN_SECRET_BLOCK,
    artifact_route,
    base_image,
    deployment_request,
    estimated_artifact_bytes,
    oci_clients,
    oci_target,
    ocir_endpoint,
    preflight,
    push_image_ref,
    reference_artifact,
    registry_login,
    release_artifact_bucket,
    serving_image_platform,
    serving_image_tag,
    storage_image_bytes,
)
from trtllm_oci.release.model import model_facts
from trtllm_oci.release.serving import served_model_name
from trtllm_oci.repo.package import PackageResult
from trtllm_oci.settings import current_settings
from trtllm_oci.spec import ReleaseSpec
from trtllm_oci.tasks.common import hf_token, retry_if_transient, run_logger, secret_value
from trtllm_oci.tasks.docker_blocks import docker_client_from_block, registry_auth_from_block


def release_clients(spec: ReleaseSpec) -> OciClients:
    return oci_clients(oci_target(spec), current_settings())


def release_registry_login(spec: ReleaseSpec, clients: OciClients,
                           credentials_block: str | None = None) -> RegistryAuth | RegistryLogin:
    """In order: a prefect-docker DockerRegistryCredentials block (by name); an auth token kept in the
    `ocir-auth-token` Secret block (value `<user>:<token>`); else a short-lived token signed with the
    pipeline's own OCI identity, asked for right before each registry operation."""
    if credentials_block:
        return registry_auth_from_block(credentials_block)
    return registry_login(oci_target(spec), clients, current_settings(), secret_value(OCIR_AUTH_TOKEN_SECRET_BLOCK))


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
    settings = current_settings()
    ref = push_image_ref(spec, settings)
    endpoint = ocir_endpoint(settings)
    client = docker_client_from_block(docker_host_block) if docker_host_block else docker.from_env()
    try:
        return publish_image(
            SERVING_CONTEXT,
            SERVING_CONTEXT / "Dockerfile.serving",
            ref.name,  # publish_image takes the repository with its registry host
            ref.tag or serving_image_tag(spec),
            {"BASE_IMAGE": base_image(spec)},
            {"ai.trtllm-oci.trtllm-version": spec.trtllm_version, "ai.trtllm-oci.source-revision": source_revision},
            release_registry_login(spec, clients, registry_credentials_block),
            client,
            log.info,
            registry_scheme=endpoint.scheme if endpoint else None,
            platform=serving_image_platform(spec),
        )
    finally:
        client.close()


@task(name="plan-deployment", task_run_name="preflight-{spec.release_id}", persist_result=True,
      retries=2, retry_delay_seconds=exponential_backoff(backoff_factor=10), retry_condition_fn=retry_if_transient)
def plan_deployment_task(spec: ReleaseSpec) -> ArtifactRouteChoice:
    """Before the download, the build and the push: how the artifact will reach the catalog, and every service
    limit the deployment must meet (all failures in one error, each with its fix)."""
    log = run_logger()
    settings = current_settings()
    facts = model_facts(spec.model, settings, hf_token(settings))
    size = estimated_artifact_bytes(spec, facts)
    route = artifact_route(spec, size)
    clients = release_clients(spec)
    login = registry_login(oci_target(spec), clients, settings, secret_value(OCIR_AUTH_TOKEN_SECRET_BLOCK))
    report = preflight(spec, route, size, clients, login=login, settings=settings)
    for check in report.checks:
        log.info("pre-flight %s: %s (%s)", check.name, {True: "ok", False: "FAILS", None: "not checked"}[check.ok],
                 check.detail)
    report.raise_for_failures()
    return route


@task(name="reference-artifact", task_run_name="reference-{spec.release_id}", persist_result=True)
def reference_artifact_task(spec: ReleaseSpec, artifact: PreparedArtifact | None, repo: ServingConfig,
                            route: ArtifactRouteChoice) -> ReferencedArtifact:
    """The model by reference: the engines (or checkpoint) stay where the cache put them; only configs and tokenizer
    are staged."""
    if artifact is None:
        raise SpecError(
            f"the engines of {spec.release_id} go by reference from {spec.engine_cache.uri if spec.engine_cache else '?'} "
            "but no build result was given: pass the build_engine flow's result as the deploy flow's `artifact` "
            "parameter (or run the release flow, which passes it)")
    assert route.bucket is not None
    ref = reference_artifact(spec, repo.root, artifact.manifest.uri, artifact.manifest.total_bytes, route.bucket)
    run_logger().info("model by reference: %d GiB of engines or checkpoint in %s, %d KiB of configs to %s",
                      artifact.manifest.total_bytes // 2**30, artifact.manifest.uri, ref.small_bytes // 1024,
                      ref.staged.uri)
    return ref


@task(name="deploy-model", task_run_name="deploy-{spec.release_id}", timeout_seconds=5 * 3600, persist_result=True)
def deploy_task(spec: ReleaseSpec, image: PublishedImage, artifact: PackageResult | ReferencedArtifact,
                route: ArtifactRouteChoice | None = None, quality: QualityVerdict | None = None) -> DeploymentResult:
    """Create or update (zero-downtime) the Model Deployment of this release and wait until it is ACTIVE;
    a quality gate's verdict is tagged on it (a failed one reaches here only with evaluation.on_fail: mark).

    Not retried by Prefect: the SDK retries safe calls itself, and a failed deploy cleans up after itself.
    """
    target = oci_target(spec)
    staging = route.bucket if route is not None and route.bucket is not None else (
        ObjectPrefix.parse(target.artifact_bucket) if target.artifact_bucket else None)
    passed = None if quality is None else quality.passed
    if isinstance(artifact, ReferencedArtifact):
        req = deployment_request(spec, image_digest=image.digest, artifact_size_bytes=artifact.size_bytes,
                                 artifact_sha256=artifact.sha256,
                                 image_size_bytes=storage_image_bytes(image.size_bytes), artifact_route="by_reference",
                                 layout=by_reference_layout(artifact), quality_passed=passed)
        result = deploy(release_clients(spec), req, artifact, staging=staging)
    else:
        req = deployment_request(spec, image_digest=image.digest, artifact_size_bytes=artifact.size_bytes,
                                 artifact_sha256=artifact.sha256, image_size_bytes=storage_image_bytes(image.size_bytes),
                                 quality_passed=passed)
        result = deploy(release_clients(spec), req, str(artifact.zip_path), staging=staging)
    run_logger().info("deployment %s %s: %s (%s)", result.model_deployment_id, result.action, result.url,
                      result.lifecycle_state)
    return result


@task(name="smoke-test-endpoint", task_run_name="smoke-{spec.release_id}", retries=3,
      retry_delay_seconds=exponential_backoff(backoff_factor=10), retry_condition_fn=retry_if_transient,
      timeout_seconds=300)
def smoke_test_task(spec: ReleaseSpec, deployment: DeploymentResult) -> SmokeResult:
    if not deployment.url:
        raise ServiceError(f"deployment {deployment.model_deployment_id} reports no URL; check it in the console")
    result = smoke_test(deployment.url, release_clients(spec).auth.signer, streaming=spec.serving.streaming,
                        routes=deployment.routes, model=served_model_name(spec))
    run_logger().info("smoke test: %r in %.2f s", result.text[:80], result.seconds)
    return result


@task(name="teardown-release", task_run_name="teardown-{spec.release_id}", timeout_seconds=3 * 3600)
def teardown_task(spec: ReleaseSpec) -> TeardownReport:
    target = oci_target(spec)
    # With the staging bucket, the release's staged configs and tokenizer go too (referenced engines stay cached).
    report = teardown_release(release_clients(spec), target.compartment_id, spec.release_id, project_id=target.project_id,
                              artifact_bucket=release_artifact_bucket(spec))
    run_logger().info("teardown of %s: %s", spec.release_id, report)
    return report
