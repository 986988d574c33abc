"""Flow `assemble`: the serving configuration of a release, from its (cached) artifact."""

from __future__ import annotations

from prefect import flow

from trtllm_oci.backends.base import PreparedArtifact, ServingConfig
from trtllm_oci.release.workspace import Workspace
from trtllm_oci.settings import current_settings
from trtllm_oci.spec import OciTarget, ReleaseSpec
from trtllm_oci.tasks.cloud import plan_deployment_task
from trtllm_oci.tasks.download import download_model_task
from trtllm_oci.tasks.repo import assemble_repository_task


@flow(name="assemble", flow_run_name="assemble-{spec.release_id}")
def assemble(spec: ReleaseSpec, artifact: PreparedArtifact, out_dir: str | None = None) -> ServingConfig:
    """The serving configuration of `artifact` (the `build_engine` flow's result). For an OCI target whose
    engines go by reference (the pre-flight decides), only their outline is written: no engine byte is
    downloaded, and the `deploy` flow references them where the engine cache holds them."""
    ws = Workspace.for_release(spec, current_settings(), out_dir)
    route = plan_deployment_task(spec) if isinstance(spec.target, OciTarget) else None
    model = download_model_task(spec.model)
    by_reference = route is not None and route.route == "by_reference"
    return assemble_repository_task(spec, artifact, model, ws.root, by_reference)
