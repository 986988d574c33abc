"""Read a built engine directory's config.json, in either layout, and name the rank files it must hold.

trtllm-build (0.9+): {"version", "pretrained_config": {"dtype", "mapping", "quantization"}, "build_config": {...}}
(tensorrt_llm/builder.py EngineConfig.to_dict). Legacy examples/<model>/build.py (0.5.0):
{"builder_config": {...BuilderConfig attributes...}, "plugin_config": {...}} with no "version" key
(tensorrt_llm/builder.py@v0.5.0 Builder.save_config); the C++ runtime picks the engine file name by that
absence (cpp/tensorrt_llm/runtime/gptJsonConfig.cpp engineFilename).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from trtllm_oci.cache.manifest import ArtifactSummarizer, ArtifactSummary, EngineValidationError
from trtllm_oci.errors import ArtifactError
from trtllm_oci.versions import TrtllmVersion, get_version

EngineLayout = Literal["trtllm_build", "legacy_build_py"]


class EngineConfigError(ArtifactError, ValueError):
    """An engine directory's config.json is missing, unreadable or in neither known layout."""

    def __init__(self, message: str, path: Path | None = None) -> None:
        super().__init__(message)
        self.path = path


class EngineConfigMissingError(EngineConfigError):
    """The directory holds no config.json."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"{path} does not exist; point at the directory trtllm-build/build.py wrote", path)


class EngineConfigJsonError(EngineConfigError):
    """config.json is not a JSON object; `detail` is the decoder's complaint."""

    def __init__(self, path: Path, detail: str) -> None:
        super().__init__(f"{path} is not valid JSON ({detail}); rebuild the engine", path)
        self.detail = detail


class EngineConfigLayoutError(EngineConfigError):
    """config.json is JSON but in neither engine layout (e.g. a HF or TRT-LLM checkpoint config)."""

    def __init__(self, path: Path, top_level_keys: list[str]) -> None:
        super().__init__(
            f"{path}: neither a trtllm-build config (pretrained_config + build_config) nor a legacy build.py "
            f"config (builder_config + plugin_config); top-level keys are {top_level_keys}",
            path,
        )
        self.top_level_keys = top_level_keys


class EngineConfigKeyError(EngineConfigError):
    """A key the summary needs is absent or not of the expected type."""


class EngineConfigSummary(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    layout: EngineLayout
    trtllm_version: str | None  # legacy configs do not record it
    name: str | None  # legacy MODEL_NAME (engine file prefix); None for trtllm-build
    architecture: str | None
    dtype: str  # legacy builder_config.precision (engine file name part)
    world_size: int  # as declared by the mapping; may disagree with tp×pp×cp in a corrupt config
    tp_size: int
    pp_size: int
    cp_size: int  # context parallel (mapping.cp_size, newer trtllm-build); always 1 for legacy
    max_batch_size: int
    max_input_len: int
    max_seq_len: int | None
    max_output_len: int | None
    max_num_tokens: int | None
    quant_algo: str | None
    kv_cache_quant_algo: str | None


# Far above any engine this tool builds or serves (one rank per GPU; the largest OCI shape has 8, multi-node
# TensorRT-LLM deployments a few hundred): a config claiming more is corrupt, and naming its rank files in a
# message would make a message of megabytes.
MAX_ENGINE_RANKS = 1024


def _check_ranks(path: Path, where: str, **sizes: int) -> None:
    for key, value in sizes.items():
        if not 1 <= value <= MAX_ENGINE_RANKS:
            raise EngineConfigKeyError(
                f"{path}: {where}.{key}={value} is outside 1..{MAX_ENGINE_RANKS}; the config is corrupt, so rebuild "
                "the engine (or restore the config.json trtllm-build wrote)", path)


def _require(section: dict, keys: tuple[str, ...], where: str, path: Path, layout: str) -> None:
    missing = [f"{where}.{key}" if where else key for key in keys if key not in section]
    if missing:
        noun, verb = ("key", "is") if len(missing) == 1 else ("keys", "are")
        raise EngineConfigKeyError(
            f"{path}: {noun} {', '.join(missing)} {verb} missing; the file is not a complete {layout} engine "
            "config.json — rebuild the engine (or restore the config.json it wrote)",
            path,
        )


def _as_int(value: object, key: str, path: Path) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise EngineConfigKeyError(f"{path}: {key}={value!r} is not an integer; rebuild the engine", path)


def _optional_int(section: dict, key: str, where: str, path: Path) -> int | None:
    value = section.get(key)
    return None if value is None else _as_int(value, f"{where}.{key}", path)


def _int_or(section: dict, key: str, default: int, where: str, path: Path) -> int:
    value = _optional_int(section, key, where, path)
    return default if value is None else value


def summarize_engine_config(config: dict, path: Path | str = "config.json") -> EngineConfigSummary:
    path = Path(path)
    if "pretrained_config" in config and "build_config" in config:
        pre, build = config["pretrained_config"], config["build_config"]
        _require(config, ("version",), "", path, "trtllm-build")
        if config["version"] in (None, "none"):
            # gptJsonConfig.cpp parseJson reads such a config as a legacy build.py one and fails on builder_config.
            raise EngineConfigKeyError(
                f"{path}: version={config['version']!r}, but a trtllm-build config must record the TensorRT-LLM "
                "version that built it; rebuild the engine with trtllm-build",
                path,
            )
        _require(pre, ("mapping", "dtype"), "pretrained_config", path, "trtllm-build")
        _require(build, ("max_batch_size", "max_input_len"), "build_config", path, "trtllm-build")
        mapping = pre["mapping"]
        where = "pretrained_config.mapping"
        tp = _int_or(mapping, "tp_size", 1, where, path)
        pp = _int_or(mapping, "pp_size", 1, where, path)
        cp = _int_or(mapping, "cp_size", 1, where, path)
        world = _int_or(mapping, "world_size", tp * pp * cp, where, path)
        _check_ranks(path, where, tp_size=tp, pp_size=pp, cp_size=cp, world_size=world)
        quant = pre.get("quantization") or {}
        max_input = _as_int(build["max_input_len"], "build_config.max_input_len", path)
        max_seq = _optional_int(build, "max_seq_len", "build_config", path)
        max_out = _optional_int(build, "max_output_len", "build_config", path)
        if max_seq is None and max_out is not None:
            # Before 0.11 build_config carried max_output_len instead of max_seq_len (release notes 0.11); the
            # runtime then used max_input_len + max_output_len (gptJsonConfig.cpp@v0.8.0 parseJson).
            max_seq = max_input + max_out
        return EngineConfigSummary(
            layout="trtllm_build",
            trtllm_version=str(config["version"]),
            name=None,
            architecture=pre.get("architecture"),
            dtype=pre["dtype"],
            world_size=world,
            tp_size=tp,
            pp_size=pp,
            cp_size=cp,
            max_batch_size=_as_int(build["max_batch_size"], "build_config.max_batch_size", path),
            max_input_len=max_input,
            max_seq_len=max_seq,
            max_output_len=max_out,
            max_num_tokens=_optional_int(build, "max_num_tokens", "build_config", path),
            quant_algo=quant.get("quant_algo"),
            kv_cache_quant_algo=quant.get("kv_cache_quant_algo"),
        )
    if "builder_config" in config and "plugin_config" in config:
        # gptJsonConfig.cpp (legacy branch) reads builder_config.name/precision/tensor_parallel with .at()
        # (required) and json.at("plugin_config"); build.py@v0.5.0 always writes the max_* limits.
        builder = config["builder_config"]
        _require(
            builder,
            ("name", "precision", "tensor_parallel", "max_batch_size", "max_input_len", "max_output_len"),
            "builder_config",
            path,
            "build.py",
        )
        tp = _as_int(builder["tensor_parallel"], "builder_config.tensor_parallel", path)
        pp = _int_or(builder, "pipeline_parallel", 1, "builder_config", path)
        _check_ranks(path, "builder_config", tensor_parallel=tp, pipeline_parallel=pp, world_size=tp * pp)
        max_input = _as_int(builder["max_input_len"], "builder_config.max_input_len", path)
        max_out = _as_int(builder["max_output_len"], "builder_config.max_output_len", path)
        version = config.get("version")
        return EngineConfigSummary(
            layout="legacy_build_py",
            # The runtime treats an absent version and "none" alike (gptJsonConfig.cpp parseJsonFieldOr).
            trtllm_version=None if version in (None, "none") else str(version),
            name=str(builder["name"]),
            architecture=None,
            dtype=str(builder["precision"]),
            world_size=tp * pp,
            tp_size=tp,
            pp_size=pp,
            cp_size=1,
            max_batch_size=_as_int(builder["max_batch_size"], "builder_config.max_batch_size", path),
            max_input_len=max_input,
            max_seq_len=max_input + max_out,
            max_output_len=max_out,
            max_num_tokens=_optional_int(builder, "max_num_tokens", "builder_config", path),
            # QuantMode is an IntFlag serialised as its integer; the names live in tensorrt_llm/quantization/mode.py.
            quant_algo=None if not builder.get("quant_mode") else f"quant_mode={builder['quant_mode']}",
            kv_cache_quant_algo=None,
        )
    raise EngineConfigLayoutError(path, sorted(config))


def read_engine_config(engine_dir: Path | str) -> EngineConfigSummary:
    path = Path(engine_dir) / "config.json"
    if not path.is_file():
        raise EngineConfigMissingError(path)
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EngineConfigJsonError(path, str(exc)) from None
    if not isinstance(config, dict):
        raise EngineConfigJsonError(path, f"it holds a {type(config).__name__}, expected a JSON object")
    return summarize_engine_config(config, path)


def rank_file_names(summary: EngineConfigSummary) -> list[str]:
    """Engine file names the runtime opens for this config's layout, one per rank, in rank order."""
    if summary.layout == "trtllm_build":
        return [f"rank{rank}.engine" for rank in range(summary.world_size)]
    # examples/<model>/build.py@v0.5.0 get_engine_name; gptJsonConfig.cpp engineFilename: "_pp<P>" only when
    # pipeline parallel.
    base = f"{summary.name}_{summary.dtype}_tp{summary.tp_size}"
    if summary.pp_size > 1:
        base += f"_pp{summary.pp_size}"
    return [f"{base}_rank{rank}.engine" for rank in range(summary.world_size)]


def expected_rank_files(summary: EngineConfigSummary, version: TrtllmVersion) -> list[str]:
    """Engine file names the runtime of `version` will open, one per rank, in rank order."""
    parallel = summary.tp_size * summary.pp_size * summary.cp_size
    if summary.world_size != parallel:
        raise EngineConfigError(
            f"world_size {summary.world_size} != tp_size {summary.tp_size} × pp_size {summary.pp_size}"
            + (f" × cp_size {summary.cp_size}" if summary.cp_size > 1 else "")
            + "; the checkpoint conversion wrote an inconsistent mapping — re-run it and the engine build"
        )
    if version.engine_naming == "rank":
        if summary.layout != "trtllm_build":
            raise EngineConfigError(
                f"TensorRT-LLM {version.version} names engines rank<R>.engine but this config is a legacy "
                "build.py config; build it with that version's trtllm-build"
            )
    elif summary.layout != "legacy_build_py":
        raise EngineConfigError(
            f"TensorRT-LLM {version.version} expects a legacy build.py engine, but this config came from "
            f"trtllm-build {summary.trtllm_version}"
        )
    return rank_file_names(summary)


def summarize_engine_dir(engine_dir: Path, trtllm_version: str) -> ArtifactSummary:
    """What the engine cache records of a TensorRT-LLM engine directory: its mapping, limits and the rank
    files (named per version) that must be present for it to load."""
    try:
        summary = read_engine_config(engine_dir)
        required = expected_rank_files(summary, get_version(trtllm_version))
    except EngineConfigError as exc:
        raise EngineValidationError(str(exc)) from None
    return ArtifactSummary(
        backend="tensorrtllm", version=summary.trtllm_version, world_size=summary.world_size,
        tp_size=summary.tp_size, pp_size=summary.pp_size, max_batch_size=summary.max_batch_size,
        max_input_len=summary.max_input_len, max_seq_len=summary.max_seq_len,
        max_num_tokens=summary.max_num_tokens, required_files=required,
    )


def engine_summarizer(trtllm_version: str) -> ArtifactSummarizer:
    """`summarize` for the engine cache: engine directories built by `trtllm_version`."""
    return lambda engine_dir: summarize_engine_dir(engine_dir, trtllm_version)
