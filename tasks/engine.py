"""Stage: prepare the release's artifact (TensorRT-LLM engines, or the CPU reference checkpoint) through
the engine cache."""

from __future__ import annotations

from pathlib import Path

from prefect import task

from trtllm_oci import planner
from trtllm_oci.backends.base import PreparedArtifact
from trtllm_oci.build.host import BuildHost
from trtllm_oci.hub.snapshot import DownloadResult
from trtllm_oci.model_facts import load_model_facts
from trtllm_oci.release.artifact import prepare_artifact
from trtllm_oci.settings import current_settings
from trtllm_oci.spec import ReleaseSpec
from trtllm_oci.tasks.common import run_logger


@task(
    name="build-engine",
    task_run_name="build-{spec.release_id}",
    # A GPU build is not retried blindly: a failed 40-minute build usually fails the same way again.
    retries=0,
    timeout_seconds=12 * 3600,
    persist_result=True,
)
def build_engine_task(
    spec: ReleaseSpec,
    model: DownloadResult,
    plan: planner.Plan | None,
    host: BuildHost | None = None,
    force: bool = False,
) -> PreparedArtifact:
    log = run_logger()
    artifact = prepare_artifact(spec, model, load_model_facts(Path(model.local_dir)), plan, current_settings(),
                                log.info, host, force)
    log.info("engine %s: %s (%s)", "reused from cache" if artifact.cache_hit else "built and cached",
             artifact.manifest.key, artifact.manifest.uri)
    return artifact
