"""Stage: capacity plan, published as Prefect markdown and table artifacts."""

from __future__ import annotations

import re

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from trtllm_oci import planner
from trtllm_oci.release.model import chat_template_present, checkpoint_quantization, model_facts
from trtllm_oci.release.plan import chat_uses, plan_markdown, plan_release
from trtllm_oci.settings import current_settings
from trtllm_oci.spec import ReleaseSpec
from trtllm_oci.tasks.common import hf_token, run_logger


def artifact_key(text: str) -> str:
    """Prefect artifact keys allow only lowercase letters, digits and dashes."""
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:100]


@task(name="plan-capacity", task_run_name="plan-{spec.model.short_name}", persist_result=True)
def plan_capacity(spec: ReleaseSpec) -> planner.Plan | None:
    """Verdict for the spec's shape; None (and a log line) when the target names no GPU shape. Either way
    the release's checks on the model's config.json run first (heads, layers, context, version table)."""
    log = run_logger()
    settings = current_settings()
    token = hf_token(settings)
    existing = (checkpoint_quantization(spec.model, settings, token, spec.trtllm_version)
                if spec.serving.backend == "pytorch" else None)
    chat_template = chat_template_present(spec.model, settings, token) if chat_uses(spec) else None
    release_plan = plan_release(spec, model_facts(spec.model, settings, token), existing, chat_template)
    result = release_plan.plan
    if result is None:
        log.info("no GPU shape in the target (local target without target.gpu_shape): nothing to plan against")
        return None
    log.info("plan: %s", "; ".join(result.reasons))
    key = artifact_key(f"plan-{spec.release_id}")
    create_markdown_artifact(plan_markdown(release_plan), key=key, description=f"Capacity plan for {spec.release_id}")
    create_table_artifact(
        [{"item": k, "gib_per_gpu": v} for k, v in result.per_gpu.model_dump().items() if k.endswith("_gib")],
        key=f"{key}-table"[:100],
        description="Memory per GPU",
    )
    return result
