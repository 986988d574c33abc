"""GPU quota pre-flight: does the compartment have the GPUs the deployment asks for, before anything is built.

The service limit of a Data Science GPU shape counts GPUs (ADS ads/aqua/ui.py@2.15.2 get_shape_availability
compares `available` with the shape's card count) and is read with
`LimitsClient.get_resource_availability("data-science", <limit name>, compartment_id)`
(oci/limits/limits_client.py@2.189.0). Limit names are data: each shape's `service_limit_name` in the shape
catalog (trtllm_oci/data/gpu_shapes.yaml), set only where Oracle's own code names it; for any other shape pass
the name (`gpu_limit_name`) - `oci limits definition list --service-name data-science` lists them - or the
check reports that it did not run.
"""

from __future__ import annotations

from dataclasses import dataclass

import oci

from trtllm_oci.cloud.errors import DeploymentLimitError
from trtllm_oci.errors import UnknownShapeError
from trtllm_oci.shapes import Shape, load_catalog

DATA_SCIENCE_SERVICE = "data-science"


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


def _catalog_shape(shape: str) -> Shape | None:
    try:
        return load_catalog().get(shape)
    except UnknownShapeError:
        return None


def gpus_per_instance(shape: str) -> int:
    """From the shape catalog (trtllm_oci/data/gpu_shapes.yaml); else the count in the name (VM.GPU.A10.2 -> 2)."""
    known = _catalog_shape(shape)
    if known is not None:
        return known.gpu_count
    tail = shape.rsplit(".", 1)[-1]
    return int(tail) if tail.isdigit() else 1


def gpu_limit_name(shape: str) -> str | None:
    """The catalog's Data Science service-limit name for `shape`; None where no Oracle source names one."""
    known = _catalog_shape(shape)
    return known.service_limit_name if known is not None else None


def check_gpu_quota(limits_client: oci.limits.LimitsClient, compartment_id: str, shape: str, instances: int, *,
                    limit_name: str | None = None) -> QuotaCheck:
    """Available GPUs under the shape's limit vs `instances` x the shape's GPUs; raise when they do not suffice."""
    needed = gpus_per_instance(shape) * instances
    name = limit_name or gpu_limit_name(shape)
    if name is None:
        return QuotaCheck(None, needed, None, (
            f"not checked: the shape catalog names no service limit for {shape}; pass its name (oci limits "
            f"definition list --service-name {DATA_SCIENCE_SERVICE}) to check it before the build"))
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
