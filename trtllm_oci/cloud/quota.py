"""GPU quota pre-flight: does the compartment have the GPUs the deployment asks for, before anything is built.

The service limit of a Data Science GPU shape counts GPUs (ADS ads/aqua/ui.py@2.15.2 get_shape_availability
compares `available` with the shape's card count) and is read with
`LimitsClient.get_resource_availability("data-science", <limit name>, compartment_id)`
(oci/limits/limits_client.py@2.189.0). Limit names are data: those below are the ones Oracle's own code names;
for any other shape pass the name (`gpu_limit_name`) - `oci limits definition list --service-name data-science`
lists them - or the check reports that it did not run.
"""

from __future__ import annotations

from dataclasses import dataclass

import oci

from trtllm_oci.cloud.errors import DeploymentLimitError

DATA_SCIENCE_SERVICE = "data-science"
# shape -> limit name. ds-gpu-a10-count: ADS ads/aqua/verify_policies/constants.py TEST_LIMIT_NAME and
# tests/unitary/with_extras/aqua/test_ui.py (VM.GPU.A10.1/.2); ds-gpu4-count: the same test, for BM.GPU4.8.
GPU_LIMIT_NAMES: dict[str, str] = {
    "VM.GPU.A10.1": "ds-gpu-a10-count",
    "VM.GPU.A10.2": "ds-gpu-a10-count",
    "BM.GPU.A10.4": "ds-gpu-a10-count",
    "BM.GPU4.8": "ds-gpu4-count",
}


@dataclass(frozen=True)
class QuotaCheck:
    limit_name: str | None
    needed_gpus: int
    available: int | None
    detail: str

    @property
    def ok(self) -> bool | None:
        if self.available is None:
            return None
        return self.available >= self.needed_gpus


def gpus_per_instance(shape: str) -> int:
    """From the shape catalog (trtllm_oci/data/gpu_shapes.yaml); else the count in the name (VM.GPU.A10.2 -> 2)."""
    from trtllm_oci.errors import UnknownShapeError
    from trtllm_oci.shapes import load_catalog

    try:
        return load_catalog().get(shape).gpu_count
    except UnknownShapeError:
        tail = shape.rsplit(".", 1)[-1]
        return int(tail) if tail.isdigit() else 1


def check_gpu_quota(limits_client: oci.limits.LimitsClient, compartment_id: str, shape: str, instances: int, *,
                    limit_name: str | None = None) -> QuotaCheck:
    """Available GPUs under the shape's limit vs `instances` x the shape's GPUs; raise when they do not suffice."""
    needed = gpus_per_instance(shape) * instances
    name = limit_name or GPU_LIMIT_NAMES.get(shape)
    if name is None:
        return QuotaCheck(None, needed, None, (
            f"not checked: no known service-limit name for {shape}; pass its name (oci limits definition list "
            f"--service-name {DATA_SCIENCE_SERVICE}) to check it before the build"))
    try:
        availability = limits_client.get_resource_availability(DATA_SCIENCE_SERVICE, name, compartment_id).data
    except oci.exceptions.ServiceError as exc:
        if exc.status in (401, 403, 404):
            return QuotaCheck(name, needed, None, (
                f"not checked: {exc.status} {exc.code} reading limit {name}; the checking identity needs "
                "'read resource-availability' in the compartment (oracle-samples ai-quick-actions/policies)"))
        raise
    available = int(availability.available or 0)
    check = QuotaCheck(name, needed, available, f"{needed} GPU(s) of {name} needed, {available} available")
    if not check.ok:
        raise DeploymentLimitError(
            f"{shape} x {instances} needs {needed} GPU(s) under service limit {name}, and compartment "
            f"{compartment_id} has {available} available (used {availability.used}). Request a service-limit "
            "increase, free GPUs, or lower the instance count / the autoscaling maximum.")
    return check
