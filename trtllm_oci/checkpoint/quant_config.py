"""Recognise a pre-quantized Hugging Face checkpoint the way TensorRT-LLM's PyTorch backend reads it.

TensorRT-LLM (`ModelConfig.from_pretrained` in `tensorrt_llm/_torch/model_config.py`) looks first for
ModelOpt's `hf_quant_config.json`, and only without it at `config.json`'s `quantization_config`, of which it
reads a few `quant_method`s and silently treats the rest as unquantized. This module reads the same two
files in the same order, so a checkpoint TensorRT-LLM would load wrong is refused here, before GPU time.
The facts (bytes per weight, GPU generations, accepted methods per version) are data:
`trtllm_oci/data/checkpoint_quant.yaml`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from trtllm_oci.errors import TrtllmOciError
from trtllm_oci.shapes import Gpu

HF_QUANT_CONFIG_FILENAME = "hf_quant_config.json"
CONFIG_FILENAME = "config.json"
MIXED_PRECISION_LAYERS_FILENAME = "quant_cfg.json"
MIXED_PRECISION = "MIXED_PRECISION"
DEFAULT_TRTLLM_VERSION = "1.2.1"
# ModelOpt names FP8 block-scaled weight-only "fp8_pb_wo"; TensorRT-LLM reads it as FP8_BLOCK_SCALES
# (load_modelopt_quant_config, same source as the data file).
_QUANT_ALGO_ALIASES = {"fp8_pb_wo": "FP8_BLOCK_SCALES"}


class CheckpointQuantError(TrtllmOciError, ValueError):
    """A checkpoint's quantization files cannot be read as TensorRT-LLM would read them."""


class UnknownQuantMethodError(CheckpointQuantError):
    """config.json names a quant_method (or hf_quant_config.json a quant_algo) nobody here knows."""


class UnsupportedQuantMethodError(CheckpointQuantError):
    """A known quantization format that this TensorRT-LLM version does not read."""


class QuantizationNotSupportedOnGpuError(CheckpointQuantError):
    """The checkpoint's quantization needs a newer GPU generation than the one chosen."""


class CheckpointQuantization(BaseModel):
    """What a checkpoint's quantization means for planning and serving."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: Literal["hf_quant_config.json", "config.json", "none"] = Field(
        description="The file the quantization was read from ('none': an unquantized checkpoint)")
    source_file: str | None = Field(default=None, description="Path of that file")
    quant_algo: str | None = Field(description="TensorRT-LLM QuantAlgo name (FP8, NVFP4, W4A16_AWQ, ...)")
    method: str = Field(description="The project's name: none, fp8, nvfp4, int4_awq, w4a8_awq, ...")
    weight_bytes: float | None = Field(
        description="Bytes per weight of the quantized linear layers, scales included; None = checkpoint dtype")
    kv_cache_quant_algo: str | None = None
    kv_cache_dtype: str = Field(default="auto", description="auto (model dtype), fp8, int8 or nvfp4")
    kv_cache_bytes: float | None = Field(default=None, description="Bytes per KV element; None = model dtype")
    min_compute_capability: str = Field(description="Oldest GPU generation that runs it, e.g. '8.9'")
    exclude_modules: tuple[str, ...] = ()
    group_size: int | None = None
    producer: str | None = Field(default=None, description="e.g. 'modelopt 0.47.0'")
    mixed_layer_algos: tuple[str, ...] = Field(
        default=(), description="For MIXED_PRECISION: the per-layer algos; weight_bytes is their maximum")

    @property
    def is_quantized(self) -> bool:
        return self.quant_algo is not None

    @property
    def min_sm(self) -> tuple[int, int]:
        return _parse_cc(self.min_compute_capability, "min_compute_capability")


# ------------------------------------------------------------------------------------------- data


class _AlgoFacts(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    weight_bytes: float | None
    min_compute_capability: str
    method: str


class _KvFacts(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    dtype: str
    bytes: float
    min_compute_capability: str


class _ConfigJsonMethod(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    quant_algo: str
    requires_weight_block_size: tuple[int, int] | None = None
    quant_algo_from_sm100: str | None = None


class _VersionFacts(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str
    config_json_quant_methods: dict[str, _ConfigJsonMethod]


class PtqMethodFacts(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    modelopt_config: str = Field(description="Name of the modelopt.torch.quantization preset, e.g. FP8_DEFAULT_CFG")
    quant_algo: str | None = Field(default=None, description="What the export writes as quant_algo")
    kv_cache_quant_algo: str | None = Field(default=None, description="What the export writes as kv_cache_quant_algo")


class PtqFacts(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    methods: dict[str, PtqMethodFacts]
    kv_cache: dict[str, PtqMethodFacts]


class QuantFacts(BaseModel):
    """The parsed `checkpoint_quant.yaml`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    quant_algos: dict[str, _AlgoFacts]
    kv_cache_quant_algos: dict[str, _KvFacts]
    trtllm_versions: dict[str, _VersionFacts]
    known_quant_methods: tuple[str, ...]
    modelopt_ptq: PtqFacts

    def version(self, trtllm_version: str) -> _VersionFacts:
        if trtllm_version not in self.trtllm_versions:
            raise CheckpointQuantError(
                f"TensorRT-LLM {trtllm_version!r} has no entry in trtllm_oci/data/checkpoint_quant.yaml "
                f"(entries: {', '.join(sorted(self.trtllm_versions))}); add the quant_methods its "
                "tensorrt_llm/_torch/model_config.py reads, with the source commit."
            )
        return self.trtllm_versions[trtllm_version]


@lru_cache(maxsize=1)
def quant_facts() -> QuantFacts:
    text = resources.files("trtllm_oci.data").joinpath("checkpoint_quant.yaml").read_text()
    return QuantFacts.model_validate(yaml.safe_load(text))


# ---------------------------------------------------------------------------------------- reading


def read_checkpoint_quantization(
    checkpoint_dir: str | Path, trtllm_version: str = DEFAULT_TRTLLM_VERSION
) -> CheckpointQuantization:
    """Read `checkpoint_dir`'s quantization as TensorRT-LLM `trtllm_version` would.

    Needs only the small JSON files (config.json, hf_quant_config.json, quant_cfg.json for mixed
    precision), so it runs on the files of a Hub repo before its weights are downloaded.
    """
    checkpoint_dir = Path(checkpoint_dir)
    modelopt_file = checkpoint_dir / HF_QUANT_CONFIG_FILENAME
    if modelopt_file.is_file():
        return from_hf_quant_config(_read_json(modelopt_file), source_file=str(modelopt_file),
                                    checkpoint_dir=checkpoint_dir)
    config_file = checkpoint_dir / CONFIG_FILENAME
    if not config_file.is_file():
        raise CheckpointQuantError(
            f"{checkpoint_dir} has neither {HF_QUANT_CONFIG_FILENAME} nor {CONFIG_FILENAME}; "
            "point at a Hugging Face checkpoint directory (the one holding config.json)."
        )
    return from_config_json(_read_json(config_file), source_file=str(config_file), trtllm_version=trtllm_version)


def from_hf_quant_config(
    document: Mapping[str, Any], *, source_file: str = HF_QUANT_CONFIG_FILENAME,
    checkpoint_dir: Path | None = None,
) -> CheckpointQuantization:
    """ModelOpt's `hf_quant_config.json`: `{"producer": {...}, "quantization": {"quant_algo": ..., ...}}`."""
    quantization = document.get("quantization")
    if not isinstance(quantization, Mapping):
        raise CheckpointQuantError(
            f"{source_file} has no 'quantization' object (keys: {sorted(document)}); ModelOpt writes "
            "{'quantization': {'quant_algo': ..., 'kv_cache_quant_algo': ..., 'exclude_modules': [...]}}."
        )
    facts = quant_facts()
    algo = _algo_name(quantization.get("quant_algo"), source_file)
    kv_algo = _kv_algo_name(quantization.get("kv_cache_quant_algo"), source_file)
    mixed: tuple[str, ...] = ()
    if algo == MIXED_PRECISION:
        mixed = _mixed_layer_algos(checkpoint_dir, quantization, source_file)
        weight_bytes, min_cc = _mixed_bytes_and_cc(mixed)
        method = "mixed_precision"
    elif algo is None:
        weight_bytes, min_cc, method = None, facts.quant_algos["NO_QUANT"].min_compute_capability, "none"
    else:
        algo_facts = facts.quant_algos[algo]
        weight_bytes, min_cc, method = algo_facts.weight_bytes, algo_facts.min_compute_capability, algo_facts.method
    return _result(
        source="hf_quant_config.json", source_file=source_file, quant_algo=algo, method=method,
        weight_bytes=weight_bytes, min_cc=min_cc, kv_algo=kv_algo,
        exclude_modules=tuple(quantization.get("exclude_modules") or ()),
        group_size=quantization.get("group_size"), producer=_producer(document), mixed=mixed,
    )


def from_config_json(
    config: Mapping[str, Any], *, source_file: str = CONFIG_FILENAME, trtllm_version: str = DEFAULT_TRTLLM_VERSION
) -> CheckpointQuantization:
    """config.json without a ModelOpt file: its `quantization_config`, read as `trtllm_version` reads it."""
    facts = quant_facts()
    quantization = config.get("quantization_config")
    if quantization is None:
        return CheckpointQuantization(
            source="none", source_file=source_file, quant_algo=None, method="none", weight_bytes=None,
            min_compute_capability=facts.quant_algos["NO_QUANT"].min_compute_capability,
        )
    if not isinstance(quantization, Mapping):
        raise CheckpointQuantError(f"{source_file}: quantization_config is {type(quantization).__name__}, "
                                   "not an object; fix or remove it.")
    method_name = quantization.get("quant_method")
    version = facts.version(trtllm_version)
    accepted = version.config_json_quant_methods
    if not isinstance(method_name, str) or method_name not in facts.known_quant_methods:
        raise UnknownQuantMethodError(
            f"{source_file}: quantization_config.quant_method {method_name!r} is unknown. Known: "
            f"{', '.join(facts.known_quant_methods)}; TensorRT-LLM {trtllm_version} reads "
            f"{_accepted_phrase(accepted)} there (or ModelOpt's {HF_QUANT_CONFIG_FILENAME}). Fix the value, "
            "or start from the unquantized checkpoint and quantize it with ModelOpt."
        )
    if method_name not in accepted:
        raise UnsupportedQuantMethodError(
            f"{source_file}: quant_method {method_name!r} is not read by TensorRT-LLM {trtllm_version}'s PyTorch "
            f"backend, which reads only {_accepted_phrase(accepted)} from config.json (or ModelOpt's "
            f"{HF_QUANT_CONFIG_FILENAME}); it would load the weights as unquantized and fail on the GPU. "
            f"Use a ModelOpt checkpoint (e.g. nvidia/*-FP8) or quantize the unquantized model with ModelOpt "
            f"(source: {version.source.split(',')[0]})."
        )
    rule = accepted[method_name]
    if rule.requires_weight_block_size is not None:
        block = quantization.get("weight_block_size")
        if not block or tuple(block) != tuple(rule.requires_weight_block_size):
            raise UnsupportedQuantMethodError(
                f"{source_file}: quant_method {method_name!r} with weight_block_size={block!r}: TensorRT-LLM "
                f"{trtllm_version} reads {method_name!r} only as block-scaled FP8 with weight_block_size "
                f"{list(rule.requires_weight_block_size)} (DeepSeek-V3 style); per-tensor FP8 must come as a "
                f"ModelOpt checkpoint with {HF_QUANT_CONFIG_FILENAME}."
            )
    algo_facts = facts.quant_algos[rule.quant_algo]
    min_cc = algo_facts.min_compute_capability
    if rule.quant_algo_from_sm100 is not None:
        # The algo depends on the GPU it lands on; the oldest GPU that runs either variant is the minimum.
        min_cc = min(min_cc, facts.quant_algos[rule.quant_algo_from_sm100].min_compute_capability,
                     key=lambda cc: _parse_cc(cc, "data"))
    group = quantization.get("group_size")
    if rule.requires_weight_block_size is not None:
        group = rule.requires_weight_block_size[0]
    excluded = quantization.get("modules_to_not_convert") or quantization.get("ignored_layers") or ()
    return _result(
        source="config.json", source_file=source_file, quant_algo=rule.quant_algo, method=algo_facts.method,
        weight_bytes=algo_facts.weight_bytes, min_cc=min_cc, kv_algo=None, exclude_modules=tuple(excluded),
        group_size=group, producer=None, mixed=(),
    )


# ------------------------------------------------------------------------------------------- GPUs


def check_runs_on(quantization: CheckpointQuantization, compute_capability: str, gpu_name: str = "this GPU") -> None:
    """Raise `QuantizationNotSupportedOnGpuError` if a GPU of `compute_capability` cannot run the checkpoint."""
    have = _parse_cc(compute_capability, "compute_capability")
    need_weights = quantization.min_sm
    if have < need_weights:
        raise QuantizationNotSupportedOnGpuError(
            f"the checkpoint is {quantization.quant_algo or quantization.method} (read from "
            f"{quantization.source_file}), which needs compute capability {quantization.min_compute_capability} "
            f"or newer ({_generation(quantization.min_compute_capability)}); {gpu_name} is {compute_capability}. "
            f"Pick a shape with a newer GPU, or use a checkpoint quantized for it "
            f"({_suggestion(have)})."
        )
    if quantization.kv_cache_quant_algo is not None:
        kv = quant_facts().kv_cache_quant_algos[quantization.kv_cache_quant_algo]
        if have < _parse_cc(kv.min_compute_capability, "data"):
            raise QuantizationNotSupportedOnGpuError(
                f"the checkpoint's KV cache is {quantization.kv_cache_quant_algo} (read from "
                f"{quantization.source_file}), which needs compute capability {kv.min_compute_capability} or newer; "
                f"{gpu_name} is {compute_capability}. Pick a newer GPU or a checkpoint without KV-cache "
                "quantization."
            )


def check_runs_on_gpu(quantization: CheckpointQuantization, gpu: Gpu) -> None:
    """`check_runs_on` for a `trtllm_oci.shapes.Gpu` of the shape catalog."""
    check_runs_on(quantization, gpu.compute_capability, gpu_name=gpu.name)


# ---------------------------------------------------------------------------------------- helpers


def _read_json(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text())
    except ValueError as exc:
        raise CheckpointQuantError(f"{path} is not valid JSON ({exc}); re-download the checkpoint.") from None
    if not isinstance(document, dict):
        raise CheckpointQuantError(f"{path} holds a JSON {type(document).__name__}, not an object.")
    return document


def _algo_name(value: Any, source_file: str) -> str | None:
    if value is None:
        return None
    facts = quant_facts()
    name = _QUANT_ALGO_ALIASES.get(value, value) if isinstance(value, str) else value
    if name == MIXED_PRECISION:
        return MIXED_PRECISION
    if not isinstance(name, str) or name not in facts.quant_algos or name == "NO_QUANT":
        known = [a for a in facts.quant_algos if a != "NO_QUANT"] + [MIXED_PRECISION]
        raise UnknownQuantMethodError(
            f"{source_file}: quantization.quant_algo {value!r} is unknown. Known (TensorRT-LLM QuantAlgo): "
            f"{', '.join(known)}. Fix the value or re-export the checkpoint with ModelOpt."
        )
    return name


def _kv_algo_name(value: Any, source_file: str) -> str | None:
    if value is None:
        return None
    known = quant_facts().kv_cache_quant_algos
    if value not in known:
        raise UnknownQuantMethodError(
            f"{source_file}: quantization.kv_cache_quant_algo {value!r} is unknown; TensorRT-LLM reads "
            f"{', '.join(known)} or null."
        )
    return str(value)


def _mixed_layer_algos(checkpoint_dir: Path | None, quantization: Mapping[str, Any], source_file: str) -> tuple[str, ...]:
    layers = quantization.get("quantized_layers")
    if layers is None and checkpoint_dir is not None:
        layers_file = checkpoint_dir / MIXED_PRECISION_LAYERS_FILENAME
        if layers_file.is_file():
            layers = _read_json(layers_file).get("quantized_layers")
    if not isinstance(layers, Mapping) or not layers:
        raise CheckpointQuantError(
            f"{source_file}: quant_algo MIXED_PRECISION needs the per-layer algos ('quantized_layers') in it or "
            f"in {MIXED_PRECISION_LAYERS_FILENAME} beside it; neither was found. Download {MIXED_PRECISION_LAYERS_FILENAME} too."
        )
    algos = sorted({_algo_name(cfg.get("quant_algo"), f"{source_file} quantized_layers") or "NO_QUANT"
                    for cfg in layers.values()})
    return tuple(algos)


def _mixed_bytes_and_cc(algos: tuple[str, ...]) -> tuple[float | None, str]:
    facts = quant_facts()
    quantized = [facts.quant_algos[a] for a in algos if a != "NO_QUANT"]
    # The planner must not under-count: the heaviest per-layer format stands for all of them.
    weight_bytes = max((f.weight_bytes or 2.0) for f in quantized) if quantized else None
    min_cc = max((f.min_compute_capability for f in quantized), key=lambda cc: _parse_cc(cc, "data"),
                 default=facts.quant_algos["NO_QUANT"].min_compute_capability)
    return weight_bytes, min_cc


def _result(*, source, source_file, quant_algo, method, weight_bytes, min_cc, kv_algo, exclude_modules,
            group_size, producer, mixed) -> CheckpointQuantization:
    kv = quant_facts().kv_cache_quant_algos.get(kv_algo) if kv_algo else None
    return CheckpointQuantization(
        source=source, source_file=source_file, quant_algo=quant_algo, method=method, weight_bytes=weight_bytes,
        kv_cache_quant_algo=kv_algo, kv_cache_dtype=kv.dtype if kv else "auto",
        kv_cache_bytes=kv.bytes if kv else None, min_compute_capability=min_cc,
        exclude_modules=exclude_modules, group_size=group_size, producer=producer, mixed_layer_algos=mixed,
    )


def _producer(document: Mapping[str, Any]) -> str | None:
    producer = document.get("producer")
    if isinstance(producer, Mapping) and producer.get("name"):
        return f"{producer['name']} {producer.get('version', '')}".strip()
    return None


def _accepted_phrase(accepted: Mapping[str, _ConfigJsonMethod]) -> str:
    parts = []
    for name, rule in accepted.items():
        block = f" with weight_block_size {list(rule.requires_weight_block_size)}" if rule.requires_weight_block_size else ""
        parts.append(f"{name!r}{block}")
    return ", ".join(parts)


def _parse_cc(value: str, what: str) -> tuple[int, int]:
    try:
        major, minor = str(value).split(".")
        return int(major), int(minor)
    except ValueError:
        raise CheckpointQuantError(f"{what} {value!r} is not a compute capability like '9.0'.") from None


_GENERATIONS = {(8, 0): "Ampere", (8, 6): "Ampere", (8, 9): "Ada", (9, 0): "Hopper", (10, 0): "Blackwell",
                (12, 0): "Blackwell workstation"}


def _generation(cc: str) -> str:
    return _GENERATIONS.get(_parse_cc(cc, "compute_capability"), f"SM {cc}")


def _suggestion(have: tuple[int, int]) -> str:
    runnable = sorted({f.method for f in quant_facts().quant_algos.values()
                       if f.method != "none" and _parse_cc(f.min_compute_capability, "data") <= have})
    return "this GPU runs: " + (", ".join(runnable) if runnable else "unquantized weights only")
