"""Flow `assemble`: the Triton model repository of a release, from its (cached) engine."""

from __future__ import annotations

from prefect import flow
from trtllm_oci.tasks.download import download_model_task
from trtllm_oci.tasks.repo import assemble_repository_task

from trtllm_oci.cache.local_store import EngineManifest
from trtllm_oci.release.workspace import Workspace
from trtllm_oci.repo.assemble import RepoManifest
from trtllm_oci.spec import ReleaseSpec


@flow(name="assemble", flow_run_name="assemble-{spec.release_id}")
def assemble(spec: ReleaseSpec, engine: EngineManifest, out_dir: str | None = None) -> RepoManifest:
    ws = Workspace.for_release(spec, out_dir)
    model = download_model_task(spec.model, ws.models)
    return assemble_repository_task(spec, engine, model, ws.root)
