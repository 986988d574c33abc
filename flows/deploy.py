"""Flow `deploy`: package an assembled repository, push the serving image and create/update the deployment."""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from trtllm_oci.backends.base import ServingConfig
from trtllm_oci.cloud.deployment import DeploymentResult
from trtllm_oci.release.workspace import Workspace
from trtllm_oci.settings import current_settings
from trtllm_oci.spec import ReleaseSpec
from trtllm_oci.tasks.cloud import deploy_task, publish_image_task, smoke_test_task
from trtllm_oci.tasks.repo import package_artifact_task


@flow(name="deploy", flow_run_name="deploy-{spec.release_id}")
def deploy(spec: ReleaseSpec, repo: ServingConfig, source_revision: str, out_dir: str | None = None) -> DeploymentResult:
    ws = Workspace.for_release(spec, current_settings(), out_dir)
    artifact = package_artifact_task(repo, Path(ws.artifact_zip))
    image = publish_image_task(spec, source_revision)
    result = deploy_task(spec, image, artifact)
    smoke_test_task(spec, result)
    return result
