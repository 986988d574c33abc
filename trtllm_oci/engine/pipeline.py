"""The engine stage as plain functions: plan the steps, key the cache, build once, verify.

A build is refused when the capacity planner says it will not fit (unless forced), runs inside the very
image that will serve it (the version table links the two), and is published to the engine cache so the
same inputs never build twice. The CPU reference backend goes through the same cache with its own
artifact: the Hugging Face checkpoint and an engine-style config.json, labelled as not TensorRT-LLM.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from importlib import metadata, resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from trtllm_oci.engine import commands
from trtllm_oci.engine.cache import (
    CPU_REFERENCE_ARCH,
    REFERENCE_CONFIG_NAME,
    REFERENCE_MARKER,
    UNRESOLVED_DIGEST_PREFIX,
    EngineCacheKey,
    EngineManifest,
    EngineStore,
    build_once,
    cache_key,
)
from trtllm_oci.engine.download import DownloadResult
from trtllm_oci.engine.precision import check_precision_on_gpu, parse_gpu_arch, resolve_dtype
from trtllm_oci.engine.runner import (
    BindMount,
    ContainerRunSpec,
    Step,
    run_steps_in_container,
    run_steps_locally,
)
from trtllm_oci.engine.versions import TrtllmVersion, get_version
from trtllm_oci.errors import TrtllmOciError
from trtllm_oci.planner import Plan
from trtllm_oci.spec import ReleaseSpec

LogFn = Callable[[str], None]

CONTAINER_MODEL_DIR = "/model"
CONTAINER_WORK_DIR = "/work"
CONTAINER_TRTLLM_SRC = "/opt/tensorrt_llm"
CONTAINER_CALIB_ROOT = "/calib"
CONTAINER_HF_HOME = "/hf_home"


class BuildRefusedError(TrtllmOciError):
    """The planner says the engine will not fit; building would waste GPU hours before failing."""


class BuildHost(BaseModel):
    """Where engine builds run. Not part of a release: the same release builds on any suitable GPU host."""

    model_config = ConfigDict(extra="forbid")

    runner: Literal["docker", "local"] = Field(
        default="docker", description="docker: steps run in the version's TRT-LLM image; local: tensorrt_llm on this host"
    )
    docker_host: str | None = Field(default=None, description="DOCKER_HOST-style URL; default: the environment's")
    gpus: Literal["all"] | list[str] = Field(default="all", description="'all' or device ids, e.g. ['0','1']")
    trtllm_src_dir: Path | None = Field(
        default=None,
        description="TensorRT-LLM checkout at the version's source tag (its examples/ scripts); "
        "default $TRTLLM_OCI_TRTLLM_SRC, else the version's verified source archive or release image",
    )
    gpu_arch: str | None = Field(default=None, description="e.g. sm90; detected with nvidia-smi when omitted")
    image_digest: str | None = Field(default=None, description="sha256:...; read from the Docker engine when omitted")
    user: str | None = Field(default=None, description="uid:gid for the build container (default: the image's)")
    workers: int = Field(default=1, ge=1, description="trtllm-build --workers (parallel rank builds)")
    hf_home: Path | None = Field(
        default=None,
        description="Hugging Face cache on the build host, mounted as the container's HF_HOME with the Hub "
        "offline, so calibration reads cnn_dailymail from it instead of downloading it",
    )

    def source_dir(self) -> str | None:
        src = self.trtllm_src_dir or os.environ.get("TRTLLM_OCI_TRTLLM_SRC")
        return str(src) if src else None


def _command_limits(spec: ReleaseSpec) -> commands.BuildLimits:
    b = spec.build
    return commands.BuildLimits(
        max_batch_size=b.max_batch_size,
        max_input_len=b.max_input_len,
        max_seq_len=b.max_seq_len,
        max_num_tokens=b.max_num_tokens,
    )


def engine_dtype(spec: ReleaseSpec, checkpoint_dtype: str | None) -> str:
    """The concrete dtype the steps take: quantization.dtype, with auto resolved from the checkpoint."""
    return resolve_dtype(spec.quantization.dtype, checkpoint_dtype)


def container_calib_path(spec: ReleaseSpec) -> str | None:
    """Where the calibration set is mounted in the build container (None: quantize.py's own default)."""
    calib = spec.quantization.calib_dataset
    return None if calib is None else f"{CONTAINER_CALIB_ROOT}/{calib.mount_name}"


def plan_steps(
    spec: ReleaseSpec, family: str, workers: int = 1, *, checkpoint_dtype: str | None
) -> list[commands.BuildStep]:
    """The quantize/convert/build argv for this release, with the container's fixed paths.
    `checkpoint_dtype` is the HF config's torch_dtype (ModelFacts.torch_dtype), which dtype=auto follows."""
    return commands.plan_build_steps(
        family,
        CONTAINER_MODEL_DIR,
        CONTAINER_WORK_DIR,
        spec.quantization.method.value,
        spec.quantization.kv_cache_dtype.value,
        spec.parallelism.tp,
        spec.parallelism.pp,
        _command_limits(spec),
        version=spec.trtllm_version,
        dtype=engine_dtype(spec, checkpoint_dtype),
        calib_size=spec.quantization.calib_size,
        calib_dataset=container_calib_path(spec),
        workers=workers,
        trtllm_src_dir=CONTAINER_TRTLLM_SRC,
    )


def cache_inputs(
    spec: ReleaseSpec, model_commit_sha: str, steps: list[commands.BuildStep], image_digest: str, gpu_arch: str
) -> EngineCacheKey:
    """The cache key's inputs. The argv of every step carries all limits and flags, with fixed paths."""
    return EngineCacheKey(
        model_commit_sha=model_commit_sha,
        quantization=spec.quantization.method.value,
        kv_cache_dtype=spec.quantization.kv_cache_dtype.value,
        tp=spec.parallelism.tp,
        pp=spec.parallelism.pp,
        build_options={
            "limits": spec.build.model_dump(),
            "steps": [{"name": s.name, "argv": list(s.argv)} for s in steps],
        },
        trtllm_version=spec.trtllm_version,
        image_digest=image_digest,
        gpu_arch=gpu_arch,
    )


def detect_gpu_arch() -> str | None:
    """sm<major><minor> of GPU 0 from nvidia-smi, or None on a machine without NVIDIA GPUs."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "--query-gpu=compute_cap", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=30, check=True).stdout.split()
    except (subprocess.SubprocessError, OSError):
        return None
    return f"sm{out[0].replace('.', '')}" if out else None


def unresolved_digest(image: str) -> str:
    """A labelled stand-in for a digest in dry runs without the image; a real build never keys on it."""
    return UNRESOLVED_DIGEST_PREFIX + image


def resolve_image_digest(image: str, docker_host: str | None, pull: bool = True) -> str:
    """The content digest of the local copy of `image` (pulling it first if absent and `pull`)."""
    import docker
    from docker.errors import DockerException, ImageNotFound

    try:
        client = docker.DockerClient(base_url=docker_host) if docker_host else docker.from_env()
    except DockerException as exc:
        raise TrtllmOciError(
            f"cannot reach the Docker engine to resolve the digest of {image} ({exc}); start Docker, set "
            f"DOCKER_HOST, or pass the digest as build_host.image_digest"
        ) from None
    try:
        try:
            found = client.images.get(image)
        except ImageNotFound:
            if not pull:
                raise TrtllmOciError(f"{image} is not on the Docker engine; pull it or pass its digest") from None
            found = client.images.pull(image)
        repo_digests = found.attrs.get("RepoDigests") or []
        return repo_digests[0].split("@", 1)[1] if repo_digests else found.id
    finally:
        client.close()


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
    spec: ReleaseSpec,
    model: DownloadResult,
    family: str,
    store: EngineStore,
    host: BuildHost,
    log: LogFn,
    oom_advice: Callable[[], str] | None = None,
    calibration_dir: Path | None = None,
) -> tuple[EngineManifest, bool]:
    """Build (or reuse) the TensorRT-LLM engines of a release; returns (manifest, cache_hit).

    `calibration_dir`: the calibration set on the build host (spec.quantization.calib_dataset's local_dir,
    or where the download stage put its hf_dataset); required when the spec names one.
    """
    version = get_version(spec.trtllm_version)
    checkpoint_dtype = _checkpoint_dtype(Path(model.local_dir))
    steps = plan_steps(spec, family, host.workers, checkpoint_dtype=checkpoint_dtype)
    gpu_arch = host.gpu_arch or detect_gpu_arch()
    if gpu_arch is None:
        raise TrtllmOciError(
            "no NVIDIA GPU found (nvidia-smi) to build for; run the build on a GPU host, or set "
            "build_host.gpu_arch (e.g. sm90) when the build runs on a remote Docker engine"
        )
    check_precision_on_gpu(
        engine_dtype(spec, checkpoint_dtype),
        fp8_weights=spec.quantization.method.needs_fp8_hardware,
        kv_cache_dtype=spec.quantization.kv_cache_dtype.value,
        compute_capability=parse_gpu_arch(gpu_arch),
        gpu_label=f"the build GPU ({gpu_arch})",
    )
    calibration_dir = _checked_calibration_dir(spec, calibration_dir)
    if not host.source_dir():
        host = host.model_copy(update={"trtllm_src_dir": examples_checkout(version, host, store_root=None, log=log)})
    digest = host.image_digest or resolve_image_digest(version.serving_image, host.docker_host)
    inputs = cache_inputs(spec, model.commit_sha, steps, digest, gpu_arch)
    log(f"engine cache key {cache_key(inputs)} ({spec.release_id}, {version.serving_image}@{digest[:19]}, {gpu_arch})")

    def build(build_dir: Path) -> Path:
        run_steps = [Step(name=s.name, argv=list(s.argv)) for s in steps]
        if host.runner == "local":
            local = [Step(name=s.name, argv=_host_paths(s.argv, model.local_dir, build_dir, host.source_dir(),
                                                        spec, calibration_dir))
                     for s in run_steps]
            run_steps_locally(local, env=_hf_env(host.hf_home), cwd=build_dir, log=log, oom_advice=oom_advice)
        else:
            container = _container_spec(version.serving_image, model, build_dir, host, spec, calibration_dir)
            run_steps_in_container(run_steps, container, host.docker_host, log, oom_advice=oom_advice)
        return build_dir / commands.ENGINE_SUBDIR

    return build_once(inputs, store, build)


def examples_checkout(version: TrtllmVersion, host: BuildHost, store_root: Path | None, log: LogFn) -> Path:
    """The version's examples/ without a manual checkout: its verified source archive (cached under the
    trtllm-oci cache) or its release image's examples/ (trtllm_sources.resolve_examples_checkout)."""
    from trtllm_oci.engine.cache import default_cache_root
    from trtllm_oci.engine.trtllm_sources import resolve_examples_checkout

    def docker_client() -> Any:
        import docker

        return docker.DockerClient(base_url=host.docker_host) if host.docker_host else docker.from_env()

    return resolve_examples_checkout(
        version.version,
        explicit=host.source_dir(),
        archive=version.source_archive,
        release_image=version.release_image,
        serving_tensorrt=version.tensorrt_version,
        cache_root=store_root or default_cache_root().parent,
        docker_client=docker_client,
        log=log,
    )


def _checkpoint_dtype(model_dir: Path) -> str | None:
    from trtllm_oci.model_facts import load_model_facts

    return load_model_facts(model_dir).torch_dtype


def _checked_calibration_dir(spec: ReleaseSpec, calibration_dir: Path | None) -> Path | None:
    calib = spec.quantization.calib_dataset
    if calib is None:
        return None
    path = calibration_dir if calibration_dir is not None else calib.local_dir
    if path is None:
        raise TrtllmOciError(
            f"quantization.calib_dataset names the Hub dataset {calib.hf_dataset}@{calib.revision}, but no "
            "downloaded copy was passed to the build (calibration_dir); the download stage fetches it before "
            "the build, so the GPU host never downloads at build time"
        )
    if not Path(path).is_dir():
        raise TrtllmOciError(
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


def _container_spec(
    image: str,
    model: DownloadResult,
    build_dir: Path,
    host: BuildHost,
    spec: ReleaseSpec | None = None,
    calibration_dir: Path | None = None,
) -> ContainerRunSpec:
    src = host.source_dir()
    if not src:
        raise TrtllmOciError(
            "the TensorRT-LLM examples scripts are not in the serving image: set build_host.trtllm_src_dir or "
            "TRTLLM_OCI_TRTLLM_SRC to a checkout of TensorRT-LLM at this version's source tag"
        )
    mounts = [
        BindMount(source=Path(model.local_dir).resolve(), target=CONTAINER_MODEL_DIR, read_only=True),
        BindMount(source=build_dir.resolve(), target=CONTAINER_WORK_DIR),
        BindMount(source=Path(src).resolve(), target=CONTAINER_TRTLLM_SRC, read_only=True),
    ]
    calib_path = container_calib_path(spec) if spec is not None else None
    if calib_path is not None and calibration_dir is not None:
        mounts.append(BindMount(source=calibration_dir, target=calib_path, read_only=True))
    if host.hf_home is not None:
        # Read-write: datasets takes lock files in its cache even when it only reads.
        mounts.append(BindMount(source=Path(host.hf_home).resolve(), target=CONTAINER_HF_HOME))
    return ContainerRunSpec(image=image, gpus=host.gpus, mounts=mounts, user=host.user, workdir=CONTAINER_WORK_DIR,
                            environment=_hf_env(host.hf_home, CONTAINER_HF_HOME))


def _host_paths(
    argv: list[str],
    model_dir: Path,
    build_dir: Path,
    src: str | None,
    spec: ReleaseSpec | None = None,
    calibration_dir: Path | None = None,
) -> list[str]:
    mapping = {CONTAINER_MODEL_DIR: str(model_dir), CONTAINER_WORK_DIR: str(build_dir)}
    if src:
        mapping[CONTAINER_TRTLLM_SRC] = str(src)
    calib_path = container_calib_path(spec) if spec is not None else None
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


def reference_runtime_digest() -> str:
    """Stands in for the image digest of the CPU reference backend: its model code and the libraries it runs on."""
    h = hashlib.sha256()
    from trtllm_oci.repo.assemble import python_model_files

    reference_model = Path(str(resources.files("trtllm_oci.serving").joinpath("models/tensorrt_llm_reference/model.py")))
    for module in python_model_files(reference_model):
        h.update(module.name.encode() + b"\0" + module.read_bytes())
    for dist in ("torch", "transformers", "tokenizers"):
        try:
            h.update(f"{dist}={metadata.version(dist)}\n".encode())
        except metadata.PackageNotFoundError:
            h.update(f"{dist}=absent\n".encode())
    return "sha256:" + h.hexdigest()


def build_reference_engine(spec: ReleaseSpec, model: DownloadResult, store: EngineStore, log: LogFn) -> tuple[EngineManifest, bool]:
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
        build_options={"backend": "reference", "limits": spec.build.model_dump()},
        trtllm_version=spec.trtllm_version,
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
            "version": spec.trtllm_version,
            REFERENCE_MARKER: {
                "note": "CPU reference backend artifact: a Hugging Face checkpoint served with PyTorch, not a TensorRT-LLM engine",
                "files": files,
            },
            "pretrained_config": {
                "architecture": (hf_config.get("architectures") or ["?"])[0],
                "dtype": hf_config.get("torch_dtype", "float32"),
                "mapping": {"world_size": 1, "tp_size": 1, "pp_size": 1},
            },
            "build_config": spec.build.model_dump(),
        }
        # The HF config.json keeps its name: transformers loads it. The engine-style config goes beside it.
        (build_dir / REFERENCE_CONFIG_NAME).write_text(json.dumps(engine_config, indent=2))
        return build_dir

    return build_once(inputs, store, build)
