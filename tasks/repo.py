"""Stage: assemble the Triton model repository (and, for OCI, package it as the model artifact)."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from trtllm_oci.tasks.common import run_logger

from trtllm_oci.cache.local_store import EngineManifest
from trtllm_oci.cache.stores import local_engine_dir, open_engine_store
from trtllm_oci.hub.download import DownloadResult
from trtllm_oci.release.deployment import REPOSITORY_DIR_NAME
from trtllm_oci.repo.assemble import RepoManifest, RepoOptions, assemble_repository, oci_deploy_root
from trtllm_oci.repo.package import PackageResult, package_repository
from trtllm_oci.spec import OciTarget, ReleaseSpec


def repo_options(spec: ReleaseSpec) -> RepoOptions:
    s = spec.serving
    oci = isinstance(spec.target, OciTarget)
    return RepoOptions(
        trtllm_version=spec.trtllm_version,
        backend=s.backend,
        streaming=s.streaming,
        triton_max_batch_size=spec.effective_triton_max_batch_size,
        batch_scheduler_policy=s.batch_scheduler_policy,
        kv_cache_free_gpu_mem_fraction=s.kv_cache_free_gpu_mem_fraction,
        max_tokens_in_paged_kv_cache=s.max_tokens_in_paged_kv_cache,
        enable_kv_cache_reuse=s.enable_kv_cache_reuse,
        exclude_input_in_output=s.exclude_input_in_output,
        max_queue_delay_microseconds=s.max_queue_delay_microseconds,
        preprocessing_instance_count=s.preprocessing_instance_count,
        postprocessing_instance_count=s.postprocessing_instance_count,
        include_bls=s.include_bls,
        # In a Model Deployment the artifact is unzipped read-only under /opt/ds/model/deployed_model.
        deploy_root=oci_deploy_root(REPOSITORY_DIR_NAME) if oci else None,
        materialize=oci,
    )


@task(name="assemble-repository", task_run_name="assemble-{spec.release_id}", persist_result=True, timeout_seconds=3600)
def assemble_repository_task(
    spec: ReleaseSpec, engine: EngineManifest, model: DownloadResult, out_root: Path
) -> RepoManifest:
    log = run_logger()
    stored = local_engine_dir(open_engine_store(spec.engine_cache), engine)
    out_dir = Path(out_root) / REPOSITORY_DIR_NAME
    if spec.serving.backend == "reference":
        manifest = assemble_repository(None, stored, out_dir, repo_options(spec), hf_model_dir=stored, overwrite=True)
    else:
        manifest = assemble_repository(stored, Path(model.local_dir), out_dir, repo_options(spec), overwrite=True)
    log.info("model repository at %s: models %s, world_size %d", manifest.model_repository, manifest.models,
             manifest.world_size)
    return manifest


@task(name="package-artifact", task_run_name="package-{repo.root.name}", persist_result=True, timeout_seconds=6 * 3600)
def package_artifact_task(repo: RepoManifest, zip_path: Path) -> PackageResult:
    result = package_repository(repo.root, zip_path, arc_root=REPOSITORY_DIR_NAME)
    run_logger().info("model artifact %s (%d bytes, sha256 %s)", result.zip_path, result.size_bytes, result.sha256)
    return result
