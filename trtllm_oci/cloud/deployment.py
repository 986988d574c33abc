"""Model catalog + Data Science BYOC model deployment of a Triton/TensorRT-LLM serving image.

Pure part: `DeploymentRequest`, the `build_*` functions returning SDK request models, `serialize`, and
`dry_run_plan`, which together describe exactly what `deploy` sends.
Effectful part: `deploy` (create-or-update by release tag, with waits and clean-up) and `teardown_release`.

Clean-up decision: a failed `deploy` deletes what *this call* created (the catalog model, and a deployment
that ended FAILED) before raising, so a retry starts clean. Whatever could not be deleted is listed in
`DeploymentFailedError.left_for_teardown`; every resource carries the freeform tag
`{RELEASE_TAG: release_id}`, so `teardown_release` finds leftovers even if the process died mid-way.
Resources of earlier successful runs are never touched on failure: the deployment keeps serving.
"""

from __future__ import annotations

import logging
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import oci
from oci.data_science import models as ds_models
from pydantic import BaseModel, ConfigDict, Field

from trtllm_oci.cloud import limits
from trtllm_oci.cloud.artifact import (
    DIRECT_UPLOAD_LIMIT_BYTES,
    ArtifactRoute,
    ArtifactRouteChoice,
    ObjectPrefix,
    ReferencedArtifact,
    StagingBucket,
    UploadReport,
    ZipArtifact,
    artifact_volume_bytes,
    attach_artifact,
    staging_prefix,
)
from trtllm_oci.cloud.autoscaling import Autoscaling, scaling_policy
from trtllm_oci.cloud.clients import OciClients
from trtllm_oci.cloud.errors import (
    DeploymentFailedError,
    DeploymentLimitError,
    StillInProgressError,
    TeardownIncompleteError,
)
from trtllm_oci.cloud.quota import check_gpu_quota
from trtllm_oci.cloud.routes import ServingRoutes, triton_generate_routes
from trtllm_oci.cloud.serialization import serialize
from trtllm_oci.cloud.updates import UpdatePlan, UpdateStep, plan_update, update_details, wire
from trtllm_oci.cloud.waiting import (
    WaitPolicy,
    settle_deployment,
    wait_for_deployment_state,
    wait_for_work_request,
)
from trtllm_oci.errors import ServiceError, TrtllmOciError

log = logging.getLogger(__name__)

RELEASE_TAG = "trtllm-oci-release"
ARTIFACT_TAG = "trtllm-oci-artifact-sha256"
# The quality gate's verdict, so a release deployed with `evaluation.on_fail: mark` is marked where users see it.
QUALITY_TAG = "trtllm-oci-quality"
MODEL_ID_PLACEHOLDER = "${create_model.id}"
# A dry run happens before the image is pushed; the digest is known only after the push.
IMAGE_DIGEST_PLACEHOLDER = "${push_image.digest}"
ZERO_DOWNTIME_STATES = frozenset({"ACTIVE", "NEEDS_ATTENTION"})
GONE_STATES = frozenset({"DELETED", "DELETING"})


class DeploymentRequest(BaseModel):
    """Everything needed to create the catalog model and the BYOC deployment of one release."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    region: str
    compartment_id: str
    project_id: str
    shape: str
    instance_count: int = 1
    autoscaling: Autoscaling | None = Field(
        default=None, description="AutoScalingPolicy between min and max instances; replaces instance_count")
    bandwidth_mbps: int = 10
    display_name: str
    description: str | None = None
    release_id: str = Field(min_length=1, max_length=256)
    image: str
    image_digest: str
    cmd: list[str]
    entrypoint: list[str] | None = None
    server_port: int = 8080
    health_port: int = 8080
    streaming: bool = False
    # tensorrt_llm_bls streams whole UTF-8 characters (the ensemble's stateless postprocessing cannot).
    predict_model: str = Field(default="ensemble", description="Triton's ensemble/BLS, or the OpenAI model name")
    routes: ServingRoutes | None = Field(
        default=None, description="The server's routes; default: Triton's generate routes of predict_model")
    artifact_size_bytes: int = Field(ge=0, description="size of the model artifact (zip, or referenced objects)")
    artifact_route: ArtifactRoute = Field(
        default="direct", description="how the artifact reaches the catalog; decides what the volume must hold")
    image_size_bytes: int = Field(ge=0, description="uncompressed size of the serving image")
    artifact_sha256: str | None = None
    quality_verdict: Literal["passed", "failed"] | None = Field(
        default=None, description="The quality gate's verdict, tagged on the model and the deployment")
    access_log_id: str | None = None
    access_log_group_id: str | None = None
    predict_log_id: str | None = None
    predict_log_group_id: str | None = None
    deployment_timeout_minutes: int = 60
    world_size: int = Field(default=1, ge=1, description="GPUs one server uses (tp x pp); sizes SHM_SIZE")
    gpu_limit_name: str | None = Field(
        default=None, description="Service-limit name of the shape's GPUs (default: trtllm_oci.cloud.quota table)")
    extra_env: dict[str, str] = Field(
        default_factory=dict, description="Added to the container environment; may override SHM_SIZE")


# ---------------------------------------------------------------- pure builders


def max_instances(req: DeploymentRequest) -> int:
    """The most instances the deployment may run at once (what the GPU quota must cover)."""
    return req.autoscaling.max_instances if req.autoscaling else req.instance_count


def serving_routes(req: DeploymentRequest) -> ServingRoutes:
    return req.routes or triton_generate_routes(req.predict_model, streaming=req.streaming)


def build_environment_variables(req: DeploymentRequest, *, storage_gb: int | None = None) -> dict[str, str]:
    """`storage_gb` overrides the computed STORAGE_SIZE_IN_GB (an update keeps a deployment's sufficient one)."""
    routes = serving_routes(req)
    needed = limits.storage_size_gb(req.image_size_bytes,
                                    artifact_volume_bytes(req.artifact_size_bytes, req.artifact_route))
    env = {
        "MODEL_DEPLOY_PREDICT_ENDPOINT": routes.predict.path,
        "MODEL_DEPLOY_HEALTH_ENDPOINT": routes.health,
        "STORAGE_SIZE_IN_GB": str(storage_gb if storage_gb is not None else needed),
        "DEPLOYMENT_TIMEOUT_IN_MINUTES": str(req.deployment_timeout_minutes),
    }
    if req.streaming:
        # Needed for /predictWithResponseStream (oci-data-science-ai-samples:LLM/deploy-llama3.1.md).
        env["MODEL_DEPLOY_ENABLE_STREAMING"] = "true"
    clashes = sorted(set(env) & set(req.extra_env))
    if clashes:
        raise DeploymentLimitError(
            f"extra_env sets {', '.join(clashes)}, which trtllm-oci derives from the request; remove them "
            "and set streaming / deployment_timeout_minutes / sizes instead."
        )
    # A default, not a derived fact: a user who measured their /dev/shm needs may set SHM_SIZE in extra_env.
    env["SHM_SIZE"] = f"{limits.shm_size_gb(req.world_size)}g"
    env.update(req.extra_env)
    return env


def _tags(req: DeploymentRequest, *, with_artifact: bool) -> dict[str, str]:
    tags = {RELEASE_TAG: req.release_id}
    if with_artifact and req.artifact_sha256:
        tags[ARTIFACT_TAG] = req.artifact_sha256
    if req.quality_verdict is not None:
        tags[QUALITY_TAG] = req.quality_verdict
    return tags


def _log_details(req: DeploymentRequest, cls) -> Any:
    pairs = {"access": (req.access_log_id, req.access_log_group_id),
             "predict": (req.predict_log_id, req.predict_log_group_id)}
    chosen = {}
    for category, (log_id, group_id) in pairs.items():
        if bool(log_id) != bool(group_id):
            raise DeploymentLimitError(
                f"{category} logging needs both {category}_log_id and {category}_log_group_id; got only one."
            )
        if log_id:
            chosen[category] = ds_models.LogDetails(log_id=log_id, log_group_id=group_id)
    return cls(**chosen) if chosen else None


def build_create_model_details(req: DeploymentRequest) -> ds_models.CreateModelDetails:
    return ds_models.CreateModelDetails(
        compartment_id=req.compartment_id, project_id=req.project_id,
        display_name=f"{req.display_name}-model", description=req.description,
        freeform_tags=_tags(req, with_artifact=True),
    )


def _model_configuration(req: DeploymentRequest, model_id: str, cls):
    return cls(
        model_id=model_id,
        instance_configuration=ds_models.InstanceConfiguration(instance_shape_name=req.shape),
        scaling_policy=scaling_policy(req.autoscaling, req.instance_count),
        bandwidth_mbps=req.bandwidth_mbps,
    )


def _environment_fields(req: DeploymentRequest, storage_gb: int | None = None) -> dict[str, Any]:
    routes = serving_routes(req)
    return dict(image=req.image, image_digest=req.image_digest, cmd=list(req.cmd),
                entrypoint=list(req.entrypoint) if req.entrypoint else None, server_port=req.server_port,
                health_check_port=req.health_port,
                environment_variables=build_environment_variables(req, storage_gb=storage_gb),
                custom_http_endpoints=routes.custom_http_endpoints(),
                predict_api_specification=routes.predict_api_specification)


def build_create_model_deployment_details(req: DeploymentRequest, model_id: str = MODEL_ID_PLACEHOLDER, *,
                                          storage_gb: int | None = None) -> ds_models.CreateModelDeploymentDetails:
    return ds_models.CreateModelDeploymentDetails(
        display_name=req.display_name, description=req.description,
        project_id=req.project_id, compartment_id=req.compartment_id,
        model_deployment_configuration_details=ds_models.SingleModelDeploymentConfigurationDetails(
            deployment_type="SINGLE_MODEL",
            model_configuration_details=_model_configuration(req, model_id, ds_models.ModelConfigurationDetails),
            environment_configuration_details=ds_models.OcirModelDeploymentEnvironmentConfigurationDetails(
                environment_configuration_type="OCIR_CONTAINER", **_environment_fields(req, storage_gb)),
        ),
        category_log_details=_log_details(req, ds_models.CategoryLogDetails),
        freeform_tags=_tags(req, with_artifact=False),
    )


def validate_request(req: DeploymentRequest) -> list[dict[str, Any]]:
    """Check every service limit that needs no API call; raise DeploymentLimitError on the first breach."""
    checks: list[dict[str, Any]] = []

    def passed(name: str, detail: str) -> None:
        checks.append({"check": name, "ok": True, "detail": detail})

    if req.image_digest == IMAGE_DIGEST_PLACEHOLDER:
        limits.check_image(req.image, "sha256:" + "0" * 64)  # the reference form only; the digest comes at push
        checks.append({"check": "image", "ok": True, "detail": f"{req.image}; digest resolved when pushed"})
    else:
        limits.check_image(req.image, req.image_digest)
        passed("image", f"{req.image} @ {req.image_digest}")
    limits.check_cmd_entrypoint(req.cmd, req.entrypoint)
    passed("cmd+entrypoint size", f"< {limits.CMD_ENTRYPOINT_MAX_BYTES} bytes")
    limits.check_port("server_port", req.server_port)
    limits.check_port("health_port", req.health_port)
    passed("ports", f"server {req.server_port}, health {req.health_port}")
    limits.check_deployment_timeout(req.deployment_timeout_minutes)
    passed("deployment timeout", f"{req.deployment_timeout_minutes} min <= {limits.DEPLOYMENT_TIMEOUT_MAX_MINUTES}")
    limits.check_scaling(req.instance_count, req.bandwidth_mbps)
    passed("scaling", f"{req.instance_count} x {req.shape}, {req.bandwidth_mbps} Mbps")
    env = build_environment_variables(req)
    limits.check_env(env)
    passed("environment", f"{len(env)} variables < {limits.ENV_MAX_BYTES} bytes; STORAGE_SIZE_IN_GB="
                          f"{env['STORAGE_SIZE_IN_GB']}")
    _log_details(req, ds_models.CategoryLogDetails)
    return checks


def dry_run_plan(req: DeploymentRequest, *, offered_shapes: list[str] | None = None,
                 artifact_route: ArtifactRouteChoice | None = None) -> dict[str, Any]:
    """What `deploy` would send for a fresh release, serialised as the SDK does; calls nothing.

    The deployment's modelId is MODEL_ID_PLACEHOLDER. Pass `offered_shapes` (e.g. from a cached
    `list_model_deployment_shapes`) to include the shape check; otherwise it is reported as not run.
    """
    checks = validate_request(req)
    if offered_shapes is None:
        checks.append({"check": "shape offered", "ok": None,
                       "detail": "not checked in dry run (needs list_model_deployment_shapes)"})
    else:
        limits.check_shape_offered(req.shape, offered_shapes, req.compartment_id)
        checks.append({"check": "shape offered", "ok": True, "detail": req.shape})
    if artifact_route is not None:
        checks.append({"check": "artifact route", "ok": True, "detail": f"{artifact_route.route}: {artifact_route.reason}"})
    return {
        "create_model": serialize(build_create_model_details(req)),
        "create_model_deployment": serialize(build_create_model_deployment_details(req)),
        "checks": checks,
    }


# ---------------------------------------------------------------- effectful flow


@dataclass
class DeploymentResult:
    model_deployment_id: str
    model_id: str
    url: str | None
    lifecycle_state: str
    action: str  # "created" | "updated" | "unchanged"
    created: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    routes: ServingRoutes | None = None  # what the deployment answers; smoke tests and benchmarks call these
    artifact_route: str | None = None
    upload: UploadReport | None = None  # bytes this run uploaded for the artifact (None: an existing model reused)


def _offered_shapes(clients: OciClients, compartment_id: str) -> list[str]:
    ds = clients.data_science
    return [s.name for s in oci.pagination.list_call_get_all_results(ds.list_model_deployment_shapes,
                                                                      compartment_id).data]


def find_release_deployments(clients: OciClients, compartment_id: str, release_id: str,
                             project_id: str | None = None) -> list[Any]:
    kwargs = {"project_id": project_id} if project_id else {}
    items = oci.pagination.list_call_get_all_results(clients.data_science.list_model_deployments,
                                                     compartment_id, **kwargs).data
    return [d for d in items if (d.freeform_tags or {}).get(RELEASE_TAG) == release_id
            and d.lifecycle_state not in GONE_STATES]


def find_release_models(clients: OciClients, compartment_id: str, release_id: str,
                        project_id: str | None = None) -> list[Any]:
    kwargs = {"project_id": project_id} if project_id else {}
    items = oci.pagination.list_call_get_all_results(clients.data_science.list_models, compartment_id,
                                                     **kwargs).data
    return [m for m in items if (m.freeform_tags or {}).get(RELEASE_TAG) == release_id
            and m.lifecycle_state not in GONE_STATES]


def _has_artifact(clients: OciClients, model_id: str) -> bool:
    try:
        clients.data_science.head_model_artifact(model_id)
        return True
    except oci.exceptions.ServiceError as exc:
        if exc.status == 404:
            return False
        raise


def _delete_model(clients: OciClients, model_id: str) -> None:
    try:
        clients.data_science.delete_model(model_id, retry_strategy=clients.strategy(allow_conflict_retry=False))
    except oci.exceptions.ServiceError as exc:
        if exc.status != 404:
            raise


def _delete_deployment(clients: OciClients, md_id: str, wait: WaitPolicy) -> None:
    ds = clients.data_science
    try:
        response = ds.delete_model_deployment(md_id, retry_strategy=clients.strategy(allow_conflict_retry=False))
    except oci.exceptions.ServiceError as exc:
        if exc.status == 404:
            return
        raise
    wait_for_work_request(ds, response.headers["opc-work-request-id"], f"deleting model deployment {md_id}", wait,
                          model_deployment_id=md_id)


def bootstrap_wait(req: DeploymentRequest) -> WaitPolicy:
    """The client's patience for this request: the service's bootstrap limit plus provisioning."""
    return WaitPolicy.for_bootstrap(req.deployment_timeout_minutes)


def _deactivate(clients: OciClients, md_id: str, wait: WaitPolicy) -> None:
    ds = clients.data_science
    response = ds.deactivate_model_deployment(md_id, retry_strategy=clients.strategy(allow_conflict_retry=False))
    wr = response.headers["opc-work-request-id"]
    wait_for_work_request(ds, wr, f"deactivating model deployment {md_id}", wait, model_deployment_id=md_id)
    wait_for_deployment_state(ds, md_id, "INACTIVE", f"deactivating model deployment {md_id}", wait,
                              work_request_id=wr)


def _activate(clients: OciClients, md_id: str, wait: WaitPolicy):
    ds = clients.data_science
    response = ds.activate_model_deployment(md_id, retry_strategy=clients.strategy(allow_conflict_retry=False))
    wr = response.headers["opc-work-request-id"]
    wait_for_work_request(ds, wr, f"activating model deployment {md_id}", wait, model_deployment_id=md_id)
    return wait_for_deployment_state(ds, md_id, "ACTIVE", f"activating model deployment {md_id}", wait,
                                     work_request_id=wr)


def _settle(clients: OciClients, md: Any, wait: WaitPolicy) -> Any:
    """The deployment once a transition in progress (CREATING, UPDATING) is over, in whatever state it ends."""
    return settle_deployment(clients.data_science, md.id, f"waiting for model deployment {md.id} to settle", wait)


def _reusable_model(clients: OciClients, req: DeploymentRequest) -> str | None:
    """This release's catalog model with the same artifact digest (and its artifact), if there is one."""
    for model in find_release_models(clients, req.compartment_id, req.release_id, req.project_id):
        if model.lifecycle_state != "ACTIVE" or (model.freeform_tags or {}).get(ARTIFACT_TAG) != req.artifact_sha256:
            continue
        # A model by reference has no uploaded artifact to HEAD; registering the references set the flag.
        if model.is_model_by_reference or _has_artifact(clients, model.id):
            return model.id
    return None


def _ensure_model(clients: OciClients, req: DeploymentRequest, artifact: ZipArtifact | ReferencedArtifact,
                  created: list[str], *, direct_limit_bytes: int, staging: ObjectPrefix | None, part_size: int,
                  parallel_parts: int, wait: WaitPolicy) -> tuple[str, UploadReport | None]:
    """Reuse this release's catalog model with the same artifact digest, else create one and attach the artifact."""
    reusable = _reusable_model(clients, req)
    if reusable:
        log.info("reusing catalog model %s (same release and artifact digest)", reusable)
        return reusable, None
    model = clients.data_science.create_model(build_create_model_details(req), opc_retry_token=uuid.uuid4().hex).data
    created.append(model.id)
    log.info("created catalog model %s", model.id)
    report = attach_artifact(clients, model.id, artifact, region=req.region, wait=wait, staging=staging,
                             direct_limit_bytes=direct_limit_bytes, part_size=part_size,
                             parallel_parts=parallel_parts)
    return model.id, report


def _as_artifact(artifact: str | os.PathLike | ZipArtifact | ReferencedArtifact,
                 known_sha256: str | None) -> ZipArtifact | ReferencedArtifact:
    if isinstance(artifact, ZipArtifact | ReferencedArtifact):
        return artifact
    path = Path(artifact)
    if known_sha256 and path.is_file():  # the packager hashed it while writing; reading 100+ GB again is waste
        return ZipArtifact(path=path, size_bytes=path.stat().st_size, sha256=known_sha256)
    return ZipArtifact.of(path)


def route_of(artifact: ZipArtifact | ReferencedArtifact, direct_limit_bytes: int = DIRECT_UPLOAD_LIMIT_BYTES) -> str:
    if isinstance(artifact, ReferencedArtifact):
        return "by_reference"
    return "direct" if artifact.size_bytes <= direct_limit_bytes else "object_storage_export"


def update_plan(current: Any, req: DeploymentRequest, model_id: str) -> UpdatePlan:
    """What updating deployment `current` to `req` (serving catalog model `model_id`) changes, step by step."""
    want = serialize(build_create_model_deployment_details(req, model_id))
    return plan_update(wire(current), want, our_tags=_tags(req, with_artifact=False), state=current.lifecycle_state)


def deploy(clients: OciClients, req: DeploymentRequest,
           artifact: str | os.PathLike | ZipArtifact | ReferencedArtifact, *, wait: WaitPolicy | None = None,
           direct_limit_bytes: int = DIRECT_UPLOAD_LIMIT_BYTES, staging: StagingBucket | ObjectPrefix | None = None,
           part_size: int = 128 * 1024**2, parallel_parts: int = 4, allow_downtime: bool = False,
           cleanup_on_failure: bool = True, delete_superseded_model: bool = True) -> DeploymentResult:
    """Create or update the deployment of `req.release_id` and wait until it is ACTIVE.

    An existing deployment tagged with the release is updated, never duplicated, one option group per update
    with zero downtime (trtllm_oci.cloud.updates). Only a plan that changes the container and the model together
    needs downtime; with `allow_downtime` it is deactivated, updated once and re-activated, otherwise a
    DeploymentLimitError is raised before anything is created.

    `artifact` is a zip (path or ZipArtifact: direct up to 2 GiB, else through `staging` and export) or a
    ReferencedArtifact (engines referenced in the oci:// cache). Its size, digest and route replace the request's.
    `wait` defaults to `bootstrap_wait(req)`. Running out of it raises StillInProgressError and deletes nothing:
    a re-run picks the deployment up where it is.
    """
    wait = wait or bootstrap_wait(req)
    if req.image_digest == IMAGE_DIGEST_PLACEHOLDER:
        raise DeploymentLimitError("image_digest is still the dry-run placeholder; push the image first and pass its digest")
    checks = validate_request(req)
    log.debug("pre-flight checks passed: %s", checks)
    ds = clients.data_science
    limits.check_shape_offered(req.shape, _offered_shapes(clients, req.compartment_id), req.compartment_id)
    source = _as_artifact(artifact, req.artifact_sha256)
    req = req.model_copy(update={"artifact_sha256": req.artifact_sha256 or source.sha256,
                                 "artifact_route": route_of(source, direct_limit_bytes)})
    validate_request(req)
    staged = staging_prefix(clients, staging)

    existing = find_release_deployments(clients, req.compartment_id, req.release_id, req.project_id)
    if len(existing) > 1:
        raise ServiceError(
            f"release {req.release_id!r} has {len(existing)} model deployments ({', '.join(d.id for d in existing)}); "
            f"run teardown for the release or delete the extra ones so that one remains."
        )
    current = _settle(clients, existing[0], wait) if existing else None
    if current is None or current.lifecycle_state == "FAILED":
        # Before a model or a byte is uploaded: the usual failure of a first GPU deployment is the service limit.
        check_gpu_quota(clients.limits, req.compartment_id, req.shape, max_instances(req),
                        limit_name=req.gpu_limit_name)
    created: list[str] = []
    deleted: list[str] = []
    if current is not None and current.lifecycle_state == "FAILED":
        log.info("model deployment %s of release %s is FAILED; deleting it before re-creating", current.id,
                 req.release_id)
        _delete_deployment(clients, current.id, wait)
        deleted.append(current.id)
        current = None
    if current is not None:
        preview = update_plan(current, req, _reusable_model(clients, req) or MODEL_ID_PLACEHOLDER)
        if preview.needs_downtime and not allow_downtime:
            raise DeploymentLimitError(
                f"model deployment {current.id} cannot take this release without downtime: {preview.reason}. "
                "Re-run with allow_downtime=True (deactivate, update, activate) or use a new release id for a "
                "side-by-side deployment.")

    md_id: str | None = current.id if current is not None else None
    created_md: str | None = None
    model_id: str | None = None
    try:
        model_id, upload = _ensure_model(clients, req, source, created, direct_limit_bytes=direct_limit_bytes,
                                         staging=staged, part_size=part_size, parallel_parts=parallel_parts,
                                         wait=wait)
        if current is None:
            response = ds.create_model_deployment(build_create_model_deployment_details(req, model_id),
                                                  opc_retry_token=uuid.uuid4().hex)
            md_id = created_md = response.data.id
            created.append(md_id)
            wr = response.headers["opc-work-request-id"]
            log.info("creating model deployment %s (work request %s)", md_id, wr)
            wait_for_work_request(ds, wr, f"creating model deployment {md_id}", wait, model_deployment_id=md_id)
            md = wait_for_deployment_state(ds, md_id, "ACTIVE", f"creating model deployment {md_id}", wait,
                                           work_request_id=wr)
            action = "created"
        else:
            assert md_id is not None  # the existing deployment's id
            previous_model = current.model_deployment_configuration_details.model_configuration_details.model_id
            plan = update_plan(current, req, model_id)
            if plan.unchanged:
                if current.lifecycle_state != "ACTIVE":
                    log.warning("model deployment %s is %s and already has this release's configuration",
                                current.id, current.lifecycle_state)
                return DeploymentResult(md_id, model_id, current.model_deployment_url, current.lifecycle_state,
                                        "unchanged", created, deleted, serving_routes(req), req.artifact_route,
                                        upload)
            md = _update(clients, current, req, model_id, plan, wait)
            action = "updated"
            if delete_superseded_model and previous_model != model_id:
                _delete_superseded(clients, previous_model, req.release_id, deleted)
        assert md_id is not None
        return DeploymentResult(md_id, model_id, md.model_deployment_url, md.lifecycle_state, action, created, deleted,
                                serving_routes(req), req.artifact_route, upload)
    except StillInProgressError as exc:
        # Never roll back what the service is still building: deleting a CREATING deployment throws away the
        # provisioning and the bootstrap (up to hours), and the next run would start from scratch.
        exc.left_for_teardown = list(created)
        exc.args = (f"{exc.args[0]} Still in flight for release {req.release_id!r}: "
                    f"{', '.join(created) or md_id or 'nothing new'}.",)
        raise
    except BaseException as exc:
        cleaned, left = _roll_back(clients, created_md, created, md_id, wait) if cleanup_on_failure else ([], created)
        if isinstance(exc, DeploymentFailedError):
            exc.cleaned_up, exc.left_for_teardown = cleaned, left
            exc.args = (f"{exc.args[0]} Cleaned up: {', '.join(cleaned) or 'nothing'}."
                        + (f" Left for `teardown` of release {req.release_id!r}: {', '.join(left)}." if left else ""),)
        raise


def _send_update(clients: OciClients, md_id: str, details: Any, what: str, wait: WaitPolicy, *,
                 expect_active: bool) -> Any:
    ds = clients.data_science
    response = ds.update_model_deployment(md_id, details, retry_strategy=clients.strategy(allow_conflict_retry=False))
    wr = response.headers["opc-work-request-id"]
    log.info("%s: updating model deployment %s (work request %s)", what, md_id, wr)
    wait_for_work_request(ds, wr, f"{what} of model deployment {md_id}", wait, model_deployment_id=md_id)
    if expect_active:
        return wait_for_deployment_state(ds, md_id, "ACTIVE", f"{what} of model deployment {md_id}", wait,
                                         work_request_id=wr)
    return settle_deployment(ds, md_id, f"{what} of model deployment {md_id}", wait)


def _update(clients: OciClients, current: Any, req: DeploymentRequest, model_id: str, plan: UpdatePlan,
            wait: WaitPolicy):
    """Apply `plan`: one option group per update while ACTIVE; all at once while INACTIVE (then activate)."""
    md_id = current.id
    want = build_create_model_deployment_details(req, model_id, storage_gb=plan.kept_storage_gb)
    tags = {**(current.freeform_tags or {}), **_tags(req, with_artifact=False)}
    if plan.needs_downtime and current.lifecycle_state in ZERO_DOWNTIME_STATES:
        log.info("deactivating model deployment %s: %s", md_id, plan.reason)
        _deactivate(clients, md_id, wait)
        current = clients.data_science.get_model_deployment(md_id).data
    if current.lifecycle_state == "INACTIVE":
        step = UpdateStep("all", tuple(k for s in plan.steps for k in s.changed))
        _send_update(clients, md_id, update_details(step, want, model_id=model_id, merged_tags=tags,
                                                    with_metadata=True), "update", wait, expect_active=False)
        return _activate(clients, md_id, wait)
    steps = plan.steps or [UpdateStep("metadata", plan.metadata)]
    md = current
    for index, step in enumerate(steps):
        # Every step names the model the deployment serves at that point (a model step has just swapped it).
        serving = model_id if any(s.group == "model" for s in steps[:index + 1]) else \
            current.model_deployment_configuration_details.model_configuration_details.model_id
        details = update_details(step, want, model_id=serving, merged_tags=tags, with_metadata=index == 0)
        md = _send_update(clients, md_id, details, f"{step.group} update ({', '.join(step.changed)})", wait,
                          expect_active=True)
    return md


def _delete_superseded(clients: OciClients, model_id: str, release_id: str, deleted: list[str]) -> None:
    try:
        model = clients.data_science.get_model(model_id).data
    except oci.exceptions.ServiceError as exc:
        if exc.status == 404:
            return
        raise
    if (model.freeform_tags or {}).get(RELEASE_TAG) == release_id:
        _delete_model(clients, model_id)
        deleted.append(model_id)


def _roll_back(clients: OciClients, created_md: str | None, created: list[str], md_id: str | None,
               wait: WaitPolicy) -> tuple[list[str], list[str]]:
    """Delete what this call created; a model still referenced by the deployment stays (and is reported)."""
    cleaned: list[str] = []
    left: list[str] = []
    if created_md:
        try:
            _delete_deployment(clients, created_md, wait)
            cleaned.append(created_md)
        except Exception as exc:  # noqa: BLE001 - roll-back must report, not mask, the original error
            log.warning("could not delete model deployment %s: %s", created_md, type(exc).__name__)
            left.append(created_md)
    in_use: str | None = None
    if md_id and md_id != created_md:
        try:
            cfg = clients.data_science.get_model_deployment(md_id).data.model_deployment_configuration_details
            in_use = cfg.model_configuration_details.model_id
        except Exception:  # noqa: BLE001
            in_use = None
    for resource in created:
        if resource == created_md:
            continue
        if resource == in_use or created_md in left:
            left.append(resource)
            continue
        try:
            _delete_model(clients, resource)
            cleaned.append(resource)
        except Exception as exc:  # noqa: BLE001
            log.warning("could not delete model %s: %s", resource, type(exc).__name__)
            left.append(resource)
    return cleaned, left


@dataclass
class TeardownReport:
    deleted_deployments: list[str] = field(default_factory=list)
    deleted_models: list[str] = field(default_factory=list)
    deleted_objects: list[str] = field(default_factory=list)


# Delete is accepted from these states (ADS ads/model/service/oci_datascience_model_deployment.py@2.15.2 delete);
# NEEDS_ATTENTION is deactivated first, transitions are waited out.
DELETABLE_STATES = frozenset({"ACTIVE", "FAILED", "INACTIVE"})


def _teardown_deployment(clients: OciClients, md: Any, wait: WaitPolicy) -> bool:
    """Delete one deployment from whatever state it is in; False if it was already gone."""
    ds = clients.data_science
    try:
        md = settle_deployment(ds, md.id, f"waiting for model deployment {md.id} before deleting it", wait)
    except oci.exceptions.ServiceError as exc:
        if exc.status == 404:
            return False
        raise
    if md.lifecycle_state == "DELETED":
        return False
    if md.lifecycle_state == "NEEDS_ATTENTION":
        _deactivate(clients, md.id, wait)
    _delete_deployment(clients, md.id, wait)
    return True


def _delete_staged(clients: OciClients, where: ObjectPrefix) -> list[str]:
    """Objects under `where` (a release's staged small files); the engine cache itself is never touched."""
    from trtllm_oci.cloud.artifact import _existing_objects

    deleted = []
    for relative in sorted(_existing_objects(clients, where)):
        name = where.object_name(relative)
        try:
            clients.object_storage.delete_object(where.namespace, where.bucket, name)
            deleted.append(name)
        except oci.exceptions.ServiceError as exc:
            if exc.status != 404:
                raise
    return deleted


def teardown_release(clients: OciClients, compartment_id: str, release_id: str, *, project_id: str | None = None,
                     wait: WaitPolicy | None = None, artifact_bucket: ObjectPrefix | None = None) -> TeardownReport:
    """Delete every deployment, then every catalog model, tagged with `release_id`, from any state.

    A FAILED or NEEDS_ATTENTION deployment is removed like an ACTIVE one, and its model with it. With
    `artifact_bucket` (target.artifact_bucket or its default) the release's staged configs and tokenizer under
    `<prefix>/<release_id>/` go too; referenced engines stay in the engine cache. Everything that can be removed
    is, even if one resource refuses; TeardownIncompleteError then names what is left and why.
    """
    wait = wait or WaitPolicy.for_bootstrap(limits.DEPLOYMENT_TIMEOUT_MAX_MINUTES)
    report = TeardownReport()
    problems: list[str] = []
    for md in find_release_deployments(clients, compartment_id, release_id, project_id):
        try:
            if _teardown_deployment(clients, md, wait):
                report.deleted_deployments.append(md.id)
        except (TrtllmOciError, oci.exceptions.ServiceError) as exc:
            problems.append(f"model deployment {md.id}: {type(exc).__name__}: {str(exc)[:300]}")
    for model in find_release_models(clients, compartment_id, release_id, project_id):
        try:
            _delete_model(clients, model.id)
            report.deleted_models.append(model.id)
        except oci.exceptions.ServiceError as exc:
            problems.append(f"model {model.id}: {exc.status} {exc.code}: {exc.message}")
    if artifact_bucket is not None and not problems:
        try:
            report.deleted_objects = _delete_staged(clients, artifact_bucket.child(release_id))
        except oci.exceptions.ServiceError as exc:
            problems.append(f"staged files under {artifact_bucket.child(release_id).uri}: {exc.status} {exc.code}")
    log.info("teardown of release %s: deleted deployments %s, models %s", release_id,
             report.deleted_deployments, report.deleted_models)
    if problems:
        raise TeardownIncompleteError(
            f"teardown of release {release_id!r} removed {len(report.deleted_deployments)} deployment(s) and "
            f"{len(report.deleted_models)} model(s) but could not remove: {'; '.join(problems)}. Run teardown "
            "again once the cause is fixed; it only touches resources tagged with this release.",
            report=report, problems=problems)
    return report
