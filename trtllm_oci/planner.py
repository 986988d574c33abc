"""Capacity planner: will this model, quantized and split this way, fit this GPU shape?

Per GPU it adds weights (by quantization, split by tp and pp), activation/workspace memory sized from the
build limits, and runtime overhead; what is left, times kv_cache_free_gpu_mem_fraction, is the KV cache
(this is how the TensorRT-LLM runtime sizes it). The verdict is explained in words, and when it does not fit
the planner lists what would.
"""

from __future__ import annotations

import math
from functools import lru_cache
from importlib import resources
from typing import Any

from pydantic import BaseModel, ConfigDict

from trtllm_oci.build_options import (
    PYTORCH_QUANTIZATIONS,
    BuildLimits,
    KvCacheDtype,
    Parallelism,
    Quantization,
    QuantizationSpec,
    check_parallelism_fits,
    check_quantization_supported,
)
from trtllm_oci.model_facts import ModelFacts
from trtllm_oci.shapes import Shape, load_catalog, price_order, price_text
from trtllm_oci.yaml_input import load_table

GIB = 1024**3


@lru_cache(maxsize=1)
def planner_constants() -> dict[str, Any]:
    return load_table(resources.files("trtllm_oci.data").joinpath("planner.yaml").read_text())


class PerGpuMemory(BaseModel):
    model_config = ConfigDict(frozen=True)

    weights_gib: float
    activations_gib: float
    overhead_gib: float
    kv_cache_gib: float
    """KV cache the runtime would reserve: its budget, capped at what max_batch_size full sequences need."""
    kv_cache_demand_gib: float
    """KV cache for max_batch_size sequences of max_seq_len tokens."""
    kv_cache_per_token_kib: float
    total_gib: float
    memory_gib: float


class Plan(BaseModel):
    model_config = ConfigDict(frozen=True)

    shape: str
    gpu: str
    gpu_count: int
    quantization: Quantization
    kv_cache_dtype: KvCacheDtype
    tp: int
    pp: int
    limits: BuildLimits
    kv_cache_free_gpu_mem_fraction: float
    fits: bool
    reasons: list[str]
    per_gpu: PerGpuMemory
    max_concurrent_sequences: int
    price_per_hour_usd: float | None
    host_arch: str = "amd64"

    def to_json_dict(self) -> dict[str, Any]:
        data = self.model_dump(mode="json")
        data["gpu"] = {
            "name": self.gpu,
            "count": self.gpu_count,
            "memory_gib": self.per_gpu.memory_gib,
        }
        data["world_size"] = self.tp * self.pp
        return data


def _weight_bytes(quant: Quantization) -> float:
    return float(planner_constants()["weight_bytes"][quant.value])


def _kv_bytes(kv: KvCacheDtype) -> float:
    return float(planner_constants()["kv_cache_bytes"][kv.value])


def per_gpu_weight_bytes(facts: ModelFacts, quant: Quantization, tp: int, pp: int,
                         bytes_per_weight: float | None = None) -> float:
    """Weights on the busiest GPU.

    Layers are split into pp stages (the first gets the embedding, the last the lm_head), and every linear
    layer is split tp ways. The embedding is replicated on every TP rank: convert_checkpoint only shards it
    with --use_parallel_embedding, which is off by default. lm_head is vocab-parallel over tp.
    """
    dtype_bytes = _weight_bytes(Quantization.NONE)
    layers_per_stage = math.ceil(facts.num_layers / pp)
    per_weight = bytes_per_weight if bytes_per_weight is not None else _weight_bytes(quant)
    layer_bytes = layers_per_stage * facts.layer_params * per_weight / tp
    embedding = facts.embedding_params * dtype_bytes
    lm_head = facts.lm_head_params * dtype_bytes / tp
    if pp == 1:
        return layer_bytes + embedding + lm_head
    return layer_bytes + max(embedding, lm_head)


def kv_bytes_per_token_per_gpu(facts: ModelFacts, kv: KvCacheDtype, tp: int, pp: int) -> float:
    """2 (K and V) × layers on this stage × KV heads on this rank × head_dim × bytes.

    With fewer KV heads than tp ranks (GQA/MQA), each rank still holds one head: heads are replicated.
    """
    layers = math.ceil(facts.num_layers / pp)
    kv_heads = math.ceil(facts.num_kv_heads / tp)
    return 2 * layers * kv_heads * facts.head_dim * _kv_bytes(kv)


def activation_bytes(facts: ModelFacts, limits: BuildLimits, tp: int) -> float:
    c = planner_constants()["activation"]
    intermediate = facts.intermediate_size * facts.experts_per_token / tp
    per_token = c["act_dtype_bytes"] * (c["hidden_factor"] * facts.hidden_size + c["intermediate_factor"] * intermediate)
    logits = limits.max_batch_size * facts.vocab_size / tp * c["logits_dtype_bytes"]
    return limits.max_num_tokens * per_token + logits


def overhead_bytes(world_size: int, backend: str = "tensorrt") -> float:
    c = planner_constants()
    gib = c["runtime_overhead_gib"] + (c["multi_gpu_overhead_gib"] if world_size > 1 else 0.0)
    if backend == "pytorch":
        gib += c["pytorch_cuda_graph_reserve_gib"]
    return gib * GIB


def _tp_choices(facts: ModelFacts) -> list[int]:
    return [d for d in (1, 2, 4, 8, 16, 32, 64) if not _split_problem(facts, d)]


def _split_problem(facts: ModelFacts, tp: int) -> str | None:
    """Why tensor parallelism `tp` cannot split this model's attention, or None.

    Query heads are split evenly across the ranks; KV heads are split evenly when there are at least tp of
    them, and otherwise each is copied onto tp / kv_heads ranks, which needs tp to be a multiple of them
    (`dup_kv_weight` asserts tp_size % num_head == 0 in tensorrt_llm/models/llama/convert.py)."""
    if facts.num_attention_heads % tp:
        return f"tp={tp} does not divide the model's {facts.num_attention_heads} attention heads"
    kv = facts.num_kv_heads
    if kv >= tp and kv % tp:
        return f"tp={tp} does not divide the model's {kv} KV heads"
    if kv < tp and tp % kv:
        return f"tp={tp} is not a multiple of the model's {kv} KV heads (each KV head is copied onto tp/{kv} ranks)"
    return None


def layout_problems(facts: ModelFacts, parallelism: Parallelism) -> list[str]:
    """Why this model cannot be split this way (each problem in words, with the values that would work)."""
    problems = []
    ep = parallelism.ep
    if ep is not None and ep > 1 and not facts.is_moe:
        problems.append(f"parallelism.ep={ep} splits experts, but {facts.architecture} is a dense model (no "
                        "num_local_experts in config.json); remove parallelism.ep")
    elif ep is not None and facts.is_moe and facts.num_experts % ep:
        problems.append(f"parallelism.ep={ep} does not divide the model's {facts.num_experts} experts")
    split = _split_problem(facts, parallelism.tp)
    if split:
        problems.append(f"{split}; TensorRT-LLM splits attention heads evenly across tensor-parallel ranks, so "
                        f"pick tp among {_tp_choices(facts)}")
    if parallelism.pp > facts.num_layers:
        problems.append(f"pp={parallelism.pp} exceeds the model's {facts.num_layers} layers; each pipeline stage "
                        f"needs at least one layer, so pick pp ≤ {facts.num_layers}")
    return problems


def context_problem(facts: ModelFacts, limits: BuildLimits) -> str | None:
    """Why max_seq_len is longer than the model can attend over, or None.

    The context is max_position_embeddings times the rope scaling factor (the way TensorRT-LLM reads it,
    tensorrt_llm/builder.py `_init_max_seq_len`, which only warns that "the model accuracy might be affected";
    an engine built past it answers, with garbage, so it is refused here)."""
    if limits.max_seq_len <= facts.context_tokens:
        return None
    scaled = (f" ({facts.max_position_embeddings} positions × rope scaling {facts.context_scaling_factor:g})"
              if facts.context_scaling_factor != 1 else " (max_position_embeddings; no rope scaling in config.json)")
    return (f"max_seq_len={limits.max_seq_len} is longer than the {facts.context_tokens}-token context of this "
            f"{facts.architecture}{scaled}; lower max_seq_len to ≤ {facts.context_tokens} (and max_input_len below "
            "it), or use a checkpoint whose config.json declares rope scaling for longer contexts")


def plan(
    facts: ModelFacts,
    shape: Shape,
    quantization: QuantizationSpec,
    parallelism: Parallelism,
    limits: BuildLimits,
    kv_cache_free_gpu_mem_fraction: float = 0.9,
    backend: str = "tensorrt",
    bytes_per_weight: float | None = None,
) -> Plan:
    """Memory per GPU and a verdict in words for one (quantization, tp, pp) on one shape.

    `backend` "pytorch" (the LLM API) adds the CUDA-graph reserve to the runtime overhead and reads build.* as
    its runtime limits; `bytes_per_weight` is a pre-quantized checkpoint's real size per weight (scales
    included), used instead of the quantization method's."""
    quant, kv = quantization.method, quantization.kv_cache_dtype
    tp, pp = parallelism.tp, parallelism.pp
    reasons: list[str] = []
    fits = True

    for check in (lambda: check_parallelism_fits(parallelism, shape, "--shape"),
                  lambda: check_quantization_supported(quantization, shape, "--shape")):
        try:
            check()
        except ValueError as exc:
            fits = False
            reasons.append(str(exc))
    structural = layout_problems(facts, parallelism)
    if structural:
        fits = False
        reasons.extend(structural)

    memory = shape.gpu.memory_gib * GIB
    weights = per_gpu_weight_bytes(facts, quant, tp, pp, bytes_per_weight)
    activations = activation_bytes(facts, limits, tp)
    overhead = overhead_bytes(tp * pp, backend)
    kv_token = kv_bytes_per_token_per_gpu(facts, kv, tp, pp)
    free_after_fixed = memory - weights - activations - overhead
    kv_budget = max(0.0, free_after_fixed) * kv_cache_free_gpu_mem_fraction
    kv_demand = kv_token * limits.max_seq_len * limits.max_batch_size
    kv_reserved = min(kv_budget, kv_demand)
    max_sequences = int(kv_budget // (kv_token * limits.max_seq_len)) if kv_token else 0
    gpu_desc = f"{shape.gpu.name} ({shape.gpu.memory_gib:.1f} GiB)"

    if weights > memory:
        fits = False
        reasons.append(
            f"the weights alone need {weights / GIB:.1f} GiB per GPU ({quant.value}, tp={tp}, pp={pp}), more than "
            f"the {shape.gpu.memory_gib:.1f} GiB of one {shape.gpu.name}"
        )
    elif free_after_fixed <= 0:
        fits = False
        reasons.append(
            f"weights {weights / GIB:.1f} GiB + activations {activations / GIB:.1f} GiB + runtime "
            f"{overhead / GIB:.1f} GiB = {(weights + activations + overhead) / GIB:.1f} GiB per GPU leave no room "
            f"for the KV cache on a {gpu_desc}; lower build.max_num_tokens/max_batch_size or split further"
        )
    elif max_sequences < 1:
        fits = False
        reasons.append(
            f"after weights ({weights / GIB:.1f} GiB), activations ({activations / GIB:.1f} GiB) and runtime "
            f"({overhead / GIB:.1f} GiB), the KV cache gets {kv_budget / GIB:.2f} GiB per GPU, less than one "
            f"sequence of {limits.max_seq_len} tokens needs ({kv_token * limits.max_seq_len / GIB:.2f} GiB); "
            f"lower max_seq_len, quantize the KV cache, or split further"
        )
    if fits:
        reasons.append(
            f"fits: {weights / GIB:.1f} GiB weights + {activations / GIB:.1f} GiB activations + "
            f"{overhead / GIB:.1f} GiB runtime per GPU leave {kv_budget / GIB:.1f} GiB of KV cache on a {gpu_desc}, "
            f"room for {max_sequences} concurrent sequences of {limits.max_seq_len} tokens"
        )
        if max_sequences < limits.max_batch_size:
            reasons.append(
                f"the KV cache holds {max_sequences} of the {limits.max_batch_size} sequences build.max_batch_size "
                f"allows at full length; the runtime queues the rest (shorter sequences fit more)"
            )

    total = weights + activations + overhead + kv_reserved
    return Plan(
        shape=shape.name,
        gpu=shape.gpu.name,
        gpu_count=shape.gpu_count,
        quantization=quant,
        kv_cache_dtype=kv,
        tp=tp,
        pp=pp,
        limits=limits,
        kv_cache_free_gpu_mem_fraction=kv_cache_free_gpu_mem_fraction,
        fits=fits,
        reasons=reasons,
        per_gpu=PerGpuMemory(
            weights_gib=round(weights / GIB, 3),
            activations_gib=round(activations / GIB, 3),
            overhead_gib=round(overhead / GIB, 3),
            kv_cache_gib=round(kv_reserved / GIB, 3),
            kv_cache_demand_gib=round(kv_demand / GIB, 3),
            kv_cache_per_token_kib=round(kv_token / 1024, 3),
            total_gib=round(total / GIB, 3),
            memory_gib=shape.gpu.memory_gib,
        ),
        max_concurrent_sequences=max_sequences,
        price_per_hour_usd=shape.price_per_hour_usd,
        host_arch=shape.host_arch,
    )


def _parallel_layouts(gpu_count: int) -> list[tuple[int, int]]:
    sizes = [w for w in (1, 2, 4, 8, 16) if w <= gpu_count]
    return [(tp, w // tp) for w in sizes for tp in sizes if w % tp == 0]


def candidates(
    facts: ModelFacts,
    shapes: list[Shape] | None = None,
    limits: BuildLimits | None = None,
    quantizations: list[Quantization] | None = None,
    kv_cache_dtype: KvCacheDtype = KvCacheDtype.AUTO,
    kv_cache_free_gpu_mem_fraction: float = 0.9,
    backend: str = "tensorrt",
) -> list[Plan]:
    """Every feasible (shape, quantization, tp, pp), cheapest first (unpriced shapes last), then least lossy,
    then fewest GPUs.
    The pytorch backend considers only what ModelOpt makes for it (fp8, nvfp4 on Blackwell, AWQ)."""
    limits = limits or BuildLimits()
    shapes = shapes if shapes is not None else list(load_catalog().shapes.values())
    order = planner_constants()["quality_order"]
    found: list[Plan] = []
    for shape in shapes:
        default = list(PYTORCH_QUANTIZATIONS) if backend == "pytorch" else [
            q for q in Quantization if q is not Quantization.NVFP4]
        for quant in quantizations or default:
            if quant.needs_fp8_hardware and not shape.gpu.supports_fp8:
                continue
            if kv_cache_dtype is KvCacheDtype.FP8 and not shape.gpu.supports_fp8:
                continue
            for tp, pp in _parallel_layouts(shape.gpu_count):
                p = plan(
                    facts,
                    shape,
                    QuantizationSpec(method=quant, kv_cache_dtype=kv_cache_dtype),
                    Parallelism(tp=tp, pp=pp),
                    limits,
                    kv_cache_free_gpu_mem_fraction,
                    backend,
                )
                if p.fits:
                    found.append(p)
    found.sort(
        key=lambda p: (price_order(p.price_per_hour_usd), order.index(p.quantization.value), p.tp * p.pp, p.pp,
                       -p.max_concurrent_sequences)
    )
    return found


def alternatives_text(facts: ModelFacts, shape: Shape, limits: BuildLimits, limit: int = 5) -> str:
    """What would fit instead, in words: used by the plan verdict and by the build's out-of-memory error."""
    same_shape = candidates(facts, [shape], limits)[:limit]
    elsewhere = [p for p in candidates(facts, None, limits) if p.shape != shape.name][:limit]
    lines = []
    if same_shape:
        lines.append(f"On {shape.name} these fit:")
        lines += [f"  - {describe(p)}" for p in same_shape]
    else:
        lines.append(f"Nothing fits on {shape.name} with these build limits.")
    if elsewhere:
        lines.append("Cheapest options on other shapes:")
        lines += [f"  - {describe(p)}" for p in elsewhere]
    return "\n".join(lines)


def describe(p: Plan) -> str:
    return (
        f"{p.shape} quant={p.quantization.value} tp={p.tp} pp={p.pp}: {p.per_gpu.weights_gib:.1f} GiB weights/GPU, "
        f"{p.max_concurrent_sequences} sequences of {p.limits.max_seq_len} tokens, {price_text(p.price_per_hour_usd)}"
        + ("" if p.host_arch == "amd64" else f" ({p.host_arch} host: the serving image needs a linux/{p.host_arch} build)")
    )
