"""The capacity plan of a release: the verdict on its target shape, what would fit instead, and the
markdown the plan stage publishes."""

from __future__ import annotations

from pydantic import BaseModel

from trtllm_oci import planner
from trtllm_oci.checkpoint.quant_config import CheckpointQuantization, check_runs_on_gpu
from trtllm_oci.model_facts import ModelFacts
from trtllm_oci.spec import ReleaseSpec


class ReleasePlan(BaseModel):
    """The planner's verdict (None when the target names no GPU shape) and, when it does not fit, what would."""

    plan: planner.Plan | None
    architecture: str
    alternatives: str | None = None


def plan_release(spec: ReleaseSpec, facts: ModelFacts, existing: CheckpointQuantization | None = None) -> ReleasePlan:
    """`existing`: how a pytorch release's checkpoint is quantized already (release.model.checkpoint_quantization);
    its real bytes per weight are planned, and a quantization the target GPU cannot run is refused here."""
    shape = spec.shape
    if shape is None:
        return ReleasePlan(plan=None, architecture=facts.architecture)
    backend = "pytorch" if spec.serving.backend == "pytorch" else "tensorrt"
    bytes_per_weight = None
    if backend == "pytorch" and existing is not None and existing.is_quantized:
        check_runs_on_gpu(existing, shape.gpu)  # NVFP4 below Blackwell, FP8 below SM 89: refused here
        bytes_per_weight = existing.weight_bytes
    result = planner.plan(facts, shape, spec.quantization, spec.parallelism, spec.build,
                          spec.serving.kv_cache_free_gpu_mem_fraction, backend, bytes_per_weight)
    alternatives = None if result.fits else planner.alternatives_text(facts, shape, spec.build)
    return ReleasePlan(plan=result, architecture=facts.architecture, alternatives=alternatives)


def oom_advice(spec: ReleaseSpec, facts: ModelFacts) -> str:
    """What to change after a build ran out of memory: layouts that fit the shape, or the general levers."""
    shape = spec.shape
    if shape is None:
        return "Lower build.max_batch_size / max_num_tokens / max_seq_len, or quantize."
    return planner.alternatives_text(facts, shape, spec.build)


def plan_markdown(release_plan: ReleasePlan) -> str:
    result = release_plan.plan
    assert result is not None
    m = result.per_gpu
    verdict = "fits" if result.fits else "does NOT fit"
    lines = [
        f"# Capacity plan: {release_plan.architecture} {verdict} on {result.shape}",
        "",
        f"**{result.quantization.value}**, tp={result.tp}, pp={result.pp}, KV cache {result.kv_cache_dtype.value}, "
        f"max_seq_len {result.limits.max_seq_len}, max_batch_size {result.limits.max_batch_size}",
        "",
        "| per GPU | GiB |",
        "|---|---|",
        f"| weights | {m.weights_gib:.2f} |",
        f"| activations / workspace | {m.activations_gib:.2f} |",
        f"| runtime overhead | {m.overhead_gib:.2f} |",
        f"| KV cache ({m.kv_cache_per_token_kib:.0f} KiB/token) | {m.kv_cache_gib:.2f} |",
        f"| **total** | **{m.total_gib:.2f}** of {m.memory_gib:.2f} |",
        "",
        f"Room for **{result.max_concurrent_sequences}** concurrent sequences of {result.limits.max_seq_len} tokens.",
        "",
        *[f"- {r}" for r in result.reasons],
    ]
    if release_plan.alternatives:
        lines += ["", "## What would fit", "", "```", release_plan.alternatives, "```"]
    return "\n".join(lines)
