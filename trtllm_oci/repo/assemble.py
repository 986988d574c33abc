"""Assemble the Triton `inflight_batcher_llm` model repository from typed options.

Every config.pbtxt is built as a tritonclient ModelConfig message from the version's interface data and
written with google.protobuf.text_format, so no `${placeholder}` can survive (pain point 1 in
shared/reference/trtllm_triton.md §4). Output layout (deploy_root is where it will live when served):

    <out>/model_repository/{ensemble,preprocessing,postprocessing,tensorrt_llm[,tensorrt_llm_bls]}/
    <out>/engine/             engine files (links; real files when materialize=True)
    <out>/tokenizer/          tokenizer files (links)
    <out>/reference_model/    HF model for the CPU reference backend only
    <out>/manifest.json

Non-model directories stay outside model_repository/: tritonserver treats every subdirectory of the
repository as a model and fails to start on one without a config.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Literal

from google.protobuf import text_format
from pydantic import BaseModel, ConfigDict, Field
from tritonclient.grpc import model_config_pb2 as mc

from trtllm_oci.errors import InputError
from trtllm_oci.files import inside
from trtllm_oci.repo.checks import (
    TOKENIZER_MARKERS,
    RepoCheckError,
    check_streaming_decoupled,
    read_decoupled,
    read_engine_summary,
    run_prestart_checks,
)
from trtllm_oci.repo.interface import (
    BackendParameters,
    ModelInterface,
    RepoInterface,
    backend_parameters_for,
    interface_for,
    template_name,
)
from trtllm_oci.repo.layout import (  # the layout's names, importable from here as before
    ENGINE_DIR,
    MANIFEST_NAME,
    MODEL_REPOSITORY_DIR,
    OCI_DEPLOY_PREFIX,
    REFERENCE_MODEL_DIR,
    TOKENIZER_DIR,
    oci_deploy_root,
)

REFERENCE_BACKEND_LABEL = "trtllm-oci CPU reference backend (transformers; not TensorRT-LLM)"
# Weights are never needed by the tokenizer; linking them into tokenizer/ would double the artifact.
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".h5", ".msgpack", ".gguf", ".ckpt", ".onnx")
_PYTHON_MODELS = ("preprocessing", "postprocessing", "tensorrt_llm_bls")


class AssembleError(InputError):
    """The repository cannot be assembled from these inputs."""


class RepoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    trtllm_version: str
    backend: Literal["tensorrtllm", "reference"] = "tensorrtllm"
    streaming: bool = False
    triton_max_batch_size: int = Field(64, ge=1)
    batch_scheduler_policy: Literal["guaranteed_no_evict", "max_utilization"] = "guaranteed_no_evict"
    kv_cache_free_gpu_mem_fraction: float = Field(0.9, gt=0.0, le=1.0)
    max_tokens_in_paged_kv_cache: int | None = Field(None, ge=1)
    # None: leave the key out, so the backend's own default applies (false up to 0.18, true from 0.19:
    # backend_parameters.json, read from model_instance_state.cc of each release).
    enable_kv_cache_reuse: bool | None = None
    exclude_input_in_output: bool = True
    max_queue_delay_microseconds: int = Field(0, ge=0)
    max_queue_size: int = Field(0, ge=0)
    preprocessing_instance_count: int = Field(1, ge=1)
    postprocessing_instance_count: int = Field(1, ge=1)
    bls_instance_count: int = Field(1, ge=1)
    gpt_model_type: Literal["inflight_fused_batching", "V1"] = "inflight_fused_batching"
    max_beam_width: int = Field(1, ge=1)
    logits_datatype: Literal["TYPE_FP32", "TYPE_FP16", "TYPE_BF16"] = "TYPE_FP32"
    include_bls: bool = False
    # Absolute POSIX path where the repository root will live when served; None: the output dir itself.
    deploy_root: str | None = None
    materialize: bool = False


_LOCAL_FIELDS = {"root", "model_repository"}


class RepoManifest(BaseModel):
    root: Path  # local only, like model_repository: not written to manifest.json
    model_repository: Path
    deploy_root: str
    model_repository_deployed: str
    engine_dir_deployed: str | None
    tokenizer_dir_deployed: str
    models: list[str]
    world_size: int
    trtllm_version: str
    interface_id: str
    backend: str
    streaming: bool
    max_batch_size: int
    files: list[str]  # relative to root, sorted; manifest.json itself excluded


def default_python_models_dir() -> Path:
    """The Python-backend models shipped as package data by trtllm_oci.serving."""
    return Path(str(resources.files("trtllm_oci.serving"))) / "models"


def python_model_source(name: str, models_dir: Path | None = None) -> Path:
    """`<models_dir>/<name>/model.py`; the tensorrt_llm model is the CPU reference one
    (`tensorrt_llm_reference/`). models_dir defaults to the package data of trtllm_oci.serving."""
    base = Path(models_dir) if models_dir is not None else default_python_models_dir()
    package_dir = "tensorrt_llm_reference" if name == "tensorrt_llm" else name
    path = base / package_dir / "model.py"
    if not path.is_file():
        fix = (
            "set include_bls=False"
            if name == "tensorrt_llm_bls"
            else (
                "pass python_models_dir holding <model>/model.py"
                if models_dir is not None
                else "reinstall trtllm_oci with its package data"
            )
        )
        raise AssembleError(f"the {name} model needs {path}, which does not exist; {fix}")
    return path


def python_model_files(source: Path) -> list[Path]:
    """The files that go into `<model>/1/` for the model whose model.py is `source`: the modules beside it
    (e.g. the BLS's incremental_detokenizer.py) and the modules all Python models share, which sit one level
    up, beside the model directories (model_config_params.py). The Python backend puts `<model>/1/` on
    sys.path (triton-inference-server/python_backend:src/pb_stub.cc, Stub::Initialize), so a model imports
    either kind by its bare name."""
    own = sorted(source.parent.glob("*.py"))
    shared = sorted(source.parent.parent.glob("*.py"))
    clashes = sorted({p.name for p in own} & {p.name for p in shared})
    if clashes:
        raise AssembleError(
            f"{', '.join(clashes)} exists both in {source.parent} and in the shared modules of "
            f"{source.parent.parent}; rename the model's own module, both would land in the same <model>/1/"
        )
    return shared + own


def _deploy_path(root: str, *parts: str) -> str:
    return str(PurePosixPath(root, *parts))


def _fill_values(
    options: RepoOptions, max_batch_size: int, deploy_root: str, has_engine: bool
) -> dict[str, str]:
    """Value of each upstream `${name}` this project sets; names not here are left out of the config so the
    backend's documented default applies (BE@HEAD:docs/model_config.md)."""
    values = {
        "triton_max_batch_size": str(max_batch_size),
        "decoupled_mode": "true" if options.streaming else "false",
        "max_queue_delay_microseconds": str(options.max_queue_delay_microseconds),
        "max_queue_size": str(options.max_queue_size),
        "tokenizer_dir": _deploy_path(deploy_root, TOKENIZER_DIR),
        # 0.5–0.8 templates: tokenizer_type t5|auto|llama (BE@v0.5.0 preprocessing/config.pbtxt).
        "tokenizer_type": "auto",
        "preprocessing_instance_count": str(options.preprocessing_instance_count),
        "postprocessing_instance_count": str(options.postprocessing_instance_count),
        "bls_instance_count": str(options.bls_instance_count),
        "batching_strategy": options.gpt_model_type,
        "triton_backend": "tensorrtllm" if options.backend == "tensorrtllm" else "python",
        "batch_scheduler_policy": options.batch_scheduler_policy,
        "kv_cache_free_gpu_mem_fraction": str(options.kv_cache_free_gpu_mem_fraction),
        "exclude_input_in_output": str(options.exclude_input_in_output).lower(),
        "max_beam_width": str(options.max_beam_width),
        "logits_datatype": options.logits_datatype,
        "encoder_input_features_data_type": "TYPE_FP16",
        "prompt_embedding_table_data_type": "TYPE_FP16",
        "tensorrt_llm_model_name": "tensorrt_llm",
        "accumulate_tokens": "false",
        # Upstream's default (postprocessing/1/model.py from 0.7); written so that an absent key keeps meaning
        # the 0.5/0.6 behaviour (no such key: special tokens decoded).
        "skip_special_tokens": "true",
    }
    if options.max_tokens_in_paged_kv_cache is not None:
        values["max_tokens_in_paged_kv_cache"] = str(options.max_tokens_in_paged_kv_cache)
    if options.enable_kv_cache_reuse is not None:
        values["enable_kv_cache_reuse"] = str(options.enable_kv_cache_reuse).lower()
    if has_engine:
        values["engine_dir"] = _deploy_path(deploy_root, ENGINE_DIR)
    return values


def _resolve(value: object, values: dict[str, str], what: str) -> str:
    name = template_name(value)
    if name is None:
        return str(value)
    if name not in values:
        raise AssembleError(f"{what} is left to ${{{name}}} upstream and this assembler has no value for it")
    return values[name]


def _tensor(spec, values: dict[str, str], model: str, io: str):
    tensor = mc.ModelInput() if io == "input" else mc.ModelOutput()
    tensor.name = spec.name
    tensor.data_type = mc.DataType.Value(
        _resolve(spec.data_type, values, f"{model} {io} {spec.name} data_type")
    )
    tensor.dims.extend(spec.dims)
    if spec.reshape is not None:
        tensor.reshape.shape.extend(spec.reshape)
    if io == "input":
        tensor.optional = spec.optional
        tensor.allow_ragged_batch = spec.allow_ragged_batch
    return tensor


def build_model_config(
    name: str,
    interface: ModelInterface,
    values: dict[str, str],
    extra_parameters: dict[str, str] | None = None,
) -> mc.ModelConfig:
    config = mc.ModelConfig(name=name)
    if interface.platform:
        config.platform = interface.platform
    if interface.backend:
        config.backend = _resolve(interface.backend, values, f"{name} backend")
    config.max_batch_size = int(_resolve(interface.max_batch_size, values, f"{name} max_batch_size"))
    if interface.decoupled is not None:
        decoupled = _resolve(interface.decoupled, values, f"{name} decoupled")
        config.model_transaction_policy.decoupled = decoupled == "true"
    if interface.dynamic_batching is not None:
        batching = config.dynamic_batching
        batching.SetInParent()
        for field, value in interface.dynamic_batching.items():
            resolved = int(_resolve(value, values, f"{name} dynamic_batching.{field}"))
            if field == "preferred_batch_size":
                batching.preferred_batch_size.append(resolved)
            elif field == "max_queue_delay_microseconds":
                batching.max_queue_delay_microseconds = resolved
            elif field == "max_queue_size":
                batching.default_queue_policy.max_queue_size = resolved
    config.input.extend(_tensor(t, values, name, "input") for t in interface.inputs)
    config.output.extend(_tensor(t, values, name, "output") for t in interface.outputs)
    if interface.instance_group is not None:
        group = config.instance_group.add()
        group.kind = mc.ModelInstanceGroup.Kind.Value(interface.instance_group.kind)
        group.count = int(_resolve(interface.instance_group.count, values, f"{name} instance_group.count"))
    for key, value in interface.parameters.items():
        placeholder = template_name(value)
        if placeholder is not None and placeholder not in values:
            continue  # optional upstream knob we do not set: absent means the backend default
        config.parameters[key].string_value = values[placeholder] if placeholder else value
    for key, value in (extra_parameters or {}).items():
        config.parameters[key].string_value = value
    for step in interface.steps or []:
        ensemble_step = config.ensemble_scheduling.step.add()
        ensemble_step.model_name = step.model_name
        ensemble_step.model_version = -1
        ensemble_step.input_map.update(step.input_map)
        ensemble_step.output_map.update(step.output_map)
    return config


def check_batching_supported(gpt_model_type: str, trtllm_version: str) -> None:
    """V1 (static batching) only where the backend still serves it (version table: static_batching_until)."""
    from packaging.version import Version

    from trtllm_oci.versions import load_version_table

    until = load_version_table().static_batching_until
    release = Version(".".join(str(p) for p in Version(trtllm_version).release))
    if gpt_model_type == "V1" and release > Version(until):
        raise AssembleError(
            f"gpt_model_type V1 (static batching) is not served by TRT-LLM {trtllm_version}: its executor throws "
            f"'Static batching type is deprecated' at load (V1 was last served by {until}); use "
            "--batching inflight_fused_batching (with --batch-scheduler-policy guaranteed_no_evict for "
            "static-like scheduling)"
        )


def effective_max_batch_size(interface: RepoInterface, options: RepoOptions) -> int:
    """0.5.0 templates hard-code max_batch_size 128 (BE@v0.5.0:all_models/inflight_batcher_llm/*/config.pbtxt):
    that value unless triton_max_batch_size is set explicitly, and never above it."""
    fixed = interface.models["tensorrt_llm"].max_batch_size
    if not isinstance(fixed, int):
        return options.triton_max_batch_size
    if "triton_max_batch_size" not in options.model_fields_set:
        return fixed
    if options.triton_max_batch_size > fixed:
        raise AssembleError(
            f"triton_max_batch_size={options.triton_max_batch_size}, but the TRT-LLM {options.trtllm_version} "
            f"backend templates cap max_batch_size at {fixed}; set triton_max_batch_size<={fixed}"
        )
    return options.triton_max_batch_size


def build_model_configs(
    options: RepoOptions, deploy_root: str, *, has_engine: bool, reference_model_dir: str | None = None
) -> dict[str, mc.ModelConfig]:
    """The config of each model of the repository, keyed by model name (no files touched)."""
    interface = interface_for(options.trtllm_version)
    if options.include_bls and not interface.has_bls:
        raise AssembleError(
            f"TRT-LLM {options.trtllm_version} (interface {interface.interface_id}) has no tensorrt_llm_bls model "
            f"(added in 0.7); set include_bls=False"
        )
    check_batching_supported(options.gpt_model_type, options.trtllm_version)
    max_batch_size = effective_max_batch_size(interface, options)
    values = _fill_values(options, max_batch_size, deploy_root, has_engine)
    names = ["ensemble", "preprocessing", "postprocessing", "tensorrt_llm"]
    if options.include_bls:
        names.append("tensorrt_llm_bls")
    configs = {}
    for name in names:
        model = interface.models[name]
        if isinstance(model.max_batch_size, int):
            model = model.model_copy(update={"max_batch_size": max_batch_size})
        extra: dict[str, str] = {}
        if name == "tensorrt_llm" and template_name(model.parameters.get("gpt_model_type")) is None:
            # 0.5.0 templates hard-code inflight_fused_batching, but its backend reads V1 as well
            # (libtensorrtllm.cc@v0.5.0): the option must not be dropped silently.
            extra["gpt_model_type"] = options.gpt_model_type
        if name == "tensorrt_llm" and options.backend == "reference":
            # Same tensor interface, served by the project's Python model on CPU: the backend field changes
            # even in templates (0.5–0.11) that hard-code "tensorrtllm".
            model = model.model_copy(update={"backend": "python"})
            extra = {"trtllm_oci_backend": REFERENCE_BACKEND_LABEL, "model_dir": reference_model_dir or ""}
        configs[name] = build_model_config(name, model, values, extra)
    carry_required_parameters(
        configs["tensorrt_llm"], backend_parameters_for(options.trtllm_version), options.backend
    )
    return configs


def carry_required_parameters(config: mc.ModelConfig, facts: BackendParameters, backend: str) -> None:
    """Give tensorrt_llm every key the C++ backend reads without a fallback.

    The C++ backend's GetParameter throws "Cannot find parameter with name: ..." for an absent key, so a key
    it reads with no fallback must be present even when there is nothing to set; it then gets a value the
    backend's own source treats as not set (e.g. "" for guided_decoding_backend / xgrammar_tokenizer_info_path
    from 0.19 on). The CPU reference backend's config is never read by the C++ backend: there a key without
    such a value is left out instead of failing the assembly.
    """
    for key, fact in facts.required.items():
        if key in config.parameters:
            continue
        if "" in fact.unset_values:
            config.parameters[key].string_value = ""
        elif backend == "tensorrtllm":
            raise AssembleError(
                f"the TRT-LLM backend reads parameter {key!r} of tensorrt_llm without a fallback "
                f"({facts.cited(key)}) and this assembler has no value for it; the model would fail to load "
                f"with 'Cannot find parameter with name: {key}'. Pass the option that sets it"
            )


def _link_or_copy(src: Path, dst: Path, materialize: bool) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    src = src.resolve()
    if materialize:
        shutil.copyfile(src, dst)
        return
    try:
        os.link(src, dst)
    except OSError:
        # Other filesystem (EXDEV) or no hardlink permission: a symlink still avoids copying engine bytes.
        os.symlink(src, dst)


def _link_roots(src_dir: Path) -> list[Path]:
    """Where a link in `src_dir` may point: into the directory itself, and for a huggingface_hub cache
    snapshot (`models--org--name/snapshots/<sha>/`, whose files link to `../../blobs/<hash>`), into that
    repository's blobs (huggingface_hub docs, "Understand caching": the cache's directory structure)."""
    roots = [src_dir]
    real = Path(os.path.realpath(src_dir))
    if real.parent.name == "snapshots":
        roots.append(real.parent.parent / "blobs")
    return roots


def _mirror_tree(
    src_dir: Path, dst_dir: Path, materialize: bool, skip_suffixes: tuple[str, ...] = ()
) -> None:
    """Link (or copy) every file of `src_dir` into `dst_dir`. A link inside `src_dir` is followed only where
    it stays in the directory (or its Hub cache's blobs): the artifact must not carry /etc/hostname, or a
    key file, because an engine directory held a link to it. Links to directories are not followed."""
    roots = _link_roots(src_dir)
    for path in sorted(Path(src_dir).rglob("*")):
        if path.is_symlink() and not path.exists():
            raise AssembleError(f"{path} is a dangling link; restore its target or remove it from {src_dir}")
        if path.is_symlink() and not any(inside(root, path) for root in roots):
            raise AssembleError(
                f"{path} is a link to {os.path.realpath(path)}, outside {src_dir}; links are not followed out of "
                "a model or engine directory (the file would land in the artifact). Copy the file into the "
                "directory, or remove the link")
        if path.is_file() and not path.name.endswith(skip_suffixes):
            _link_or_copy(path, dst_dir / path.relative_to(src_dir), materialize)


def _write_config(model_dir: Path, config: mc.ModelConfig, header: str) -> None:
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / "1").mkdir(exist_ok=True)
    (model_dir / "config.pbtxt").write_text(header + text_format.MessageToString(config))


def _relative_files(root: Path) -> list[str]:
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if (p.is_file() or p.is_symlink()) and p.name != MANIFEST_NAME
    )


def assemble_repository(
    engine_dir: Path | None,
    tokenizer_dir: Path,
    out_dir: Path,
    options: RepoOptions,
    hf_model_dir: Path | None = None,
    *,
    overwrite: bool = False,
    python_models_dir: Path | None = None,
    gpu: tuple[tuple[int, int], str] | None = None,
) -> RepoManifest:
    """Write the repository at `out_dir` atomically: built in a sibling temp dir, then renamed into place.
    `gpu`: (compute capability, label) of the serving GPU; an engine precision it lacks is refused."""
    out_dir = Path(out_dir).absolute()
    if options.backend == "tensorrtllm" and engine_dir is None:
        raise AssembleError("backend='tensorrtllm' needs --engine-dir (the trtllm-build output dir)")
    if options.backend == "reference":
        if hf_model_dir is None:
            raise AssembleError(
                "backend='reference' needs hf_model_dir (the Hugging Face model the CPU reference model loads)"
            )
        if not (Path(hf_model_dir) / "config.json").is_file():
            raise AssembleError(
                f"hf_model_dir {hf_model_dir} has no config.json; pass a Hugging Face model dir"
            )
        engine_dir = None
    if out_dir.exists() and not overwrite:
        raise AssembleError(f"output dir {out_dir} already exists; remove it or pass --overwrite (overwrite=True)")
    deploy_root = options.deploy_root or str(out_dir)
    if not PurePosixPath(deploy_root).is_absolute():
        raise AssembleError(
            f"deploy_root={deploy_root!r} must be an absolute path, e.g. {oci_deploy_root('<name>')}"
        )

    run_prestart_checks(
        engine_dir,
        tokenizer_dir,
        trtllm_version=options.trtllm_version,
        triton_max_batch_size=effective_max_batch_size(interface_for(options.trtllm_version), options),
        streaming=options.streaming,
        gpu=gpu,
    )
    world_size = read_engine_summary(engine_dir).world_size if engine_dir is not None else 1
    configs = build_model_configs(
        options,
        deploy_root,
        has_engine=engine_dir is not None,
        reference_model_dir=_deploy_path(deploy_root, REFERENCE_MODEL_DIR),
    )
    python_sources = {
        name: python_model_source(name, python_models_dir) for name in configs if name in _PYTHON_MODELS
    }
    if options.backend == "reference":
        python_sources["tensorrt_llm"] = python_model_source("tensorrt_llm", python_models_dir)
    python_files = {name: python_model_files(source) for name, source in python_sources.items()}

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.assembling-", dir=out_dir.parent))
    try:
        repo = staging / MODEL_REPOSITORY_DIR
        interface = interface_for(options.trtllm_version)
        for name, config in configs.items():
            header = f"# Generated by trtllm-oci for TRT-LLM {options.trtllm_version} (interface {interface.interface_id}).\n"
            if name == "tensorrt_llm" and options.backend == "reference":
                header += f"# {REFERENCE_BACKEND_LABEL}: for CPU tests of the repository, not for serving.\n"
            _write_config(repo / name, config, header)
        for name, modules in python_files.items():
            for module in modules:
                shutil.copyfile(module, repo / name / "1" / module.name)
        if engine_dir is not None:
            _mirror_tree(Path(engine_dir), staging / ENGINE_DIR, options.materialize)
        _mirror_tree(Path(tokenizer_dir), staging / TOKENIZER_DIR, options.materialize, _WEIGHT_SUFFIXES)
        if options.backend == "reference" and hf_model_dir is not None:
            _mirror_tree(Path(hf_model_dir), staging / REFERENCE_MODEL_DIR, options.materialize)
        check_streaming_decoupled(options.streaming, read_decoupled(repo))
        manifest = RepoManifest(
            root=out_dir,
            model_repository=out_dir / MODEL_REPOSITORY_DIR,
            deploy_root=deploy_root,
            model_repository_deployed=_deploy_path(deploy_root, MODEL_REPOSITORY_DIR),
            engine_dir_deployed=_deploy_path(deploy_root, ENGINE_DIR) if engine_dir is not None else None,
            tokenizer_dir_deployed=_deploy_path(deploy_root, TOKENIZER_DIR),
            models=sorted(configs),
            world_size=world_size,
            trtllm_version=options.trtllm_version,
            interface_id=interface.interface_id,
            backend=options.backend,
            streaming=options.streaming,
            max_batch_size=configs["tensorrt_llm"].max_batch_size,
            files=_relative_files(staging),
        )
        # Local paths stay out of the file: the same inputs give the same bytes wherever they are assembled,
        # so the artifact zip (and its sha256) does not depend on the build host's directory.
        (staging / MANIFEST_NAME).write_text(manifest.model_dump_json(indent=2, exclude=_LOCAL_FIELDS) + "\n")
        _replace_dir(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def _replace_dir(staging: Path, out_dir: Path) -> None:
    if not out_dir.exists():
        staging.rename(out_dir)
        return
    # overwrite: move the old tree aside first so a failure leaves either the old or the new repository.
    old = out_dir.with_name(f".{out_dir.name}.replaced-{os.getpid()}")
    out_dir.rename(old)
    try:
        staging.rename(out_dir)
    except BaseException:
        old.rename(out_dir)
        raise
    shutil.rmtree(old, ignore_errors=True)


def read_manifest(root: Path) -> RepoManifest:
    root = Path(root).absolute()
    path = root / MANIFEST_NAME
    if not path.is_file():
        raise AssembleError(f"{root} has no {MANIFEST_NAME}; it was not written by assemble_repository")
    data = json.loads(path.read_text())
    return RepoManifest.model_validate(
        {**data, "root": root, "model_repository": root / MODEL_REPOSITORY_DIR}
    )


__all__ = [
    "ENGINE_DIR",
    "MANIFEST_NAME",
    "MODEL_REPOSITORY_DIR",
    "OCI_DEPLOY_PREFIX",
    "REFERENCE_MODEL_DIR",
    "TOKENIZER_DIR",
    "AssembleError",
    "RepoCheckError",
    "RepoManifest",
    "RepoOptions",
    "TOKENIZER_MARKERS",
    "assemble_repository",
    "build_model_config",
    "build_model_configs",
    "oci_deploy_root",
    "read_manifest",
]
