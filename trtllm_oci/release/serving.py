"""The serving configuration of a release: the backend's model repository for its prepared artifact."""

from __future__ import annotations

from pathlib import Path

from trtllm_oci.backends import backend_for
from trtllm_oci.backends.base import PreparedArtifact
from trtllm_oci.cache.stores import local_engine_dir
from trtllm_oci.hub.snapshot import DownloadResult
from trtllm_oci.release.cache import open_engine_store
from trtllm_oci.release.deployment import REPOSITORY_DIR_NAME
from trtllm_oci.repo.assemble import RepoManifest, RepoOptions, oci_deploy_root
from trtllm_oci.settings import Settings
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


def assemble(spec: ReleaseSpec, artifact: PreparedArtifact, model: DownloadResult, out_root: Path,
             settings: Settings) -> RepoManifest:
    """Write the release's repository under `out_root/repository` from its artifact on this host (downloaded
    from an oci:// engine cache when it was built elsewhere)."""
    stored = local_engine_dir(open_engine_store(spec.engine_cache, settings), artifact.manifest)
    backend = backend_for(spec.serving.backend)
    return backend.write_serving_config(stored, model, Path(out_root) / REPOSITORY_DIR_NAME, repo_options(spec))
