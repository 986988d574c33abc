"""The serving configuration of a release (its backend's repository for the prepared artifact), and serving
it on this host for the benchmark."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from trtllm_oci.backends import backend_for
from trtllm_oci.backends.base import PreparedArtifact, ServingConfig
from trtllm_oci.backends.pytorch import PyTorchServingOptions
from trtllm_oci.build_options import KvCacheDtype
from trtllm_oci.cache.stores import local_engine_dir
from trtllm_oci.cloud.artifact import SERVING_ROOT
from trtllm_oci.errors import InputError
from trtllm_oci.hub.snapshot import DownloadResult
from trtllm_oci.llm_api.options import KvCacheOptions, LlmApiOptions
from trtllm_oci.release.cache import open_engine_store
from trtllm_oci.repo.assemble import RepoOptions, oci_deploy_root
from trtllm_oci.settings import Settings
from trtllm_oci.spec import OciTarget, ReleaseSpec

# The serving configuration's directory in the workspace and at the top of the OCI model artifact.
REPOSITORY_DIR_NAME = "repository"


def repo_options(spec: ReleaseSpec) -> RepoOptions:
    """The Triton ensemble repository's options (tensorrt and reference backends)."""
    s = spec.serving
    oci = isinstance(spec.target, OciTarget)
    return RepoOptions(
        trtllm_version=spec.trtllm_version,
        # The Triton backend that serves engines is called tensorrtllm; the reference model stands in for it.
        backend="reference" if s.backend == "reference" else "tensorrtllm",
        streaming=s.streaming,
        triton_max_batch_size=spec.effective_triton_max_batch_size,
        batch_scheduler_policy=s.batch_scheduler_policy,
        kv_cache_free_gpu_mem_fraction=s.kv_cache_free_gpu_mem_fraction,
        max_tokens_in_paged_kv_cache=s.max_tokens_in_paged_kv_cache,
        enable_kv_cache_reuse=s.enable_kv_cache_reuse,
        exclude_input_in_output=s.exclude_input_in_output,
        max_queue_delay_microseconds=s.max_queue_delay_microseconds,
        preprocessing_instance_count=s.preprocessing_instance_count,
        postprocessing_instance_count=s.postprocessing_instance_count,
        include_bls=s.include_bls,
        # In a Model Deployment the artifact is unzipped read-only under /opt/ds/model/deployed_model.
        deploy_root=oci_deploy_root(REPOSITORY_DIR_NAME) if oci else None,
        materialize=oci,
    )


def served_model_name(spec: ReleaseSpec) -> str:
    return spec.serving.served_model_name or spec.model.short_name


def llm_api_options(spec: ReleaseSpec) -> LlmApiOptions:
    """The release's LLM-API options: parallelism, the runtime limits (build.*), the KV cache, and whatever
    else serving.llm_api_options names (checked against the version's option list when the spec loaded)."""
    s, limits = spec.serving, spec.build
    kv = KvCacheOptions(
        free_gpu_memory_fraction=s.kv_cache_free_gpu_mem_fraction,
        enable_block_reuse=s.enable_kv_cache_reuse,  # None: the LLM API's own default
        # A ModelOpt FP8 KV cache is in the checkpoint's hf_quant_config.json, which TensorRT-LLM reads itself.
        dtype="fp8" if spec.quantization.kv_cache_dtype is KvCacheDtype.FP8
        and spec.quantization.method.value == "none" else None,
    )
    return LlmApiOptions(
        tensor_parallel_size=spec.parallelism.tp, pipeline_parallel_size=spec.parallelism.pp,
        moe_expert_parallel_size=spec.parallelism.ep,
        max_batch_size=limits.max_batch_size, max_num_tokens=limits.max_num_tokens, max_seq_len=limits.max_seq_len,
        kv_cache_config=kv, extra=dict(s.llm_api_options))


def pytorch_serving_options(spec: ReleaseSpec) -> PyTorchServingOptions:
    oci = isinstance(spec.target, OciTarget)
    return PyTorchServingOptions(
        frontend=spec.serving.effective_frontend, served_model_name=served_model_name(spec),
        llm_api=llm_api_options(spec), trtllm_version=spec.trtllm_version, streaming=spec.serving.streaming,
        chat=spec.serving.predict_api == "chat", deploy_root=oci_deploy_root(REPOSITORY_DIR_NAME) if oci else None, materialize=oci)


def serving_options(spec: ReleaseSpec) -> RepoOptions | PyTorchServingOptions:
    return pytorch_serving_options(spec) if spec.serving.backend == "pytorch" else repo_options(spec)


def assemble(spec: ReleaseSpec, artifact: PreparedArtifact, model: DownloadResult, out_root: Path,
             settings: Settings, by_reference: bool = False) -> ServingConfig:
    """Write the release's serving configuration under `out_root/repository` from its artifact on this host
    (downloaded from an oci:// engine cache when it was built elsewhere). `by_reference`: the engines stay in
    the bucket; the repository is assembled from their outline (configs and placeholders, no engine bytes) and
    names the serving root the image's launcher links together (the same for a checkpoint served by trtllm-serve)."""
    store = open_engine_store(spec.engine_cache, settings)
    options = serving_options(spec)
    if by_reference:
        outline = getattr(store, "materialize_outline", None)
        if outline is None:
            raise InputError("a model by reference needs its engines or checkpoint in an oci:// engine_cache")
        # The outline: configs and tokenizer downloaded, engines and weights as sparse placeholders (no byte of them).
        stored = outline(artifact.manifest)
        options = options.model_copy(update={"deploy_root": SERVING_ROOT, "materialize": False})
    else:
        stored = local_engine_dir(store, artifact.manifest)
    backend = backend_for(spec.serving.backend)
    return backend.write_serving_config(stored, model, Path(out_root) / REPOSITORY_DIR_NAME, options)


@dataclass(frozen=True)
class LocalEndpoint:
    """A served release on this host: where to send requests, how, and what serves it (said in the report)."""

    url: str
    transport: Literal["http", "grpc", "openai"]
    model: str
    server: str


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve_locally(config: ServingConfig, transport: str | None, log: Callable[[str], None],
                  ready_timeout_s: float = 600.0) -> Iterator[LocalEndpoint]:
    """Serve `config` here until the block ends: tritonserver (CPU build here) for a Triton repository;
    trtllm-serve where TensorRT-LLM is installed, else the CPU OpenAI smoke server, for an OpenAI frontend."""
    if config.frontend == "openai":
        if transport not in (None, "openai"):
            raise InputError(f"benchmark.transport {transport!r} does not reach an OpenAI server; use openai")
        from trtllm_oci.serving.openai_server import OpenAIServerSpec, serve_openai

        assert config.checkpoint_dir is not None
        args: tuple[str, ...] = ()
        if config.options_file is not None:
            args = ("--extra_llm_api_options", str(config.options_file))
        spec = OpenAIServerSpec(checkpoint_dir=config.checkpoint_dir, served_model_name=config.served_model,
                                port=free_port(), trtllm_serve_args=args, startup_timeout_s=ready_timeout_s)
        with serve_openai(spec, on_log=log) as server:
            yield LocalEndpoint(url=server.base_url, transport="openai", model=config.served_model,
                                server=server.choice.label)
        return
    if config.model_repository is None:
        raise InputError(f"{config.root} has no Triton model repository to serve")
    if config.backend == "pytorch":
        raise InputError("serving Triton's llmapi model needs TensorRT-LLM (inside its Triton image); on this host "
                         "use serving.frontend openai, which runs the CPU OpenAI smoke server without it")
    from trtllm_oci.serving.local import LocalTriton

    with LocalTriton(config.model_repository, ready_timeout_s=ready_timeout_s, log_sink=log) as server:
        chosen: Any = transport or "http"
        url = server.grpc_url if chosen == "grpc" else server.http_url
        yield LocalEndpoint(url=url, transport=chosen, model=config.served_model, server="tritonserver")
