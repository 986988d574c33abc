"""Every service limit a Model Deployment request must meet, checked at once and before any GPU time.

`preflight_checks` is what the plan stage calls before download, build and push (issue 15: a port-8446 or an
8-GPU spec must not burn a build and a ~45 GB push first). Without `clients` it makes no API call; with them it
also asks the service whether the shape is offered in the compartment and whether the GPU quota suffices.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import oci
import oci.regions

from trtllm_oci.cloud import limits
from trtllm_oci.cloud.artifact import ArtifactRouteChoice
from trtllm_oci.cloud.clients import OciClients
from trtllm_oci.cloud.deployment import (
    IMAGE_DIGEST_PLACEHOLDER,
    DeploymentRequest,
    _log_details,
    build_environment_variables,
    max_instances,
)
from trtllm_oci.cloud.errors import DeploymentLimitError
from trtllm_oci.cloud.ocids import check_ocid
from trtllm_oci.cloud.quota import check_gpu_quota
from trtllm_oci.errors import TrtllmOciError


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool | None  # None: not run (says why)
    detail: str


@dataclass
class PreflightReport:
    checks: list[Check] = field(default_factory=list)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.ok is False]

    @property
    def ok(self) -> bool:
        return not self.failures

    def raise_for_failures(self) -> None:
        if self.failures:
            raise DeploymentLimitError("the deployment would be refused: " + " | ".join(
                f"{c.name}: {c.detail}" for c in self.failures))

    def as_dicts(self) -> list[dict]:
        return [{"check": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks]


def _region_key(region: str) -> str | None:
    return {long: short for short, long in oci.regions.REGIONS_SHORT_NAMES.items()}.get(region)


def preflight_checks(req: DeploymentRequest, *, clients: OciClients | None = None,
                     artifact_route: ArtifactRouteChoice | None = None,
                     instances_at_most: int | None = None) -> PreflightReport:
    """Run every check; a failure is recorded with its fix, the others still run (one report, all problems).

    `instances_at_most` is the most instances the deployment may run (autoscaling maximum), for the quota.
    """
    report = PreflightReport()

    def run(name: str, check: Callable[[], str]) -> None:
        try:
            report.checks.append(Check(name, True, check()))
        except (DeploymentLimitError, ValueError) as exc:
            report.checks.append(Check(name, False, str(exc)))

    def region() -> str:
        if req.region not in oci.regions.REGIONS:
            raise DeploymentLimitError(f"target.region {req.region!r} is not a region the oci SDK knows; e.g. "
                                       "us-ashburn-1")
        return req.region

    def ocids() -> str:
        check_ocid(req.compartment_id, "target.compartment_id", types=("compartment", "tenancy"), region=req.region,
                   regional=False)
        check_ocid(req.project_id, "target.project_id", types=("datascienceproject",), region=req.region)
        for field_name, kinds in (("access_log_id", ("log",)), ("predict_log_id", ("log",)),
                                  ("access_log_group_id", ("loggroup",)), ("predict_log_group_id", ("loggroup",))):
            value = getattr(req, field_name)
            if value:
                check_ocid(value, field_name, types=kinds, region=req.region)
        return "compartment, project and log OCIDs name resources of this realm and region"

    def image() -> str:
        digest = "sha256:" + "0" * 64 if req.image_digest == IMAGE_DIGEST_PLACEHOLDER else req.image_digest
        limits.check_image(req.image, digest)
        key = _region_key(req.region)
        host = req.image.split("/", 1)[0]
        if key and host != f"{key}.ocir.io":
            raise DeploymentLimitError(f"image {req.image!r} is in registry {host}, but the deployment is in "
                                       f"{req.region}; push to {key}.ocir.io (the region's own OCIR)")
        return req.image

    def cmd() -> str:
        limits.check_cmd_entrypoint(req.cmd, req.entrypoint)
        return f"{limits._json_bytes(list(req.cmd))} bytes < {limits.CMD_ENTRYPOINT_MAX_BYTES}"

    def ports() -> str:
        limits.check_port("server_port", req.server_port)
        limits.check_port("health_port", req.health_port)
        return f"server {req.server_port}, health {req.health_port}"

    def environment() -> str:
        env = build_environment_variables(req)
        limits.check_env(env)
        return f"{len(env)} variables, {limits._json_bytes(env)} bytes < {limits.ENV_MAX_BYTES}"

    def timeout() -> str:
        limits.check_deployment_timeout(req.deployment_timeout_minutes)
        return f"{req.deployment_timeout_minutes} min"

    def scaling() -> str:
        limits.check_scaling(req.instance_count, req.bandwidth_mbps)
        if req.autoscaling:
            a = req.autoscaling
            return f"{a.min_instances}..{a.max_instances} x {req.shape} on {len(a.rules)} rule(s), {req.bandwidth_mbps} Mbps"
        return f"{req.instance_count} x {req.shape}, {req.bandwidth_mbps} Mbps"

    def logs() -> str:
        from oci.data_science.models import CategoryLogDetails

        _log_details(req, CategoryLogDetails)
        return "log ids and groups come in pairs"

    for name, check in (("region", region), ("ocids", ocids), ("image", image), ("cmd+entrypoint size", cmd),
                        ("ports", ports), ("environment", environment), ("deployment timeout", timeout),
                        ("scaling", scaling), ("logs", logs)):
        run(name, check)
    if artifact_route is not None:
        report.checks.append(Check("artifact route", True, f"{artifact_route.route}: {artifact_route.reason}"))
    if clients is None:
        report.checks.append(Check("shape offered", None, "not checked without OCI clients"))
        report.checks.append(Check("gpu quota", None, "not checked without OCI clients"))
        return report

    def shape() -> str:
        offered = [s.name for s in oci.pagination.list_call_get_all_results(
            clients.data_science.list_model_deployment_shapes, req.compartment_id).data]
        limits.check_shape_offered(req.shape, offered, req.compartment_id)
        return req.shape

    try:
        run("shape offered", shape)
    except (oci.exceptions.ServiceError, TrtllmOciError) as exc:
        report.checks.append(Check("shape offered", None, f"not checked: {exc}"))
    try:
        quota = check_gpu_quota(clients.limits, req.compartment_id, req.shape, instances_at_most or max_instances(req),
                                limit_name=req.gpu_limit_name)
        report.checks.append(Check("gpu quota", quota.ok, quota.detail))
    except DeploymentLimitError as exc:
        report.checks.append(Check("gpu quota", False, str(exc)))
    except oci.exceptions.ServiceError as exc:
        report.checks.append(Check("gpu quota", None, f"not checked: {exc.status} {exc.code}"))
    return report
