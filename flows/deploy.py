"""Flow `deploy`: the artifact of an assembled repository (by reference or zipped), the serving image, and
the Model Deployment, checked against the service's limits before anything is uploaded or pushed."""

from __future__ import annotations

from prefect import flow

from trtllm_oci.backends.base import PreparedArtifact, ServingConfig
from trtllm_oci.cloud.deployment import DeploymentResult
from trtllm_oci.release.workspace import Workspace
from trtllm_oci.settings import current_settings
from trtllm_oci.spec import ReleaseSpec
from trtllm_oci.tasks.cloud import (
    deploy_task,
    plan_deployment_task,
    publish_image_task,
    reference_artifact_task,
    smoke_test_task,
)
from trtllm_oci.tasks.repo import package_artifact_task


@flow(name="deploy", flow_run_name="deploy-{spec.release_id}")
def deploy(spec: ReleaseSpec, repo: ServingConfig, source_revision: str, out_dir: str | None = None,
           artifact: PreparedArtifact | None = None) -> DeploymentResult:
    """Deploy `repo` (the `assemble` flow's result) for `spec`'s OCI target.

    artifact: the `build_engine` flow's result; needed when the engines go by reference from an oci://
    engine cache (the pre-flight says which route), unused for a zipped artifact.
    """
    ws = Workspace.for_release(spec, current_settings(), out_dir)
    route = plan_deployment_task(spec)
    if route.route == "by_reference":
        packaged = reference_artifact_task(spec, artifact, repo, route)
    else:
        packaged = package_artifact_task(repo, ws.artifact_zip)
    image = publish_image_task(spec, source_revision)
    result = deploy_task(spec, image, packaged, route)
    smoke_test_task(spec, result)
    return result
