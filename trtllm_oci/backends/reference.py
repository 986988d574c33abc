"""The CPU reference backend (NOT TensorRT-LLM): the Hugging Face checkpoint served with PyTorch by a
Python-backend model that has exactly the `tensorrt_llm` tensor interface, so the whole pipeline (cache,
repository, Triton, benchmark) runs on machines without NVIDIA GPUs. A smoke path, labelled as such.

Its artifact goes through the engine cache like a real engine: the checkpoint plus an engine-style
`engine_config.json` that marks it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from importlib import metadata, resources
from pathlib import Path

from trtllm_oci.backends.base import (
    BuildContext,
    PreparedArtifact,
    ServingBackend,
    ServingConfig,
    triton_serving_config,
)
from trtllm_oci.build_options import BuildRequest
from trtllm_oci.cache.build_once import build_once
from trtllm_oci.cache.key import CPU_REFERENCE_ARCH, EngineCacheKey, cache_key
from trtllm_oci.cache.manifest import ArtifactSummary, EngineManifest, EngineStore, EngineValidationError
from trtllm_oci.hub.snapshot import DownloadResult
from trtllm_oci.repo.assemble import RepoOptions, assemble_repository, python_model_files

REFERENCE_CONFIG_NAME = "engine_config.json"
REFERENCE_MARKER = "trtllm_oci_cpu_reference"


class ReferenceBackend(ServingBackend):
    name = "reference"
    description = "CPU reference backend (PyTorch on CPU with the tensorrt_llm interface; a smoke test, not TensorRT-LLM)"
    uses_gpu = False

    def skipped_stages(self, request: BuildRequest) -> dict[str, str]:
        return {"quantize": "CPU reference backend: serves the Hugging Face checkpoint with PyTorch, no TensorRT-LLM"}

    def prepare_artifact(self, request: BuildRequest, model: DownloadResult, store: EngineStore,
                         context: BuildContext) -> PreparedArtifact:
        manifest, hit = build_reference_engine(request, model, store, context.log)
        return PreparedArtifact(manifest=manifest, cache_hit=hit)

    def write_serving_config(self, artifact_dir: Path, model: DownloadResult, out_dir: Path,
                             options: RepoOptions) -> ServingConfig:
        repo = assemble_repository(None, artifact_dir, out_dir, options, hf_model_dir=artifact_dir, overwrite=True)
        return triton_serving_config(repo, self.name, options.include_bls)


def summarize_reference_dir(artifact_dir: Path) -> ArtifactSummary:
    """The engine cache's summary of a reference artifact: its own file list plus the marker config."""
    reference = artifact_dir / REFERENCE_CONFIG_NAME
    try:
        config = json.loads(reference.read_text())
    except (OSError, ValueError) as exc:
        raise EngineValidationError(f"{reference} is missing or not valid JSON ({exc}); the build did not finish.") from None
    marker = config.get(REFERENCE_MARKER)
    if not isinstance(marker, dict) or not marker.get("files"):
        raise EngineValidationError(f"{reference} lacks the {REFERENCE_MARKER} block listing the artifact's files.")
    mapping = config.get("pretrained_config", {}).get("mapping", {})
    build = config.get("build_config", {})
    return ArtifactSummary(
        backend="reference", version=config.get("version"), world_size=int(mapping.get("world_size", 1)),
        tp_size=int(mapping.get("tp_size", 1)), pp_size=int(mapping.get("pp_size", 1)),
        **{k: build.get(k) for k in ("max_batch_size", "max_input_len", "max_seq_len", "max_num_tokens")},
        required_files=sorted(marker["files"]) + [REFERENCE_CONFIG_NAME],
    )


def reference_runtime_digest() -> str:
    """Stands in for the image digest of the CPU reference backend: its model code and the libraries it runs on."""
    h = hashlib.sha256()

    reference_model = Path(str(resources.files("trtllm_oci.serving").joinpath("models/tensorrt_llm_reference/model.py")))
    for module in python_model_files(reference_model):
        h.update(module.name.encode() + b"\0" + module.read_bytes())
    for dist in ("torch", "transformers", "tokenizers"):
        try:
            h.update(f"{dist}={metadata.version(dist)}\n".encode())
        except metadata.PackageNotFoundError:
            h.update(f"{dist}=absent\n".encode())
    return "sha256:" + h.hexdigest()


def build_reference_engine(request: BuildRequest, model: DownloadResult, store: EngineStore,
                           log: Callable[[str], None]) -> tuple[EngineManifest, bool]:
    """The CPU reference backend's artifact (NOT TensorRT-LLM): the HF checkpoint plus an engine-style config.json.

    It goes through the engine cache like a real engine, so the pipeline's caching, verification and
    repository assembly are exercised end to end on machines without NVIDIA GPUs.
    """
    inputs = EngineCacheKey(
        model_commit_sha=model.commit_sha,
        quantization="none",
        kv_cache_dtype="auto",
        tp=1,
        pp=1,
        build_options={"backend": "reference", "limits": request.limits.model_dump()},
        trtllm_version=request.trtllm_version,
        image_digest=reference_runtime_digest(),
        gpu_arch=CPU_REFERENCE_ARCH,
    )
    log(f"engine cache key {cache_key(inputs)} (CPU reference backend, not TensorRT-LLM)")

    def build(build_dir: Path) -> Path:
        files = [f.path for f in model.files]
        for name in files:
            src, dst = Path(model.local_dir) / name, build_dir / name
            dst.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(src, dst)
            except OSError:  # another filesystem: these are small checkpoints (the reference backend is CPU-only)
                shutil.copy2(src, dst)
        hf_config = json.loads((Path(model.local_dir) / "config.json").read_text())
        engine_config = {
            "version": request.trtllm_version,
            REFERENCE_MARKER: {
                "note": "CPU reference backend artifact: a Hugging Face checkpoint served with PyTorch, not a TensorRT-LLM engine",
                "files": files,
            },
            "pretrained_config": {
                "architecture": (hf_config.get("architectures") or ["?"])[0],
                "dtype": hf_config.get("torch_dtype", "float32"),
                "mapping": {"world_size": 1, "tp_size": 1, "pp_size": 1},
            },
            "build_config": request.limits.model_dump(),
        }
        # The HF config.json keeps its name: transformers loads it. The engine-style config goes beside it.
        (build_dir / REFERENCE_CONFIG_NAME).write_text(json.dumps(engine_config, indent=2))
        return build_dir

    return build_once(inputs, store, build, summarize_reference_dir)
