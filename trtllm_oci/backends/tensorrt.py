"""TensorRT-LLM engines (≤ 1.2.1) served by the Triton C++ backend behind the ensemble of the
tensorrtllm_backend model repository."""

from __future__ import annotations

from pathlib import Path

from trtllm_oci.backends.base import (
    BuildContext,
    PreparedArtifact,
    ServingBackend,
    ServingConfig,
    triton_serving_config,
)
from trtllm_oci.build.precision import check_precision_on_gpu
from trtllm_oci.build.trtllm import build_trtllm_engine, engine_dtype, plan_steps
from trtllm_oci.build_options import BuildRequest, Quantization
from trtllm_oci.cache.manifest import EngineStore
from trtllm_oci.errors import InputError
from trtllm_oci.hub.snapshot import DownloadResult
from trtllm_oci.model_facts import ModelFacts
from trtllm_oci.repo.assemble import RepoOptions, assemble_repository
from trtllm_oci.shapes import Gpu


class TensorRTEngineBackend(ServingBackend):
    name = "tensorrt"
    description = "TensorRT-LLM engines on Triton (inflight_batcher_llm)"

    def skipped_stages(self, request: BuildRequest) -> dict[str, str]:
        if request.quantization.method is Quantization.NONE:
            return {"quantize": "quantization.method is none"}
        return {}

    def request_problems(self, request: BuildRequest, facts: ModelFacts, serving_gpu: Gpu | None = None) -> list[str]:
        try:  # the version table's flags and supported combinations decide the argv
            plan_steps(request, facts.family, checkpoint_dtype=facts.torch_dtype)
            if serving_gpu is not None:
                check_precision_on_gpu(engine_dtype(request, facts.torch_dtype),
                                       fp8_weights=request.quantization.method.needs_fp8_hardware,
                                       kv_cache_dtype=request.quantization.kv_cache_dtype.value,
                                       compute_capability=serving_gpu.sm, gpu_label=serving_gpu.name)
        except InputError as exc:
            return [str(exc)]
        return []

    def prepare_artifact(self, request: BuildRequest, model: DownloadResult, store: EngineStore,
                         context: BuildContext) -> PreparedArtifact:
        manifest, hit = build_trtllm_engine(request, model, context.model_family, store, context.host, context.log,
                                            context.oom_advice, sources_root=context.sources_root)
        return PreparedArtifact(manifest=manifest, cache_hit=hit)

    def write_serving_config(self, artifact_dir: Path, model: DownloadResult, out_dir: Path,
                             options: RepoOptions) -> ServingConfig:
        repo = assemble_repository(artifact_dir, Path(model.local_dir), out_dir, options, overwrite=True)
        return triton_serving_config(repo, self.name, options.include_bls)
