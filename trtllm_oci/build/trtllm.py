"""Build TensorRT-LLM engines: the quantize/convert/build argv of a request, its cache key, and the run
(inside the very image that will serve it, which the version table links to the version) through the
engine cache, so the same inputs never build twice.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from trtllm_oci.build import commands
from trtllm_oci.build.engine_config import engine_summarizer
from trtllm_oci.build.host import BuildHost, detect_gpu_arch, resolve_image_digest
from trtllm_oci.build.runner import (
    BindMount,
    ContainerRunSpec,
    Step,
    run_steps_in_container,
    run_steps_locally,
)
from trtllm_oci.build_options import BuildRequest
from trtllm_oci.cache.build_once import build_once
from trtllm_oci.cache.key import EngineCacheKey, cache_key
from trtllm_oci.cache.manifest import EngineManifest, EngineStore
from trtllm_oci.errors import CapacityError, InputError
from trtllm_oci.hub.snapshot import DownloadResult
from trtllm_oci.planner import Plan
from trtllm_oci.versions import get_version

LogFn = Callable[[str], None]

CONTAINER_MODEL_DIR = "/model"
CONTAINER_WORK_DIR = "/work"
CONTAINER_TRTLLM_SRC = "/opt/tensorrt_llm"


class BuildRefusedError(CapacityError):
    """The planner says the engine will not fit; building would waste GPU hours before failing."""


def plan_steps(request: BuildRequest, family: str, workers: int = 1) -> list[commands.BuildStep]:
    """The quantize/convert/build argv for this request, with the container's fixed paths."""
    limits = request.limits
    return commands.plan_build_steps(
        family,
        CONTAINER_MODEL_DIR,
        CONTAINER_WORK_DIR,
        request.quantization.method.value,
        request.quantization.kv_cache_dtype.value,
        request.parallelism.tp,
        request.parallelism.pp,
        commands.BuildLimits(max_batch_size=limits.max_batch_size, max_input_len=limits.max_input_len,
                             max_seq_len=limits.max_seq_len, max_num_tokens=limits.max_num_tokens),
        version=request.trtllm_version,
        calib_size=request.quantization.calib_size,
        workers=workers,
        trtllm_src_dir=CONTAINER_TRTLLM_SRC,
    )


def cache_inputs(request: BuildRequest, steps: list[commands.BuildStep], image_digest: str,
                 gpu_arch: str) -> EngineCacheKey:
    """The cache key's inputs. The argv of every step carries all limits and flags, with fixed paths."""
    return EngineCacheKey(
        model_commit_sha=request.model_commit_sha,
        quantization=request.quantization.method.value,
        kv_cache_dtype=request.quantization.kv_cache_dtype.value,
        tp=request.parallelism.tp,
        pp=request.parallelism.pp,
        build_options={
            "limits": request.limits.model_dump(),
            "steps": [{"name": s.name, "argv": list(s.argv)} for s in steps],
        },
        trtllm_version=request.trtllm_version,
        image_digest=image_digest,
        gpu_arch=gpu_arch,
    )


def refuse_if_it_will_not_fit(plan: Plan | None, alternatives: str | None, force: bool) -> None:
    if plan is None or plan.fits or force:
        return
    lines = [f"refusing to build: the capacity planner says {plan.quantization.value} tp={plan.tp} pp={plan.pp} "
             f"does not fit {plan.shape}:"]
    lines += [f"  - {r}" for r in plan.reasons]
    if alternatives:
        lines.append(alternatives)
    lines.append("Change the release accordingly, or force the build if you know better (force=True / --force).")
    raise BuildRefusedError("\n".join(lines))


def build_trtllm_engine(
    request: BuildRequest,
    model: DownloadResult,
    family: str,
    store: EngineStore,
    host: BuildHost,
    log: LogFn,
    oom_advice: Callable[[], str] | None = None,
) -> tuple[EngineManifest, bool]:
    """Build (or reuse) the TensorRT-LLM engines of a request; returns (manifest, cache_hit).

    `host.trtllm_src_dir` must be set for a build in a container (the release layer fills it from settings)."""
    version = get_version(request.trtllm_version)
    steps = plan_steps(request, family, host.workers)
    gpu_arch = host.gpu_arch or detect_gpu_arch()
    if gpu_arch is None:
        raise InputError(
            "no NVIDIA GPU found (nvidia-smi) to build for; run the build on a GPU host, or pass --gpu-arch "
            "(build_host.gpu_arch in a flow), e.g. sm90, when the build runs on a remote Docker engine"
        )
    digest = host.image_digest or resolve_image_digest(version.serving_image, host.docker_host)
    inputs = cache_inputs(request, steps, digest, gpu_arch)
    log(f"engine cache key {cache_key(inputs)} ({version.serving_image}@{digest[:19]}, {gpu_arch})")

    def build(build_dir: Path) -> Path:
        run_steps = [Step(name=s.name, argv=list(s.argv)) for s in steps]
        if host.runner == "local":
            local = [Step(name=s.name, argv=_host_paths(s.argv, model.local_dir, build_dir, host.trtllm_src_dir))
                     for s in run_steps]
            run_steps_locally(local, env=None, cwd=build_dir, log=log, oom_advice=oom_advice)
        else:
            run_steps_in_container(run_steps, _container_spec(version.serving_image, model, build_dir, host), host.docker_host,
                                   log, oom_advice=oom_advice)
        return build_dir / commands.ENGINE_SUBDIR

    return build_once(inputs, store, build, engine_summarizer(request.trtllm_version))


def _container_spec(image: str, model: DownloadResult, build_dir: Path, host: BuildHost) -> ContainerRunSpec:
    src = host.trtllm_src_dir
    if not src:
        raise InputError(
            "the TensorRT-LLM examples scripts are not in the serving image: pass --trtllm-src (build_host."
            "trtllm_src_dir in a flow) or set TRTLLM_OCI_TRTLLM_SRC to a checkout of TensorRT-LLM at this version's "
            "source tag"
        )
    mounts = [
        BindMount(source=Path(model.local_dir).resolve(), target=CONTAINER_MODEL_DIR, read_only=True),
        BindMount(source=build_dir.resolve(), target=CONTAINER_WORK_DIR),
        BindMount(source=Path(src).resolve(), target=CONTAINER_TRTLLM_SRC, read_only=True),
    ]
    return ContainerRunSpec(image=image, gpus=host.gpus, mounts=mounts, user=host.user, workdir=CONTAINER_WORK_DIR)


def _host_paths(argv: list[str], model_dir: Path, build_dir: Path, src: Path | None) -> list[str]:
    mapping = {CONTAINER_MODEL_DIR: str(model_dir), CONTAINER_WORK_DIR: str(build_dir)}
    if src:
        mapping[CONTAINER_TRTLLM_SRC] = str(src)
    out = []
    for arg in argv:
        for container, host_path in mapping.items():
            if arg == container or arg.startswith(container + "/"):
                arg = host_path + arg[len(container):]
                break
        out.append(arg)
    return out
