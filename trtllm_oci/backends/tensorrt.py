"""TensorRT-LLM engines (≤ 1.2.1) served by the Triton C++ backend behind the ensemble of the
tensorrtllm_backend model repository."""

from __future__ import annotations

from pathlib import Path

from trtllm_oci.backends.base import BuildContext, PreparedArtifact, ServingBackend
from trtllm_oci.build.trtllm import build_trtllm_engine, plan_steps
from trtllm_oci.build_options import BuildRequest, Quantization
from trtllm_oci.cache.manifest import EngineStore
from trtllm_oci.errors import InputError
from trtllm_oci.hub.snapshot import DownloadResult
from trtllm_oci.repo.assemble import RepoManifest, RepoOptions, assemble_repository


class TensorRTEngineBackend(ServingBackend):
    name = "tensorrtllm"
    description = "TensorRT-LLM engines on Triton (inflight_batcher_llm)"

    def skipped_stages(self, request: BuildRequest) -> dict[str, str]:
        if request.quantization.method is Quantization.NONE:
            return {"quantize": "quantization.method is none"}
        return {}

    def request_problems(self, request: BuildRequest, model_family: str) -> list[str]:
        try:  # the version table's flags and supported combinations decide the argv
            plan_steps(request, model_family)
        except InputError as exc:
            return [str(exc)]
        return []

    def prepare_artifact(self, request: BuildRequest, model: DownloadResult, store: EngineStore,
                         context: BuildContext) -> PreparedArtifact:
        manifest, hit = build_trtllm_engine(request, model, context.model_family, store, context.host, context.log,
                                            context.oom_advice)
        return PreparedArtifact(manifest=manifest, cache_hit=hit)

    def write_serving_config(self, artifact_dir: Path, model: DownloadResult, out_dir: Path,
                             options: RepoOptions) -> RepoManifest:
        return assemble_repository(artifact_dir, Path(model.local_dir), out_dir, options, overwrite=True)
