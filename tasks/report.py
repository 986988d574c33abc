"""Stage: the release report as Prefect markdown, table and link artifacts, and report.md on disk."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact

from trtllm_oci import planner
from trtllm_oci.backends.base import PreparedArtifact, ServingConfig
from trtllm_oci.cloud.deployment import DeploymentResult
from trtllm_oci.evaluate.gate import QualityVerdict
from trtllm_oci.hub.snapshot import DownloadResult
from trtllm_oci.image.publish import PublishedImage
from trtllm_oci.release.bench import BenchOutcome
from trtllm_oci.release.report import release_report
from trtllm_oci.report import ReleaseReport, report_markdown
from trtllm_oci.spec import ReleaseSpec
from trtllm_oci.tasks.common import run_logger
from trtllm_oci.tasks.plan import artifact_key


@task(name="publish-report", task_run_name="report-{spec.release_id}")
def publish_report_task(
    spec: ReleaseSpec,
    plan: planner.Plan | None,
    model: DownloadResult,
    artifact: PreparedArtifact,
    repo: ServingConfig,
    image: PublishedImage | None,
    deployment: DeploymentResult | None,
    bench: BenchOutcome | None,
    out_root: Path,
    quality: QualityVerdict | None = None,
) -> ReleaseReport:
    report = release_report(spec, plan, model, artifact, repo, image, deployment, bench, Path(out_root), quality)
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
