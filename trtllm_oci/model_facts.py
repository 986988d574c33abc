"""Model facts read from a Hugging Face ``config.json``: shapes, parameter counts and KV-cache size.

The planner sizes engines and picks tp/pp from these numbers, so every weight is counted the way the
upstream modeling code creates it (transformers:src/transformers/models/<family>/modeling_<family>.py@v5.23.0):
attention projections and their biases, MLP or MoE experts plus router, every norm, the embedding and
the LM head. ``total_params`` matches ``PreTrainedModel.num_parameters()`` (tied weights counted once);
``lm_head_params`` is reported even when tied because TensorRT-LLM engines store the output projection.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from trtllm_oci.errors import InputError

CONFIG_FILENAME = "config.json"


class UnsupportedArchitectureError(InputError):
    """config.json names an architecture this project cannot plan or build."""


class ModelConfigError(InputError):
    """config.json is missing, unreadable, or lacks a key the facts need."""


class ModelFacts(BaseModel):
    model_config = ConfigDict(frozen=True)

    architecture: str
    family: str
    num_layers: int = Field(gt=0)
    hidden_size: int = Field(gt=0)
    num_attention_heads: int = Field(gt=0)
    num_kv_heads: int = Field(gt=0)
    head_dim: int = Field(gt=0)
    intermediate_size: int = Field(gt=0)
    vocab_size: int = Field(gt=0)
    max_position_embeddings: int = Field(gt=0)
    context_scaling_factor: float = Field(
        default=1.0, ge=1.0, description="How far rope scaling stretches max_position_embeddings (1: not at all)")
    num_experts: int = Field(gt=0)
    experts_per_token: int = Field(gt=0)
    tie_word_embeddings: bool
    torch_dtype: str
    embedding_params: int = Field(gt=0)
    lm_head_params: int = Field(gt=0)
    layer_params: int = Field(gt=0)
    layer_active_params: int = Field(gt=0)
    total_params: int = Field(gt=0)
    active_params: int = Field(gt=0)

    @property
    def is_moe(self) -> bool:
        return self.num_experts > 1

    @property
    def context_tokens(self) -> int:
        """The longest sequence the model supports: max_position_embeddings times its rope scaling factor."""
        return math.ceil(self.max_position_embeddings * self.context_scaling_factor)

    def kv_bytes_per_token(self, kv_bytes: float) -> float:
        """K and V for one token across all layers, at ``kv_bytes`` bytes per element (2 fp16, 1 fp8)."""
        if kv_bytes <= 0:
            raise InputError(f"kv_bytes must be > 0 (2 for fp16/bf16, 1 for fp8/int8), got {kv_bytes}")
        return 2 * self.num_layers * self.num_kv_heads * self.head_dim * kv_bytes


@dataclass(frozen=True)
class _Shape:
    """Everything the parameter count depends on, in one family-independent form."""

    num_layers: int
    hidden_size: int
    num_attention_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    max_position_embeddings: int
    num_experts: int
    experts_per_token: int
    tie_word_embeddings: bool
    torch_dtype: str
    gated_mlp: bool  # SwiGLU gate/up/down (3 matrices) vs. up/down (2 matrices)
    qkv_bias: bool
    o_bias: bool
    mlp_bias: bool
    norms_per_layer: int
    norm_has_bias: bool  # LayerNorm (weight + bias) vs. RMSNorm (weight only)


class _ConfigReader:
    """Reads keys from one config.json, naming the file and key in every error."""

    def __init__(self, config: Mapping[str, Any], source: str) -> None:
        self._config = config
        self.source = source

    def required(self, *names: str) -> Any:
        for name in names:
            if self._config.get(name) is not None:
                return self._config[name]
        wanted = " or ".join(repr(n) for n in names)
        raise ModelConfigError(
            f"{self.source} has no {wanted}; it is required to size the model. "
            f"Use the config.json published with the checkpoint, unmodified."
        )

    def optional(self, *names: str, default: Any) -> Any:
        for name in names:
            if self._config.get(name) is not None:
                return self._config[name]
        return default

    def positive_int(self, *names: str, default: int | None = None) -> int:
        value = self.required(*names) if default is None else self.optional(*names, default=default)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ModelConfigError(f"{self.source}: {names[0]!r} must be a positive integer, got {value!r}")
        return value

    def dtype(self) -> str:
        # transformers >= 4.56 writes "dtype"; older checkpoints "torch_dtype". A config without either was
        # saved in float32, which is what transformers loads it as.
        value = self.optional("torch_dtype", "dtype", default="float32")
        if not isinstance(value, str):
            raise ModelConfigError(f"{self.source}: 'torch_dtype' must be a string such as 'bfloat16'")
        return value.removeprefix("torch.")

    def head_dim(self, hidden_size: int, num_heads: int) -> int:
        explicit = self.optional("head_dim", default=None)
        if explicit is not None:
            return self.positive_int("head_dim")
        if hidden_size % num_heads:
            raise ModelConfigError(
                f"{self.source}: hidden_size {hidden_size} is not divisible by {num_heads} attention heads "
                f"and there is no 'head_dim' key to say the head size"
            )
        return hidden_size // num_heads


@dataclass(frozen=True)
class _LlamaLikeRules:
    """Per-family constants of the Llama-shaped decoders (RMSNorm, SwiGLU, separate q/k/v/o)."""

    default_max_positions: int  # the family's transformers config default, used when the key is absent
    qkv_bias_key: str | None  # config key switching q/k/v bias on; None: fixed by qkv_bias_fixed
    qkv_bias_fixed: bool = False
    o_bias_key: str | None = None
    mlp_bias_key: str | None = None
    moe: bool = False


# Defaults and bias switches from transformers:src/transformers/models/<family>/{configuration,modeling}_*.py@v5.23.0:
# Llama's attention_bias covers q/k/v/o and mlp_bias gate/up/down; Qwen2 hard-codes bias on q/k/v only.
_LLAMA_LIKE: dict[str, _LlamaLikeRules] = {
    "llama": _LlamaLikeRules(
        2048, qkv_bias_key="attention_bias", o_bias_key="attention_bias", mlp_bias_key="mlp_bias"
    ),
    "mistral": _LlamaLikeRules(4096 * 32, qkv_bias_key=None),
    "mixtral": _LlamaLikeRules(4096 * 32, qkv_bias_key=None, moe=True),
    "qwen2": _LlamaLikeRules(32768, qkv_bias_key=None, qkv_bias_fixed=True),
}


def _read_llama_like(family: str, cfg: _ConfigReader) -> _Shape:
    rules = _LLAMA_LIKE[family]
    hidden = cfg.positive_int("hidden_size")
    heads = cfg.positive_int("num_attention_heads")
    # A config without num_key_value_heads predates GQA: every head has its own K/V (transformers default).
    kv_heads = cfg.positive_int("num_key_value_heads", default=heads)
    experts = cfg.positive_int("num_local_experts") if rules.moe else 1
    per_token = cfg.positive_int("num_experts_per_tok") if rules.moe else 1
    if per_token > experts:
        raise ModelConfigError(
            f"{cfg.source}: num_experts_per_tok {per_token} exceeds num_local_experts {experts}"
        )

    def flag(key: str | None, fixed: bool = False) -> bool:
        return bool(cfg.optional(key, default=False)) if key else fixed

    return _Shape(
        num_layers=cfg.positive_int("num_hidden_layers"),
        hidden_size=hidden,
        num_attention_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=cfg.head_dim(hidden, heads),
        intermediate_size=cfg.positive_int("intermediate_size"),
        vocab_size=cfg.positive_int("vocab_size"),
        max_position_embeddings=cfg.positive_int(
            "max_position_embeddings", default=rules.default_max_positions
        ),
        num_experts=experts,
        experts_per_token=per_token,
        tie_word_embeddings=bool(cfg.optional("tie_word_embeddings", default=False)),
        torch_dtype=cfg.dtype(),
        gated_mlp=True,
        qkv_bias=flag(rules.qkv_bias_key, rules.qkv_bias_fixed),
        o_bias=flag(rules.o_bias_key),
        mlp_bias=flag(rules.mlp_bias_key),
        norms_per_layer=2,
        norm_has_bias=False,
    )


def _read_falcon(family: str, cfg: _ConfigReader) -> _Shape:
    """Falcon in both spellings: FalconForCausalLM (transformers) and RWForCausalLM (tiiuae remote code).

    Rules follow transformers:src/transformers/models/falcon/modeling_falcon.py@v5.23.0 (FalconAttention, FalconDecoderLayer):
    the new decoder architecture uses num_kv_heads and two parallel norms (ln_attn, ln_mlp); the old one
    has one K/V head when multi_query is set and a single input_layernorm when parallel_attn is set.
    """
    hidden = cfg.positive_int("hidden_size", "n_embed")
    heads = cfg.positive_int("num_attention_heads", "n_head")
    # RW configs have no new_decoder_architecture key: model_type "RefinedWeb" (Falcon-40B) ran the new
    # decoder, "RefinedWebModel" (Falcon-7B) the old one. Same split as text-generation-inference
    # server/text_generation_server/models/custom_modeling/flash_rw_modeling.py (FlashRWLargeLayer).
    new_arch = bool(
        cfg.optional(
            "new_decoder_architecture", default=cfg.optional("model_type", default="") == "RefinedWeb"
        )
    )
    multi_query = bool(cfg.optional("multi_query", default=True))
    parallel_attn = bool(cfg.optional("parallel_attn", default=True))
    if new_arch:
        kv_heads = cfg.positive_int("num_kv_heads", "n_head_kv", default=heads)
    else:
        # The old decoder's fused QKV is hidden + 2*head_dim wide with multi_query, else 3*hidden:
        # num_kv_heads is ignored there.
        kv_heads = 1 if multi_query else heads
    if not parallel_attn:
        norms = 2
    else:
        norms = cfg.positive_int("num_ln_in_parallel_attn", default=2 if new_arch else 1)
    bias = bool(cfg.optional("bias", default=False))
    return _Shape(
        num_layers=cfg.positive_int("num_hidden_layers", "n_layer"),
        hidden_size=hidden,
        num_attention_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=cfg.head_dim(hidden, heads),
        intermediate_size=cfg.positive_int("ffn_hidden_size", default=4 * hidden),
        vocab_size=cfg.positive_int("vocab_size"),
        max_position_embeddings=cfg.positive_int("max_position_embeddings", default=2048),
        num_experts=1,
        experts_per_token=1,
        tie_word_embeddings=bool(cfg.optional("tie_word_embeddings", default=True)),
        torch_dtype=cfg.dtype(),
        gated_mlp=False,
        qkv_bias=bias,
        o_bias=bias,
        mlp_bias=bias,
        norms_per_layer=norms,
        norm_has_bias=True,
    )


_Reader = Callable[[str, _ConfigReader], _Shape]

# HF "architectures" entry -> (family, reader).
_ARCHITECTURES: dict[str, tuple[str, _Reader]] = {
    "LlamaForCausalLM": ("llama", _read_llama_like),
    "MistralForCausalLM": ("mistral", _read_llama_like),
    "MixtralForCausalLM": ("mixtral", _read_llama_like),
    "Qwen2ForCausalLM": ("qwen2", _read_llama_like),
    "FalconForCausalLM": ("falcon", _read_falcon),
    "RWForCausalLM": ("falcon", _read_falcon),
}

SUPPORTED_ARCHITECTURES: tuple[str, ...] = tuple(sorted(_ARCHITECTURES))
SUPPORTED_FAMILIES: tuple[str, ...] = tuple(sorted({family for family, _ in _ARCHITECTURES.values()}))


def _count(shape: _Shape) -> dict[str, int]:
    h = shape.hidden_size
    q_out = shape.num_attention_heads * shape.head_dim
    kv_out = shape.num_kv_heads * shape.head_dim
    attention = h * (q_out + 2 * kv_out) + q_out * h
    attention += (q_out + 2 * kv_out) * shape.qkv_bias + h * shape.o_bias

    inter = shape.intermediate_size
    up_matrices = 2 if shape.gated_mlp else 1
    expert = (up_matrices + 1) * h * inter + (up_matrices * inter + h) * shape.mlp_bias
    router = h * shape.num_experts if shape.num_experts > 1 else 0

    norm = h * (2 if shape.norm_has_bias else 1)
    shared = attention + router + shape.norms_per_layer * norm

    embedding = shape.vocab_size * h
    lm_head = shape.vocab_size * h
    outside_layers = embedding + norm + (0 if shape.tie_word_embeddings else lm_head)
    layer = shared + shape.num_experts * expert
    layer_active = shared + shape.experts_per_token * expert
    return {
        "embedding_params": embedding,
        "lm_head_params": lm_head,
        "layer_params": layer,
        "layer_active_params": layer_active,
        "total_params": outside_layers + shape.num_layers * layer,
        "active_params": outside_layers + shape.num_layers * layer_active,
    }


# Rope types whose checkpoints already state the extended context in max_position_embeddings: TensorRT-LLM
# counts them with factor 1 (tensorrt_llm/builder.py `_init_max_seq_len`, NVIDIA/TensorRT-LLM@65f1d15).
_ROPE_TYPES_WITHOUT_FACTOR = ("su", "longrope", "llama3")


def _context_scaling_factor(cfg: _ConfigReader) -> float:
    """The rope scaling factor the way TensorRT-LLM applies it to max_position_embeddings (transformers 4
    writes `rope_scaling`, transformers 5 `rope_parameters`)."""
    scaling = cfg.optional("rope_scaling", "rope_parameters", default=None)
    if not isinstance(scaling, Mapping):
        return 1.0
    kind = scaling.get("type", scaling.get("rope_type"))
    factor = scaling.get("factor", 1.0)
    if kind in _ROPE_TYPES_WITHOUT_FACTOR:
        return 1.0
    if isinstance(factor, bool) or not isinstance(factor, int | float) or not math.isfinite(factor) or factor < 1:
        raise ModelConfigError(f"{cfg.source}: rope scaling 'factor' must be a number ≥ 1, got {factor!r}")
    return float(factor)


def facts_from_config(config: Mapping[str, Any], *, source: str = CONFIG_FILENAME) -> ModelFacts:
    """Facts from a parsed config.json. ``source`` names the file in error messages."""
    if not isinstance(config, Mapping):
        raise ModelConfigError(f"{source} must hold a JSON object, got {type(config).__name__}")
    architectures = config.get("architectures")
    if not architectures or not isinstance(architectures, list):
        raise ModelConfigError(
            f"{source} has no 'architectures' list, so the model class is unknown; "
            f"supported: {', '.join(SUPPORTED_ARCHITECTURES)}"
        )
    architecture = architectures[0]
    if architecture not in _ARCHITECTURES:
        raise UnsupportedArchitectureError(
            f"{source} declares architecture {architecture!r}, which trtllm-oci does not support; "
            f"supported architectures: {', '.join(SUPPORTED_ARCHITECTURES)}"
        )
    family, read = _ARCHITECTURES[architecture]
    reader = _ConfigReader(config, source)
    shape = read(family, reader)
    return ModelFacts(
        architecture=architecture,
        family=family,
        num_layers=shape.num_layers,
        hidden_size=shape.hidden_size,
        num_attention_heads=shape.num_attention_heads,
        num_kv_heads=shape.num_kv_heads,
        head_dim=shape.head_dim,
        intermediate_size=shape.intermediate_size,
        vocab_size=shape.vocab_size,
        max_position_embeddings=shape.max_position_embeddings,
        context_scaling_factor=_context_scaling_factor(reader),
        num_experts=shape.num_experts,
        experts_per_token=shape.experts_per_token,
        tie_word_embeddings=shape.tie_word_embeddings,
        torch_dtype=shape.torch_dtype,
        **_count(shape),
    )


def names_local_model(text: str) -> bool:
    """Whether a `--model` value means a local directory rather than a Hugging Face repo id: an existing path,
    a path-looking string, or a path whose parent directory exists here (a mistyped `models/llama-7b` must
    read as a missing directory, not as a Hub lookup)."""
    path = Path(text).expanduser()
    return path.exists() or text.startswith((".", "/", "~")) or (str(path.parent) != "." and path.parent.is_dir())


def load_model_facts(path: str | Path) -> ModelFacts:
    """Facts from a config.json file, or from a model directory (e.g. a snapshot_download) holding one."""
    path = Path(path)
    config_path = path / CONFIG_FILENAME if path.is_dir() else path
    if not config_path.is_file():
        where = f"directory {path}" if path.is_dir() else f"path {path}"
        raise ModelConfigError(
            f"No {CONFIG_FILENAME} at {where}; point at the downloaded Hugging Face model directory "
            f"(the one holding {CONFIG_FILENAME} and the *.safetensors files) or at the file itself"
        )
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelConfigError(f"Cannot read {config_path} as JSON: {exc}") from exc
    return facts_from_config(config, source=str(config_path))
