"""Stage: the release report as Prefect markdown, table and link artifacts, and report.md on disk."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from trtllm_oci.tasks.bench import BenchOutcome
from trtllm_oci.tasks.common import run_logger
from trtllm_oci.tasks.plan import artifact_key

from trtllm_oci import planner
from trtllm_oci.cache.local_store import EngineManifest
from trtllm_oci.cloud.deployment import DeploymentResult
from trtllm_oci.hub.download import DownloadResult
from trtllm_oci.image.publish import PublishedImage
from trtllm_oci.repo.assemble import RepoManifest
from trtllm_oci.report import ReleaseReport, report_markdown
from trtllm_oci.spec import ReleaseSpec


@task(name="publish-report", task_run_name="report-{spec.release_id}")
def publish_report_task(
    spec: ReleaseSpec,
    plan: planner.Plan | None,
    model: DownloadResult,
    engine: EngineManifest,
    repo: RepoManifest,
    image: PublishedImage | None,
    deployment: DeploymentResult | None,
    bench: BenchOutcome | None,
    out_root: Path,
) -> ReleaseReport:
    report = ReleaseReport(
        release_id=spec.release_id,
        model=spec.model.label,
        model_commit=model.commit_sha,
        plan=plan.reasons[0] if plan else None,
        engine_key=engine.key,
        engine_uri=engine.uri,
        engine_cache_hit=bool(engine.engine.get("cache_hit")),
        backend=spec.serving.backend,
        repository=repo.root,
        image=image.pinned_ref if image else None,
        deployment_id=deployment.model_deployment_id if deployment else None,
        endpoint=deployment.url if deployment else None,
        benchmark=bench.headline if bench else None,
        result_files={**(bench.files if bench else {}), "report": str(Path(out_root) / "report.md")},
    )
    markdown = report_markdown(report)
    (Path(out_root) / "report.md").write_text(markdown)
    key = artifact_key(f"release-{spec.release_id}")
    create_markdown_artifact(markdown, key=key, description=f"Release report for {spec.release_id}")
    if bench is not None:
        create_table_artifact(bench.summary_records, key=f"{key}-benchmark"[:100],
                              description="Benchmark: one row per load point")
        for name, path in bench.files.items():
            create_link_artifact(Path(path).resolve().as_uri(), link_text=name)
    if deployment is not None and deployment.url:
        create_link_artifact(deployment.url, link_text="model deployment endpoint")
    run_logger().info("release %s done; report at %s", spec.release_id, Path(out_root) / "report.md")
    return report
