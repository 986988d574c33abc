"""Stage: build the TensorRT-LLM engines (or the CPU reference artifact) through the engine cache."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from trtllm_oci.tasks.common import run_logger

from trtllm_oci import planner
from trtllm_oci.build.trtllm import (
    BuildHost,
    build_reference_engine,
    build_trtllm_engine,
    refuse_if_it_will_not_fit,
)
from trtllm_oci.cache.local_store import EngineManifest
from trtllm_oci.cache.stores import open_engine_store
from trtllm_oci.hub.download import DownloadResult
from trtllm_oci.model_facts import load_model_facts
from trtllm_oci.spec import ReleaseSpec


@task(
    name="build-engine",
    task_run_name="build-{spec.release_id}",
    # A GPU build is not retried blindly: a failed 40-minute build usually fails the same way again.
    retries=0,
    timeout_seconds=12 * 3600,
    persist_result=True,
)
def build_engine_task(
    spec: ReleaseSpec,
    model: DownloadResult,
    plan: planner.Plan | None,
    host: BuildHost | None = None,
    force: bool = False,
) -> EngineManifest:
    log = run_logger()
    store = open_engine_store(spec.engine_cache)
    if spec.serving.backend == "reference":
        manifest, hit = build_reference_engine(spec, model, store, log.info)
    else:
        facts = load_model_facts(Path(model.local_dir))
        shape = spec.shape
        alternatives = planner.alternatives_text(facts, shape, spec.build) if plan is not None and not plan.fits else None
        refuse_if_it_will_not_fit(plan, alternatives, force)

        def oom_advice() -> str:
            if shape is None:
                return "Lower build.max_batch_size / max_num_tokens / max_seq_len, or quantize."
            return planner.alternatives_text(facts, shape, spec.build)

        manifest, hit = build_trtllm_engine(spec, model, facts.family, store, host or BuildHost(), log.info, oom_advice)
    log.info("engine %s: %s (%s)", "reused from cache" if hit else "built and cached", manifest.key, manifest.uri)
    return manifest.model_copy(update={"engine": {**manifest.engine, "cache_hit": hit}})
