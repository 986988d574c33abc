"""Stage: capacity plan, published as Prefect markdown and table artifacts."""

from __future__ import annotations

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from trtllm_oci.tasks.common import run_logger

from trtllm_oci import planner
from trtllm_oci.model_source import model_facts_for
from trtllm_oci.spec import ReleaseSpec


def artifact_key(text: str) -> str:
    """Prefect artifact keys allow only lowercase letters, digits and dashes."""
    import re

    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:100]


def plan_markdown(result: planner.Plan, architecture: str, alternatives: str | None) -> str:
    m = result.per_gpu
    verdict = "fits" if result.fits else "does NOT fit"
    lines = [
        f"# Capacity plan: {architecture} {verdict} on {result.shape}",
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
    if alternatives:
        lines += ["", "## What would fit", "", "```", alternatives, "```"]
    return "\n".join(lines)


@task(name="plan-capacity", task_run_name="plan-{spec.model.short_name}", persist_result=True)
def plan_capacity(spec: ReleaseSpec) -> planner.Plan | None:
    """Verdict for the spec's shape; None (and a log line) when the target names no GPU shape."""
    log = run_logger()
    shape = spec.shape
    if shape is None:
        log.info("no GPU shape in the target (local target without target.gpu_shape): nothing to plan against")
        return None
    facts = model_facts_for(spec.model)
    result = planner.plan(
        facts, shape, spec.quantization, spec.parallelism, spec.build, spec.serving.kv_cache_free_gpu_mem_fraction
    )
    alternatives = None if result.fits else planner.alternatives_text(facts, shape, spec.build)
    log.info("plan: %s", "; ".join(result.reasons))
    key = artifact_key(f"plan-{spec.release_id}")
    create_markdown_artifact(plan_markdown(result, facts.architecture, alternatives), key=key,
                             description=f"Capacity plan for {spec.release_id}")
    create_table_artifact(
        [{"item": k, "gib_per_gpu": v} for k, v in result.per_gpu.model_dump().items() if k.endswith("_gib")],
        key=f"{key}-table"[:100],
        description="Memory per GPU",
    )
    return result
