"""Build TensorRT-LLM engines: the quantize/convert/build argv of a request, its cache key, and the run
(inside the very image that will serve it, which the version table links to the version) through the
engine cache, so the same inputs never build twice.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from trtllm_oci.build import commands
from trtllm_oci.build.engine_config import engine_summarizer
from trtllm_oci.build.host import build_host_arch, BuildHost, detect_gpu_arch, resolve_image_digest
from trtllm_oci.build.precision import check_precision_on_gpu, parse_gpu_arch, resolve_dtype
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
from trtllm_oci.model_facts import load_model_facts
from trtllm_oci.planner import Plan
from trtllm_oci.versions import TrtllmVersion, get_version

LogFn = Callable[[str], None]

CONTAINER_MODEL_DIR = "/model"
CONTAINER_WORK_DIR = "/work"
CONTAINER_TRTLLM_SRC = "/opt/tensorrt_llm"
CONTAINER_CALIB_ROOT = "/calib"
CONTAINER_HF_HOME = "/hf_home"


class BuildRefusedError(CapacityError):
    """The planner says the engine will not fit; building would waste GPU hours before failing."""


def engine_dtype(request: BuildRequest, checkpoint_dtype: str | None) -> str:
    """The concrete dtype the steps take: quantization.dtype, with auto resolved from the checkpoint."""
    return resolve_dtype(request.quantization.dtype, checkpoint_dtype)


def container_calib_path(request: BuildRequest) -> str | None:
    """Where the calibration set is mounted in the build container (None: quantize.py's own default)."""
    calib = request.quantization.calib_dataset
    return None if calib is None else f"{CONTAINER_CALIB_ROOT}/{calib.mount_name}"


def plan_steps(request: BuildRequest, family: str, workers: int = 1, *,
               checkpoint_dtype: str | None) -> list[commands.BuildStep]:
    """The quantize/convert/build argv for this request, with the container's fixed paths.
    `checkpoint_dtype` is the HF config's torch_dtype (ModelFacts.torch_dtype), which dtype=auto follows."""
    limits = request.limits
    return commands.plan_build_steps(commands.StepsRequest(
        family=family,
        quantization=request.quantization.method.value,
        kv_cache_dtype=request.quantization.kv_cache_dtype.value,
        tp=request.parallelism.tp,
        pp=request.parallelism.pp,
        limits=commands.BuildLimits(max_batch_size=limits.max_batch_size, max_input_len=limits.max_input_len,
                                    max_seq_len=limits.max_seq_len, max_num_tokens=limits.max_num_tokens),
        version=request.trtllm_version,
        dtype=engine_dtype(request, checkpoint_dtype),
        calib_size=request.quantization.calib_size,
        calib_dataset=container_calib_path(request),
        workers=workers,
        model_dir=CONTAINER_MODEL_DIR,
        work_dir=CONTAINER_WORK_DIR,
        trtllm_src_dir=CONTAINER_TRTLLM_SRC,
    ))


def cache_inputs(request: BuildRequest, steps: list[commands.BuildStep], image_digest: str,
                 gpu_arch: str, host_arch: str = "amd64") -> EngineCacheKey:
    """The cache key's inputs. The argv of every step carries all limits and flags, with fixed paths;
    `host_arch` is the CPU platform the engines are for (request.host_arch, else the build host's)."""
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
        host_arch=host_arch,
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
    sources_root: Path | None = None,
) -> tuple[EngineManifest, bool]:
    """Build (or reuse) the TensorRT-LLM engines of a request; returns (manifest, cache_hit).

    Without `host.trtllm_src_dir` (the release layer fills it from settings) the version's examples come from
    its verified source archive, cached under `sources_root`, or its release image.
    `request.calibration_dir` is the calibration set on the build host (calib_dataset's local_dir, or where the
    download stage put its hf_dataset); required when the request names one."""
    version = get_version(request.trtllm_version)
    checkpoint_dtype = load_model_facts(Path(model.local_dir)).torch_dtype
    steps = plan_steps(request, family, host.workers, checkpoint_dtype=checkpoint_dtype)
    gpu_arch = host.gpu_arch or detect_gpu_arch()
    if gpu_arch is None:
        raise InputError(
            "no NVIDIA GPU found (nvidia-smi) to build for; run the build on a GPU host, or pass --gpu-arch "
            "(build_host.gpu_arch in a flow), e.g. sm90, when the build runs on a remote Docker engine"
        )
    check_precision_on_gpu(
        engine_dtype(request, checkpoint_dtype),
        fp8_weights=request.quantization.method.needs_fp8_hardware,
        kv_cache_dtype=request.quantization.kv_cache_dtype.value,
        compute_capability=parse_gpu_arch(gpu_arch),
        gpu_label=f"the build GPU ({gpu_arch})",
    )
    calibration_dir = _checked_calibration_dir(request)
    digest = host.image_digest or resolve_image_digest(version.serving_image, host.docker_host)
    built_for = build_host_arch(host)
    inputs = cache_inputs(request, steps, digest, gpu_arch, request.host_arch or built_for)
    log(f"engine cache key {cache_key(inputs)} ({version.serving_image}@{digest[:19]}, {gpu_arch}, "
        f"{inputs.host_arch})")

    def build(build_dir: Path) -> Path:
        if inputs.host_arch != built_for:
            raise InputError(
                f"the engines are for an {inputs.host_arch} host (the target shape's), and this build host is "
                f"{built_for}: TensorRT engines are not portable across platforms (TensorRT support matrix, "
                f"'Engine Portability'). Build on an {inputs.host_arch} GPU host of the same GPU (build_host."
                "docker_host, or the GPU work pool's worker there); a cache hit from such a build is reused here")
        # Only a real build needs the examples/ scripts: a cache hit must not fetch a source archive or pull the
        # release image (the steps' argv, and so the key, name the container's fixed checkout path).
        built_on = host if host.trtllm_src_dir is not None else host.model_copy(
            update={"trtllm_src_dir": examples_checkout(version, host, sources_root, log)})
        run_steps = [Step(name=s.name, argv=list(s.argv)) for s in steps]
        if built_on.runner == "local":
            local = [Step(name=s.name, argv=_host_paths(s.argv, model.local_dir, build_dir, built_on.trtllm_src_dir,
                                                        request, calibration_dir))
                     for s in run_steps]
            run_steps_locally(local, env=_hf_env(built_on.hf_home), cwd=build_dir, log=log, oom_advice=oom_advice)
        else:
            container = _container_spec(version.serving_image, model, build_dir, built_on, request, calibration_dir)
            run_steps_in_container(run_steps, container, built_on.docker_host, log, oom_advice=oom_advice)
        return build_dir / commands.ENGINE_SUBDIR

    return build_once(inputs, store, build, engine_summarizer(request.trtllm_version))


def examples_checkout(version: TrtllmVersion, host: BuildHost, sources_root: Path | None, log: LogFn) -> Path:
    """The version's examples/ without a manual checkout: its verified source archive (cached under
    `sources_root`) or its release image's examples/ (trtllm_sources.resolve_examples_checkout)."""
    from trtllm_oci.build.trtllm_sources import resolve_examples_checkout

    def docker_client() -> Any:
        import docker

        return docker.DockerClient(base_url=host.docker_host) if host.docker_host else docker.from_env()

    if sources_root is None:
        raise InputError("no TensorRT-LLM checkout given and nowhere to cache its source archive; set "
                         "build_host.trtllm_src_dir or TRTLLM_OCI_TRTLLM_SRC")
    return resolve_examples_checkout(
        version.version,
        explicit=None,
        archive=version.source_archive,
        release_image=version.release_image,
        serving_tensorrt=version.tensorrt_version,
        cache_root=sources_root,
        docker_client=docker_client,
        log=log,
    )


def _checked_calibration_dir(request: BuildRequest) -> Path | None:
    calib = request.quantization.calib_dataset
    if calib is None:
        return None
    path = request.calibration_dir if request.calibration_dir is not None else calib.local_dir
    if path is None:
        raise InputError(
            f"quantization.calib_dataset names the Hub dataset {calib.hf_dataset}@{calib.revision}, but no "
            "downloaded copy was passed to the build (calibration_dir); the download stage fetches it before "
            "the build, so the GPU host never downloads at build time"
        )
    if not Path(path).is_dir():
        raise InputError(
            f"calibration dataset directory {path} does not exist; point quantization.calib_dataset.local_dir at "
            "a datasets-loadable directory (train split, 'text' column) on the build host"
        )
    return Path(path).resolve()


def _hf_env(hf_home: Path | str | None, container_path: str | None = None) -> dict[str, str]:
    """HF_HOME pointing at the mounted cache, with the Hub and datasets offline: a calibration set missing
    from the cache then fails at once with datasets' offline error instead of downloading or hanging."""
    if hf_home is None:
        return {}
    return {"HF_HOME": container_path or str(hf_home), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def _container_spec(image: str, model: DownloadResult, build_dir: Path, host: BuildHost,
                    request: BuildRequest | None = None, calibration_dir: Path | None = None) -> ContainerRunSpec:
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
    calib_path = container_calib_path(request) if request is not None else None
    if calib_path is not None and calibration_dir is not None:
        mounts.append(BindMount(source=calibration_dir, target=calib_path, read_only=True))
    if host.hf_home is not None:
        # Read-write: datasets takes lock files in its cache even when it only reads.
        mounts.append(BindMount(source=Path(host.hf_home).resolve(), target=CONTAINER_HF_HOME))
    return ContainerRunSpec(image=image, gpus=host.gpus, mounts=mounts, user=host.user, workdir=CONTAINER_WORK_DIR,
                            environment=_hf_env(host.hf_home, CONTAINER_HF_HOME))


def _host_paths(argv: list[str], model_dir: Path, build_dir: Path, src: Path | None,
                request: BuildRequest | None = None, calibration_dir: Path | None = None) -> list[str]:
    mapping = {CONTAINER_MODEL_DIR: str(model_dir), CONTAINER_WORK_DIR: str(build_dir)}
    if src:
        mapping[CONTAINER_TRTLLM_SRC] = str(src)
    calib_path = container_calib_path(request) if request is not None else None
    if calib_path is not None and calibration_dir is not None:
        mapping[calib_path] = str(calibration_dir)
    out = []
    for arg in argv:
        for container, host_path in mapping.items():
            if arg == container or arg.startswith(container + "/"):
                arg = host_path + arg[len(container):]
                break
        out.append(arg)
    return out
