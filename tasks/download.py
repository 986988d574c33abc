"""Stage: download the model (or take a local directory), with progress in a Prefect progress artifact."""

from __future__ import annotations

import time

from prefect import task
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.tasks import exponential_backoff

from trtllm_oci.hub.snapshot import DownloadResult
from trtllm_oci.release.model import fetch_model
from trtllm_oci.settings import current_settings
from trtllm_oci.spec import ModelSource
from trtllm_oci.tasks.common import hf_token, retry_if_transient, run_logger


class _ProgressToArtifact:
    """Maps download progress onto a Prefect progress artifact, updated at most every few seconds."""

    def __init__(self, label: str, min_interval_s: float = 3.0) -> None:
        self.artifact_id = create_progress_artifact(0.0, description=f"Downloading {label}")
        self.min_interval_s = min_interval_s
        self._last = 0.0

    def __call__(self, done: int, total: int, current_file: str) -> None:
        now = time.monotonic()
        finished = total > 0 and done >= total
        if finished or now - self._last >= self.min_interval_s:
            self._last = now
            pct = 100.0 * done / total if total else 100.0
            update_progress_artifact(self.artifact_id, pct, description=f"{current_file}: {done}/{total} bytes")


@task(
    name="download-model",
    task_run_name="download-{source.label}",
    # The download resumes partial files, so a whole-task retry after a network failure costs little.
    retries=3,
    retry_delay_seconds=exponential_backoff(backoff_factor=10),
    retry_jitter_factor=0.5,
    retry_condition_fn=retry_if_transient,
    timeout_seconds=6 * 3600,
    persist_result=True,
)
def download_model_task(source: ModelSource) -> DownloadResult:
    log = run_logger()
    settings = current_settings()
    progress = None if source.local_dir is not None else _ProgressToArtifact(source.label)
    result = fetch_model(source, settings, hf_token(settings), progress)
    if result.source == "local":
        log.info("using local model %s (%d files, %d bytes)", result.local_dir, len(result.files), result.total_bytes)
    else:
        log.info("%s resolved to commit %s; %d files in %s", source.label, result.commit_sha, len(result.files),
                 result.local_dir)
    return result
