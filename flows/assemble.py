"""Flow `assemble`: the serving configuration of a release, from its (cached) artifact."""

from __future__ import annotations

from prefect import flow

from trtllm_oci.backends.base import PreparedArtifact, ServingConfig
from trtllm_oci.release.workspace import Workspace
from trtllm_oci.settings import current_settings
from trtllm_oci.spec import ReleaseSpec
from trtllm_oci.tasks.download import download_model_task
from trtllm_oci.tasks.repo import assemble_repository_task


@flow(name="assemble", flow_run_name="assemble-{spec.release_id}")
def assemble(spec: ReleaseSpec, artifact: PreparedArtifact, out_dir: str | None = None) -> ServingConfig:
    ws = Workspace.for_release(spec, current_settings(), out_dir)
    model = download_model_task(spec.model)
    return assemble_repository_task(spec, artifact, model, ws.root)
