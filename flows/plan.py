"""Flow `plan`: the capacity verdict for a release spec, as Prefect artifacts."""

from __future__ import annotations

from prefect import flow

from trtllm_oci.planner import Plan
from trtllm_oci.spec import ReleaseSpec
from trtllm_oci.tasks.plan import plan_capacity


@flow(name="plan", flow_run_name="plan-{spec.model.short_name}-{spec.quantization.method}-tp{spec.parallelism.tp}pp{spec.parallelism.pp}")
def plan(spec: ReleaseSpec) -> Plan | None:
    """Capacity plan for a release spec on its target shape (memory per GPU, KV cache room), as artifacts."""
    return plan_capacity(spec)
