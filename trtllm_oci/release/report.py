"""The release report from what each stage returned."""

from __future__ import annotations

from pathlib import Path

from trtllm_oci import planner
from trtllm_oci.backends import backend_for
from trtllm_oci.backends.base import PreparedArtifact, ServingConfig
from trtllm_oci.cloud.deployment import DeploymentResult
from trtllm_oci.evaluate.gate import QualityVerdict
from trtllm_oci.hub.snapshot import DownloadResult
from trtllm_oci.image.publish import PublishedImage
from trtllm_oci.release.bench import BenchOutcome
from trtllm_oci.release.deployment import serving_image_ref
from trtllm_oci.report import ReleaseReport
from trtllm_oci.spec import ReleaseSpec


def release_report(spec: ReleaseSpec, plan: planner.Plan | None, model: DownloadResult,
                   artifact: PreparedArtifact, repo: ServingConfig, image: PublishedImage | None,
                   deployment: DeploymentResult | None, bench: BenchOutcome | None, out_root: Path,
                   quality: QualityVerdict | None = None) -> ReleaseReport:
    return ReleaseReport(
        release_id=spec.release_id,
        model=spec.model.label,
        model_commit=model.commit_sha,
        plan=plan.reasons[0] if plan else None,
        engine_key=artifact.manifest.key,
        engine_uri=artifact.manifest.uri,
        engine_cache_hit=artifact.cache_hit,
        backend=spec.serving.backend,
        backend_description=backend_for(spec.serving.backend).description,
        served_by=bench.served_by if bench else None,
        repository=repo.root,
        # What the deployment pulls: OCIR's reference with the pushed digest, whatever address the push went through.
        image=f"{serving_image_ref(spec)}@{image.digest}" if image else None,
        deployment_id=deployment.model_deployment_id if deployment else None,
        endpoint=deployment.url if deployment else None,
        benchmark=bench.headline if bench else None,
        quality=quality.event_payload() if quality else None,
        result_files={**(bench.files if bench else {}),
                      **({"quality": str(Path(out_root) / "quality.md")} if quality else {}),
                      "report": str(Path(out_root) / "report.md")},
    )
