"""Stage: assemble the serving configuration (and, for OCI, package it as the model artifact)."""

from __future__ import annotations

from pathlib import Path

from prefect import task

from trtllm_oci.backends.base import PreparedArtifact, ServingConfig
from trtllm_oci.hub.snapshot import DownloadResult
from trtllm_oci.release.serving import REPOSITORY_DIR_NAME, assemble
from trtllm_oci.repo.package import PackageResult, package_repository
from trtllm_oci.settings import current_settings
from trtllm_oci.spec import ReleaseSpec
from trtllm_oci.tasks.common import run_logger


@task(name="assemble-repository", task_run_name="assemble-{spec.release_id}", persist_result=True, timeout_seconds=3600)
def assemble_repository_task(
    spec: ReleaseSpec, artifact: PreparedArtifact, model: DownloadResult, out_root: Path, by_reference: bool = False
) -> ServingConfig:
    config = assemble(spec, artifact, model, Path(out_root), current_settings(), by_reference=by_reference)
    run_logger().info("serving config at %s: %s via %s, world_size %d, model %r", config.root, config.backend,
                      config.frontend, config.world_size, config.served_model)
    return config


@task(name="package-artifact", task_run_name="package-{repo.root.name}", persist_result=True, timeout_seconds=6 * 3600)
def package_artifact_task(repo: ServingConfig, zip_path: Path) -> PackageResult:
    result = package_repository(repo.root, zip_path, arc_root=REPOSITORY_DIR_NAME)
    run_logger().info("model artifact %s (%d bytes, sha256 %s)", result.zip_path, result.size_bytes, result.sha256)
    return result
