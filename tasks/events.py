"""Events the pipeline emits, so other pipelines and automations can react (Prefect event triggers)."""

from __future__ import annotations

from typing import Any

from prefect.events import emit_event

from trtllm_oci.spec import ReleaseSpec

ENGINE_BUILT = "trtllm-oci.engine.built"
DEPLOYMENT_ACTIVE = "trtllm-oci.deployment.active"
BENCHMARK_DONE = "trtllm-oci.benchmark.done"
# The quality gate's verdict (passed / failed / failed (marked)) with each metric's drop and limit.
QUALITY_EVALUATED = "trtllm-oci.quality.evaluated"
# What another pipeline emits to start a release (see prefect.yaml's trigger on the release deployment).
MODEL_RELEASED = "model.released"


def release_resource(spec: ReleaseSpec) -> dict[str, str]:
    return {
        "prefect.resource.id": f"trtllm-oci.release.{spec.release_id}",
        "prefect.resource.name": spec.release_id,
        "trtllm-oci.model": spec.model.label,
    }


def emit_release_event(event: str, spec: ReleaseSpec, payload: dict[str, Any]) -> None:
    emit_event(event, resource=release_resource(spec), payload=payload)
