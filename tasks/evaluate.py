"""Stage: the quality gate. Its task set is fetched and checked right after the model download (bad input
fails before anything is served); the release and its source are scored after serving, before deploy."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from trtllm_oci.backends.base import ServingConfig
from trtllm_oci.evaluate.gate import QualityGateFailedError, QualityVerdict, verdict_markdown
from trtllm_oci.evaluate.task_set import PreparedTaskSet
from trtllm_oci.hub.snapshot import DownloadResult
from trtllm_oci.release.evaluate import prepare_evaluation, run_quality_gate
from trtllm_oci.settings import current_settings
from trtllm_oci.spec import ReleaseSpec
from trtllm_oci.tasks import events
from trtllm_oci.tasks.common import hf_token, retry_if_transient, run_logger
from trtllm_oci.tasks.plan import artifact_key


@task(name="prepare-evaluation", task_run_name="evaluation-set-{spec.release_id}", retries=2,
      retry_delay_seconds=20, retry_condition_fn=retry_if_transient, persist_result=True)
def prepare_evaluation_task(spec: ReleaseSpec) -> PreparedTaskSet:
    log = run_logger()
    settings = current_settings()
    prepared = prepare_evaluation(spec, settings, hf_token(settings), log.debug)
    log.info("evaluation set %s (%s): tasks %s, %s", prepared.origin, prepared.digest[:19],
             ", ".join(f"{t.name} [{t.output_type}, {t.docs} docs]" for t in prepared.tasks), prepared.harness)
    return prepared


@task(name="evaluate-quality", task_run_name="evaluate-{spec.release_id}", timeout_seconds=4 * 3600,
      persist_result=True)
def evaluate_quality_task(spec: ReleaseSpec, prepared: PreparedTaskSet, serving: ServingConfig,
                          model: DownloadResult, out_dir: Path) -> QualityVerdict:
    """Score the release and its source; the verdict is an artifact and an event. A failed gate with
    on_fail=fail raises here, so nothing after this stage (image, deploy) runs."""
    log = run_logger()
    verdict = run_quality_gate(spec, prepared, serving, model, current_settings(), log.debug, Path(out_dir))
    key = artifact_key(f"quality-{spec.release_id}")
    create_markdown_artifact(f"# Quality gate: {spec.release_id}\n\n{verdict_markdown(verdict)}\n", key=key,
                             description=f"Quality gate for {spec.release_id}: {verdict.status}")
    create_table_artifact([row.model_dump() | {"passed": row.passed} for row in verdict.rows],
                          key=f"{key}-metrics"[:100], description="Quality gate: one row per task and metric")
    events.emit_release_event(events.QUALITY_EVALUATED, spec, verdict.event_payload())
    if verdict.passed:
        log.info("%s", verdict.message())
    elif spec.evaluation is not None and spec.evaluation.on_fail == "fail":
        raise QualityGateFailedError(verdict)
    else:
        log.warning("%s; deploying it marked as failed (evaluation.on_fail: mark)", verdict.message())
    return verdict
