"""TensorRT-LLM's PyTorch backend (the LLM API): the Hugging Face checkpoint itself is served, by
`trtllm-serve` (OpenAI-compatible) or by Triton's `llmapi` model; no engines.

The artifact is the checkpoint: taken as it is (a pre-quantized Hub checkpoint is recognised and served as
is), or quantized by ModelOpt post-training quantization and exported as a Hugging Face checkpoint. Either
way it goes through the artifact cache like engines do, keyed by what changes its bytes.

Serving configuration (`write_serving_config`), one directory:

    <root>/serving.json                 what serves it and what clients call
    <root>/<served name>/               the checkpoint (links); trtllm-serve 1.2.1 names the model after it
    <root>/llm_api_options.yaml         trtllm-serve's --extra_llm_api_options (openai frontend)
    <root>/model_repository/tensorrt_llm/{config.pbtxt,1/model.yaml}   Triton's llmapi model (triton frontend)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from importlib import metadata
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from trtllm_oci.backends.base import (
    BuildContext,
    Frontend,
    LaunchRequest,
    PreparedArtifact,
    ServingBackend,
    ServingConfig,
)
from trtllm_oci.build.host import detect_gpu_arch, resolve_image_digest
from trtllm_oci.build.runner import BindMount, ContainerRunSpec, Step, run_steps_in_container
from trtllm_oci.build_options import BuildRequest, KvCacheDtype, Quantization
from trtllm_oci.cache.build_once import build_once
from trtllm_oci.cache.key import ANY_GPU_ARCH, CPU_REFERENCE_ARCH, NO_IMAGE, EngineCacheKey, cache_key
from trtllm_oci.cache.manifest import ArtifactSummary, EngineStore, EngineValidationError
from trtllm_oci.checkpoint.modelopt_ptq import (
    MODELOPT_PIN,
    CalibrationDir,
    KvCacheQuant,
    PtqMethod,
    PtqRequest,
    QuantizedCheckpointKey,
    calibration_set_id,
    container_job,
    load_calibration_texts,
    run_ptq,
)
from trtllm_oci.checkpoint.quant_config import CheckpointQuantization, read_checkpoint_quantization
from trtllm_oci.cloud.artifact import SERVING_ROOT
from trtllm_oci.cloud.routes import ServingRoutes, openai_routes, triton_generate_routes
from trtllm_oci.errors import InputError
from trtllm_oci.files import staged_dir
from trtllm_oci.hub.snapshot import DownloadResult
from trtllm_oci.llm_api.options import LlmApiOptions
from trtllm_oci.llm_api.serve_command import serve_command
from trtllm_oci.llm_api.triton_repo import (
    MODEL_NAME,
    LlmapiRepoOptions,
    llmapi_serving_links,
    write_llmapi_repository,
)
from trtllm_oci.serving.launch import deploy_cmd, linked_cmd
from trtllm_oci.versions import get_version

OPTIONS_FILE = "llm_api_options.yaml"
LLMAPI_REPOSITORY_DIR = "model_repository"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json",
                   "vocab.json", "merges.txt", "chat_template.jinja")
_WEIGHT_SUFFIXES = (".safetensors", ".bin")


class PyTorchServingOptions(BaseModel):
    """How a pytorch release is served: which frontend, under which name, with which LLM-API options."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    frontend: Frontend = "openai"
    served_model_name: str = Field(min_length=1)
    llm_api: LlmApiOptions = Field(default_factory=LlmApiOptions)
    trtllm_version: str
    streaming: bool = True
    chat: bool = Field(default=True, description="OpenAI frontend: predict serves /v1/chat/completions, else /v1/completions")
    deploy_root: str | None = Field(default=None, description="Where the serving config's root is when served")
    materialize: bool = Field(default=False, description="Copy the checkpoint instead of hard-linking it")


class PyTorchBackend(ServingBackend):
    name = "pytorch"
    description = "TensorRT-LLM LLM API (PyTorch backend) on the Hugging Face checkpoint"

    def skipped_stages(self, request: BuildRequest) -> dict[str, str]:
        if request.quantization.method is Quantization.NONE and request.quantization.kv_cache_dtype is KvCacheDtype.AUTO:
            return {"quantize": "quantization.method is none: the checkpoint is served as it is (a pre-quantized "
                                "one keeps its own quantization)"}
        return {}

    # ------------------------------------------------------------------------------------ artifact
    def prepare_artifact(self, request: BuildRequest, model: DownloadResult, store: EngineStore,
                         context: BuildContext) -> PreparedArtifact:
        existing = read_checkpoint_quantization(model.local_dir, request.trtllm_version)
        wants_ptq = request.quantization.method is not Quantization.NONE or \
            request.quantization.kv_cache_dtype is not KvCacheDtype.AUTO
        if wants_ptq and existing.is_quantized:
            raise InputError(
                f"{model.repo_id} is already quantized ({existing.quant_algo}, read from {existing.source}); it is "
                f"served as it is: set quantization.method none and kv_cache_dtype auto, or start from the "
                f"unquantized checkpoint")
        if not wants_ptq:
            inputs = checkpoint_cache_inputs(request, existing)
            context.log(f"artifact cache key {cache_key(inputs)} (checkpoint as it is: {existing.method})")
            manifest, hit = build_once(inputs, store, lambda d: _link_checkpoint(model, d), summarize_checkpoint_dir)
            return PreparedArtifact(manifest=manifest, cache_hit=hit)
        return self._quantize(request, model, store, context)

    def _quantize(self, request: BuildRequest, model: DownloadResult, store: EngineStore,
                  context: BuildContext) -> PreparedArtifact:
        if request.calibration_dir is None:
            raise InputError("quantization needs a calibration set: set quantization.calib_dataset (a local "
                             "directory, or a Hub dataset pinned to a commit)")
        calibration = CalibrationDir(path=request.calibration_dir)
        method, kv = ptq_method(request.quantization.method), ptq_kv_cache(request.quantization.kv_cache_dtype)
        host = context.host
        gpu_arch = host.gpu_arch or detect_gpu_arch()
        # No GPU here and none named: the CPU smoke path (ModelOpt on this host's torch, e.g. the tiny demo model).
        on_cpu = gpu_arch is None
        calib_id = calibration_set_id(load_calibration_texts(calibration, request.quantization.calib_size))
        version = get_version(request.trtllm_version)
        if on_cpu:
            image_digest, device = None, "cpu"
        else:
            assert version.pytorch is not None
            image = version.pytorch.release_image
            image_digest = host.image_digest or resolve_image_digest(image, host.docker_host)
            device = "cuda"
        ptq_key = QuantizedCheckpointKey(
            source_repo=model.repo_id if model.source == "hub" else None, source_commit=model.commit_sha,
            method=method, kv_cache=kv, calibration_id=calib_id, calib_size=request.quantization.calib_size,
            calib_seq_len=512, export_dtype="auto", modelopt_version=_modelopt_version(on_cpu),
            trtllm_version=request.trtllm_version if image_digest else None, image_digest=image_digest,
            device=device)
        inputs = EngineCacheKey(
            model_commit_sha=model.commit_sha, quantization=method.value,
            kv_cache_dtype=request.quantization.kv_cache_dtype.value, tp=1, pp=1,
            build_options={"backend": "pytorch", "artifact": "modelopt_hf_checkpoint",
                           "ptq": ptq_key.model_dump(mode="json")},
            trtllm_version=request.trtllm_version, image_digest=image_digest or _cpu_runtime_digest(),
            gpu_arch=CPU_REFERENCE_ARCH if on_cpu else (gpu_arch or ANY_GPU_ARCH))
        context.log(f"artifact cache key {cache_key(inputs)} (ModelOpt {method.value} PTQ on "
                    f"{'this CPU: a smoke path, slow beyond tiny models' if on_cpu else 'the release image'})")

        def quantize(build_dir: Path) -> Path:
            out = build_dir / "checkpoint"
            ptq = PtqRequest(model_dir=Path(model.local_dir), output_dir=out, method=method, kv_cache=kv,
                             calibration=calibration, calib_size=request.quantization.calib_size,
                             device="cpu" if on_cpu else "cuda")
            if on_cpu:
                run_ptq(ptq, log=context.log)
            else:
                _run_ptq_in_container(ptq, image, host, context)
            return out

        manifest, hit = build_once(inputs, store, quantize, summarize_checkpoint_dir)
        return PreparedArtifact(manifest=manifest, cache_hit=hit)

    # ------------------------------------------------------------------------------------ serving
    def write_serving_config(self, artifact_dir: Path, model: DownloadResult, out_dir: Path,
                             options: PyTorchServingOptions) -> ServingConfig:
        out_dir = Path(out_dir).absolute()
        deploy_root = options.deploy_root or str(out_dir)
        name = options.served_model_name
        with staged_dir(out_dir, replace=True) as staging:
            _mirror(Path(artifact_dir), staging / name, options.materialize)
            options_file = None
            repository = None
            if options.frontend == "openai":
                command = self._serve_command(deploy_root, options, port=8000)
                if command.config:
                    (staging / OPTIONS_FILE).write_text(command.config_yaml())
                    options_file = out_dir / OPTIONS_FILE
            else:
                write_llmapi_repository(
                    staging / LLMAPI_REPOSITORY_DIR, f"{deploy_root}/{name}", options.llm_api, options.trtllm_version,
                    LlmapiRepoOptions(decoupled=options.streaming))
                repository = out_dir / LLMAPI_REPOSITORY_DIR
        config = ServingConfig(
            root=out_dir, backend=self.name, frontend=options.frontend, trtllm_version=options.trtllm_version,
            world_size=options.llm_api.world_size, streaming=options.streaming,
            served_model=name if options.frontend == "openai" else MODEL_NAME,  # the Triton model behind the routes
            model_repository=repository, checkpoint_dir=out_dir / name, tokenizer_dir=out_dir / name,
            options_file=options_file)
        config.write()
        return config

    def _serve_command(self, deploy_root: str, options: PyTorchServingOptions, port: int):
        return serve_command(f"{deploy_root}/{options.served_model_name}", options.llm_api, options.trtllm_version,
                             config_path=f"{deploy_root}/{OPTIONS_FILE}", host="0.0.0.0", port=port)

    def serving_image(self, trtllm_version: str, frontend: Frontend = "openai") -> str:
        version = get_version(trtllm_version)
        if version.pytorch is None:
            raise InputError(f"TensorRT-LLM {trtllm_version} has no LLM-API entry in the version table")
        if frontend == "openai":
            return version.pytorch.release_image
        return version.serving_image

    def launch_command(self, launch: LaunchRequest) -> list[str]:
        options: PyTorchServingOptions = launch.options
        if options.frontend == "openai":
            layout = launch.layout
            if layout is None:
                return list(self._serve_command(launch.deploy_root, options, launch.ports.http).argv)
            # By reference: the image's launcher links the checkpoint (under the cache's prefix) and the options file
            # (under the release's) into one root first, so trtllm-serve names the model after its directory.
            serve = self._serve_command(layout.deploy_root, options, launch.ports.http)
            return linked_cmd(serve.argv, links=layout.links, serving_root=layout.deploy_root)
        # Triton's llmapi model runs TensorRT-LLM in one process (no mpirun; tensor_parallel_size in model.yaml). The
        # deployed repository holds only the configs; the launcher links them with upstream's model code from the
        # image into one writable model repository.
        links = llmapi_serving_links(options.trtllm_version, f"{launch.deploy_root}/{LLMAPI_REPOSITORY_DIR}")
        ports = launch.ports
        return deploy_cmd(SERVING_ROOT, 1, http_port=ports.http, grpc_port=ports.grpc, metrics_port=ports.metrics,
                          links=links, serving_root=SERVING_ROOT)

    def predict_model(self, streaming: bool, include_bls: bool = False, options: object = None) -> str:
        assert isinstance(options, PyTorchServingOptions)
        return "tensorrt_llm" if options.frontend == "triton" else options.served_model_name

    def routes(self, streaming: bool, include_bls: bool = False, options: object = None) -> ServingRoutes:
        assert isinstance(options, PyTorchServingOptions)
        if options.frontend == "triton":
            return triton_generate_routes("tensorrt_llm", streaming=streaming, llmapi=True)
        return openai_routes(chat=options.chat)


# ---------------------------------------------------------------------------------------- helpers


def ptq_method(method: Quantization) -> PtqMethod:
    try:
        return PtqMethod(method.value)
    except ValueError:
        raise InputError(f"quantization.method {method.value!r} has no ModelOpt PTQ path; use one of "
                         f"{[m.value for m in PtqMethod]}") from None


def ptq_kv_cache(kv: KvCacheDtype) -> KvCacheQuant:
    if kv is KvCacheDtype.AUTO:
        return KvCacheQuant.NONE
    if kv is KvCacheDtype.FP8:
        return KvCacheQuant.FP8
    raise InputError(f"quantization.kv_cache_dtype {kv.value!r} has no ModelOpt PTQ path; use fp8 or auto")


def checkpoint_cache_inputs(request: BuildRequest, quantization: CheckpointQuantization) -> EngineCacheKey:
    """A checkpoint served as it is: its bytes are the model commit's, whatever image or GPU serves it."""
    return EngineCacheKey(
        model_commit_sha=request.model_commit_sha, quantization=quantization.method,
        kv_cache_dtype=quantization.kv_cache_dtype, tp=1, pp=1,
        build_options={"backend": "pytorch", "artifact": "hf_checkpoint"},
        trtllm_version=request.trtllm_version, image_digest=NO_IMAGE, gpu_arch=ANY_GPU_ARCH)


def summarize_checkpoint_dir(checkpoint_dir: Path) -> ArtifactSummary:
    """The cache's summary of a Hugging Face checkpoint: every file it holds must be there to load it."""
    files = sorted(p.relative_to(checkpoint_dir).as_posix() for p in checkpoint_dir.rglob("*") if p.is_file())
    if "config.json" not in files:
        raise EngineValidationError(f"{checkpoint_dir} has no config.json: not a Hugging Face checkpoint")
    if not any(f.endswith(_WEIGHT_SUFFIXES) for f in files):
        raise EngineValidationError(f"{checkpoint_dir} has no weights (*.safetensors / *.bin)")
    return ArtifactSummary(backend="pytorch", world_size=1, tp_size=1, pp_size=1, required_files=files)


def _link_checkpoint(model: DownloadResult, build_dir: Path) -> Path:
    out = build_dir / "checkpoint"
    for f in model.files:
        src, dst = Path(model.local_dir) / f.path, out / f.path
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(src, dst)
        except OSError:  # another filesystem than the models directory
            shutil.copy2(src, dst)
    return out


def _mirror(src: Path, dst: Path, materialize: bool) -> None:
    """A tree of hard links (copies when `materialize` or across filesystems); symlinks are not followed."""
    for path in sorted(src.rglob("*")):
        if path.is_symlink():
            raise EngineValidationError(f"{path} is a symbolic link; a checkpoint in the cache holds files only")
        target = dst / path.relative_to(src)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if materialize:
            shutil.copy2(path, target)
            continue
        try:
            os.link(path, target)
        except OSError:
            shutil.copy2(path, target)


def _modelopt_version(on_cpu: bool) -> str:
    if not on_cpu:
        return f"image:{MODELOPT_PIN}"  # the release image brings its own; the image digest pins it
    try:
        return metadata.version("nvidia-modelopt")
    except metadata.PackageNotFoundError:
        return "absent"


def _cpu_runtime_digest() -> str:
    """Stands in for an image digest when PTQ runs on this host's Python (the CPU smoke path)."""
    h = hashlib.sha256()
    for dist in ("nvidia-modelopt", "torch", "transformers"):
        try:
            h.update(f"{dist}={metadata.version(dist)}\n".encode())
        except metadata.PackageNotFoundError:
            h.update(f"{dist}=absent\n".encode())
    return "sha256:" + h.hexdigest()


def _run_ptq_in_container(ptq: PtqRequest, image: str, host, context: BuildContext) -> None:
    calibration = ptq.calibration
    scratch = None
    if not isinstance(calibration, CalibrationDir):
        # The image has no network and reads calibration from a directory: write the texts there.
        scratch = Path(tempfile.mkdtemp(prefix="calibration-", dir=ptq.output_dir.parent))
        texts = load_calibration_texts(calibration, ptq.calib_size)
        (scratch / "calibration.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
        ptq = ptq.model_copy(update={"calibration": CalibrationDir(path=scratch)})
    job = container_job(ptq)
    spec = ContainerRunSpec(image=image, gpus=host.gpus, user=host.user, workdir=job.workdir,
                            mounts=[BindMount(source=s, target=t, read_only=ro) for s, t, ro in job.mounts],
                            environment=job.environment)
    ptq.output_dir.parent.mkdir(parents=True, exist_ok=True)
    try:
        run_steps_in_container([Step(name="quantize", argv=job.argv)], spec, host.docker_host, context.log,
                               oom_advice=context.oom_advice)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)

