"""Flow `plan`: the capacity verdict for a release spec, as Prefect artifacts."""

from __future__ import annotations

from prefect import flow
from trtllm_oci.tasks.plan import plan_capacity

from trtllm_oci.planner import Plan
from trtllm_oci.spec import ReleaseSpec


@flow(name="plan", flow_run_name="plan-{spec.model.short_name}-{spec.quantization.method}-tp{spec.parallelism.tp}pp{spec.parallelism.pp}")
def plan(spec: ReleaseSpec) -> Plan | None:
    return plan_capacity(spec)
