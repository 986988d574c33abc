"""The artifact stage of a release: what its backend prepares (engines, the reference checkpoint), through
the engine cache, refused before any GPU time when the planner says it will not fit. The `build_engine`
flow and `trtllm-oci build` both come here."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from trtllm_oci import planner
from trtllm_oci.backends import backend_for
from trtllm_oci.backends.base import BuildContext, PreparedArtifact
from trtllm_oci.build.host import (
    BuildHost,
    build_host_arch,
    detect_gpu_arch,
    resolve_image_digest,
    unresolved_digest,
)
from trtllm_oci.build.precision import check_precision_on_gpu, parse_gpu_arch
from trtllm_oci.build.trtllm import cache_inputs, engine_dtype, plan_steps, refuse_if_it_will_not_fit
from trtllm_oci.build_options import BuildRequest
from trtllm_oci.cache.key import cache_key
from trtllm_oci.errors import TrtllmOciError
from trtllm_oci.hub.snapshot import DownloadResult
from trtllm_oci.model_facts import ModelFacts
from trtllm_oci.release.cache import open_engine_store
from trtllm_oci.release.plan import oom_advice
from trtllm_oci.settings import Settings
from trtllm_oci.spec import ReleaseSpec
from trtllm_oci.versions import get_version


def build_request(spec: ReleaseSpec, model_commit_sha: str) -> BuildRequest:
    calib = spec.quantization.calib_dataset
    shape = spec.shape
    return BuildRequest(model_commit_sha=model_commit_sha, trtllm_version=spec.trtllm_version,
                        quantization=spec.quantization, parallelism=spec.parallelism, limits=spec.build,
                        calibration_dir=calib.local_dir if calib is not None else None,
                        host_arch=shape.host_arch if shape is not None else None)


def skipped_stages(spec: ReleaseSpec) -> dict[str, str]:
    """Stages that do not apply to this release's backend, with the reason the UI shows."""
    return backend_for(spec.serving.backend).skipped_stages(build_request(spec, "-"))


def build_host_for(host: BuildHost | None, settings: Settings) -> BuildHost:
    """The build host with the TensorRT-LLM checkout from $TRTLLM_OCI_TRTLLM_SRC when the host names none."""
    host = host or BuildHost()
    if host.trtllm_src_dir is None and settings.trtllm_src is not None:
        host = host.model_copy(update={"trtllm_src_dir": settings.trtllm_src})
    return host


def prepare_artifact(
    spec: ReleaseSpec,
    model: DownloadResult,
    facts: ModelFacts,
    plan: planner.Plan | None,
    settings: Settings,
    log: Callable[[str], None],
    host: BuildHost | None = None,
    force: bool = False,
) -> PreparedArtifact:
    """Build (or reuse) the release's artifact; a build the planner says will not fit is refused unless forced."""
    backend = backend_for(spec.serving.backend)
    if plan is not None and not plan.fits and backend.uses_gpu and spec.shape is not None:
        refuse_if_it_will_not_fit(plan, planner.alternatives_text(facts, spec.shape, spec.build), force)
    store = open_engine_store(spec.engine_cache, settings)
    context = BuildContext(host=build_host_for(host, settings), model_family=facts.family, log=log,
                           oom_advice=lambda: oom_advice(spec, facts), sources_root=settings.home)
    return backend.prepare_artifact(build_request(spec, model.commit_sha), model, store, context)


def dry_run_build(spec: ReleaseSpec, facts: ModelFacts, model_commit: tuple[str, str], host: BuildHost,
                  gpu_arch: str | None, checkpoint_dir: Path | None = None) -> dict[str, Any]:
    """The steps and cache key a build would use, without running anything (`trtllm-oci build --dry-run`).

    Without a Docker engine that holds the serving image the key uses the image tag and says so."""
    if spec.serving.backend == "pytorch":
        return _dry_run_checkpoint(spec, model_commit, checkpoint_dir)
    version = get_version(spec.trtllm_version)
    request = build_request(spec, model_commit[0])
    steps = plan_steps(request, facts.family, host.workers, checkpoint_dtype=facts.torch_dtype)
    dtype = engine_dtype(request, facts.torch_dtype)
    given_arch = gpu_arch
    gpu_arch = gpu_arch or (spec.shape.gpu.arch if spec.shape else None) or detect_gpu_arch()
    if gpu_arch is not None:
        check_precision_on_gpu(dtype, fp8_weights=spec.quantization.method.needs_fp8_hardware,
                               kv_cache_dtype=spec.quantization.kv_cache_dtype.value,
                               compute_capability=parse_gpu_arch(gpu_arch),
                               gpu_label=spec.shape.gpu.name if spec.shape and not given_arch else gpu_arch)
    digest, basis = host.image_digest, "image digest"
    if digest is None:
        try:
            digest = resolve_image_digest(version.serving_image, host.docker_host, pull=False)
        except TrtllmOciError:
            digest, basis = None, "image tag (digest unresolved: no Docker engine holds the image)"
    key = None
    if gpu_arch is not None:
        key = cache_key(cache_inputs(request, steps, digest or unresolved_digest(version.serving_image), gpu_arch,
                                     request.host_arch or build_host_arch(host)))
    return {
        "cache_key": key,
        "cache_key_basis": basis if key else "not computed: pass --shape or --gpu-arch (no GPU on this machine)",
        "model_commit": model_commit[0],
        "model_commit_basis": model_commit[1],
        "gpu_arch": gpu_arch,
        "image": version.serving_image,
        "image_digest": digest,
        "trtllm_version": spec.trtllm_version,
        "dtype": dtype,
        "dtype_basis": "given" if spec.quantization.dtype != "auto" else f"auto from the checkpoint's torch_dtype "
                                                                          f"{facts.torch_dtype}",
        "steps": [{"name": s.name, "argv": list(s.argv)} for s in steps],
    }


def _dry_run_checkpoint(spec: ReleaseSpec, model_commit: tuple[str, str], checkpoint_dir: Path | None) -> dict[str, Any]:
    """What the pytorch backend would prepare: the checkpoint as it is (and its recognised quantization), or
    the ModelOpt quantize step the release image would run."""
    from trtllm_oci.backends.pytorch import checkpoint_cache_inputs, ptq_kv_cache, ptq_method
    from trtllm_oci.checkpoint.quant_config import read_checkpoint_quantization

    version = get_version(spec.trtllm_version)
    assert version.pytorch is not None  # the spec refuses pytorch on a version without it
    request = build_request(spec, model_commit[0])
    existing = read_checkpoint_quantization(checkpoint_dir, spec.trtllm_version) if checkpoint_dir else None
    out: dict[str, Any] = {
        "backend": "pytorch",
        "model_commit": model_commit[0],
        "model_commit_basis": model_commit[1],
        "image": version.pytorch.release_image,
        "trtllm_version": spec.trtllm_version,
        "checkpoint_quantization": existing.model_dump(mode="json") if existing else None,
    }
    if spec.quantization.method.value == "none" and spec.quantization.kv_cache_dtype.value == "auto":
        key = cache_key(checkpoint_cache_inputs(request, existing)) if existing else None
        return {**out, "cache_key": key, "cache_key_basis": "model commit (checkpoint served as it is)" if key
                else "not computed: the checkpoint's quantization is read from its files at download",
                "steps": []}
    from trtllm_oci.checkpoint.modelopt_ptq import CalibrationDir, PtqRequest, container_job

    # The container sees fixed paths; the host paths here only shape the argv, nothing is read.
    job = container_job(PtqRequest(
        model_dir=checkpoint_dir or Path("model"), output_dir=Path("checkpoint"),
        method=ptq_method(spec.quantization.method), kv_cache=ptq_kv_cache(spec.quantization.kv_cache_dtype),
        calibration=CalibrationDir(path=Path("calibration")), calib_size=spec.quantization.calib_size))
    argv = job.argv
    return {**out, "cache_key": None,
            "cache_key_basis": "not computed: it covers the calibration samples and the release image digest, "
                               "known when the quantize step runs",
            "steps": [{"name": "quantize", "argv": argv}]}
