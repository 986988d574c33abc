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

from trtllm_oci.engine.versions import TrtllmVersion
from trtllm_oci.errors import TrtllmOciError


class EngineConfigError(TrtllmOciError, ValueError):
    """An engine directory's config.json is missing, unreadable or in neither known layout."""


class EngineConfigSummary(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    layout: Literal["trtllm_build", "legacy_build_py"]
    trtllm_version: str | None  # legacy configs do not record it
    name: str | None  # legacy MODEL_NAME (engine file prefix); None for trtllm-build
    architecture: str | None
    dtype: str
    world_size: int
    tp_size: int
    pp_size: int
    max_batch_size: int
    max_input_len: int
    max_seq_len: int | None
    max_output_len: int | None
    max_num_tokens: int | None
    quant_algo: str | None
    kv_cache_quant_algo: str | None


def _need(mapping: dict, key: str, where: str, path: Path):
    if key not in mapping:
        raise EngineConfigError(
            f"{path}: key {where}.{key} is missing; is this an engine config.json from TensorRT-LLM?"
        )
    return mapping[key]


def summarize_engine_config(config: dict, path: Path | str = "config.json") -> EngineConfigSummary:
    path = Path(path)
    if "pretrained_config" in config and "build_config" in config:
        pre, build = config["pretrained_config"], config["build_config"]
        mapping = _need(pre, "mapping", "pretrained_config", path)
        tp = int(mapping.get("tp_size", 1))
        pp = int(mapping.get("pp_size", 1))
        world = int(mapping.get("world_size", tp * pp))
        quant = pre.get("quantization") or {}
        max_seq = build.get("max_seq_len")
        max_out = build.get("max_output_len")
        return EngineConfigSummary(
            layout="trtllm_build",
            trtllm_version=_need(config, "version", "", path),
            name=None,
            architecture=pre.get("architecture"),
            dtype=_need(pre, "dtype", "pretrained_config", path),
            world_size=world,
            tp_size=tp,
            pp_size=pp,
            max_batch_size=int(_need(build, "max_batch_size", "build_config", path)),
            max_input_len=int(_need(build, "max_input_len", "build_config", path)),
            max_seq_len=None if max_seq is None else int(max_seq),
            max_output_len=None if max_out is None else int(max_out),
            max_num_tokens=None if build.get("max_num_tokens") is None else int(build["max_num_tokens"]),
            quant_algo=quant.get("quant_algo"),
            kv_cache_quant_algo=quant.get("kv_cache_quant_algo"),
        )
    if "builder_config" in config:
        builder = config["builder_config"]
        tp = int(_need(builder, "tensor_parallel", "builder_config", path))
        pp = int(builder.get("pipeline_parallel", 1))
        max_input = int(_need(builder, "max_input_len", "builder_config", path))
        max_out = int(_need(builder, "max_output_len", "builder_config", path))
        return EngineConfigSummary(
            layout="legacy_build_py",
            trtllm_version=None,
            name=_need(builder, "name", "builder_config", path),
            architecture=None,
            dtype=_need(builder, "precision", "builder_config", path),
            world_size=tp * pp,
            tp_size=tp,
            pp_size=pp,
            max_batch_size=int(_need(builder, "max_batch_size", "builder_config", path)),
            max_input_len=max_input,
            max_seq_len=max_input + max_out,
            max_output_len=max_out,
            max_num_tokens=None if builder.get("max_num_tokens") is None else int(builder["max_num_tokens"]),
            # QuantMode is an IntFlag serialised as its integer; the names live in tensorrt_llm/quantization/mode.py.
            quant_algo=None if not builder.get("quant_mode") else f"quant_mode={builder['quant_mode']}",
            kv_cache_quant_algo=None,
        )
    raise EngineConfigError(
        f"{path}: neither a trtllm-build config (pretrained_config + build_config) nor a legacy build.py "
        f"config (builder_config); top-level keys are {sorted(config)}"
    )


def read_engine_config(engine_dir: Path | str) -> EngineConfigSummary:
    path = Path(engine_dir) / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EngineConfigError(
            f"{path} does not exist; point at the directory trtllm-build/build.py wrote"
        ) from None
    except json.JSONDecodeError as exc:
        raise EngineConfigError(f"{path} is not valid JSON ({exc}); rebuild the engine") from None
    if not isinstance(config, dict):
        raise EngineConfigError(f"{path} holds a {type(config).__name__}, expected a JSON object")
    return summarize_engine_config(config, path)


def expected_rank_files(summary: EngineConfigSummary, version: TrtllmVersion) -> list[str]:
    """Engine file names the runtime will open, one per rank, in rank order."""
    if summary.world_size != summary.tp_size * summary.pp_size:
        raise EngineConfigError(
            f"world_size {summary.world_size} != tp_size {summary.tp_size} × pp_size {summary.pp_size}"
        )
    if version.engine_naming == "rank":
        if summary.layout != "trtllm_build":
            raise EngineConfigError(
                f"TensorRT-LLM {version.version} names engines rank<R>.engine but this config is a legacy "
                "build.py config; build it with that version's trtllm-build"
            )
        return [f"rank{rank}.engine" for rank in range(summary.world_size)]
    if summary.layout != "legacy_build_py":
        raise EngineConfigError(
            f"TensorRT-LLM {version.version} expects a legacy build.py engine, but this config came from "
            f"trtllm-build {summary.trtllm_version}"
        )
    # examples/<model>/build.py@v0.5.0 get_engine_name.
    base = f"{summary.name}_{summary.dtype}_tp{summary.tp_size}"
    if summary.pp_size > 1:
        base += f"_pp{summary.pp_size}"
    return [f"{base}_rank{rank}.engine" for rank in range(summary.world_size)]
