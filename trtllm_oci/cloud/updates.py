"""What an update of an existing model deployment must change, as the service accepts it.

Rules (update_model_deployment docstring, oci/data_science/data_science_client.py@2.189.0: model, shape and
instance count, "separately" the load balancer, or the logs "can also be updated independently" while ACTIVE or
NEEDS_ATTENTION; model-dep-edit.htm and the MIE update sample,
oracle-samples/oci-data-science-ai-samples model-deployment/multiple_inference_endpoints/samples/README.md@2624d1c:
the container environment - image, command, variables, endpoints - also changes on an ACTIVE deployment by a
rolling update): while ACTIVE, one option group per update, each with zero downtime. While INACTIVE everything
changes in one update.

Only what this project sets is compared: a field the service echoes with a default (`entrypoint: []`, its own
`defaultEnvironmentVariables`, tags someone added in the Console) is no change. `STORAGE_SIZE_IN_GB` is kept
when the deployment already has at least what the release needs, so a model swap that moves the estimate does
not turn into a container restart.

When the container (image, command, variables) and the model change together, sequential zero-downtime steps
would run the new engine in the old container or the old engine in the new one (an engine loads only in the
TensorRT-LLM that built it); such a plan needs downtime: deactivate, one update, activate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from oci.data_science import models as ds_models

from trtllm_oci.cloud.serialization import serialize

GROUP_ORDER = ("environment", "model", "bandwidth", "logs")
STORAGE_KEY = "STORAGE_SIZE_IN_GB"
_ENV_FIELDS = ("image", "imageDigest", "cmd", "entrypoint", "serverPort", "healthCheckPort", "environmentVariables",
               "customHttpEndpoints", "predictApiSpecification")
_MODEL_FIELDS = ("modelId", "instanceConfiguration", "scalingPolicy")
_BANDWIDTH_FIELDS = ("bandwidthMbps", "maximumBandwidthMbps")


def normalized(value: Any) -> Any:
    """None, [] and {} are the same "not set"; lists of endpoints compare as sets; dicts drop empty values."""
    if value in (None, [], {}, ""):
        return None
    if isinstance(value, dict):
        kept = {k: normalized(v) for k, v in value.items()}
        kept = {k: v for k, v in kept.items() if v is not None}
        return kept or None
    if isinstance(value, list):
        items = [normalized(v) for v in value]
        if all(isinstance(v, dict) for v in items):
            return sorted(items, key=lambda v: repr(sorted(v.items())))
        return items
    return value


def _endpoints(value: Any) -> Any:
    if not value:
        return None
    return sorted((e["endpointUriSuffix"], tuple(sorted(e.get("httpMethods") or []))) for e in value)


def _differs(have: dict, want: dict, keys: tuple[str, ...]) -> list[str]:
    changed = []
    for key in keys:
        if key not in want:
            continue  # not set by this project
        if key == "customHttpEndpoints":
            same = _endpoints(have.get(key)) == _endpoints(want.get(key))
        else:
            same = normalized(have.get(key)) == normalized(want.get(key))
        if not same:
            changed.append(key)
    return changed


@dataclass(frozen=True)
class UpdateStep:
    group: str  # "environment" | "model" | "bandwidth" | "logs" | "metadata"
    changed: tuple[str, ...]


@dataclass(frozen=True)
class UpdatePlan:
    steps: list[UpdateStep] = field(default_factory=list)
    needs_downtime: bool = False
    reason: str = ""
    kept_storage_gb: int | None = None  # the deployment's own STORAGE_SIZE_IN_GB, kept because it suffices
    metadata: tuple[str, ...] = ()

    @property
    def unchanged(self) -> bool:
        return not self.steps and not self.metadata


def wire(current: Any) -> dict:
    """The deployment as the wire shows it (camelCase, the SDK's own serializer)."""
    return serialize(current)


def _config(md: dict) -> tuple[dict, dict]:
    cfg = md.get("modelDeploymentConfigurationDetails") or {}
    return cfg.get("modelConfigurationDetails") or {}, cfg.get("environmentConfigurationDetails") or {}


def _storage(env: dict) -> int | None:
    value = (env.get("environmentVariables") or {}).get(STORAGE_KEY)
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def plan_update(current: dict, want: dict, *, our_tags: dict[str, str], state: str) -> UpdatePlan:
    """Steps that turn deployment `current` (wire dict) into `want` (wire CreateModelDeploymentDetails)."""
    have_model, have_env = _config(current)
    want_model, want_env = _config(want)
    kept = None
    have_storage, want_storage = _storage(have_env), _storage(want_env)
    if want_storage is not None and have_storage is not None and have_storage >= want_storage:
        kept = have_storage
        want_env = {**want_env, "environmentVariables": {**want_env["environmentVariables"], STORAGE_KEY: str(kept)}}
    env_changed = _differs(have_env, want_env, _ENV_FIELDS)
    storage_only = False
    if env_changed == ["environmentVariables"]:
        have_vars = dict(have_env.get("environmentVariables") or {})
        want_vars = dict(want_env.get("environmentVariables") or {})
        have_vars.pop(STORAGE_KEY, None)
        want_vars.pop(STORAGE_KEY, None)
        storage_only = normalized(have_vars) == normalized(want_vars)
    changes = {
        "environment": env_changed,
        "model": _differs(have_model, want_model, _MODEL_FIELDS),
        "bandwidth": _differs(have_model, want_model, _BANDWIDTH_FIELDS),
        "logs": [] if normalized(current.get("categoryLogDetails")) == normalized(want.get("categoryLogDetails"))
        else ["categoryLogDetails"],
    }
    metadata = tuple(k for k in ("displayName", "description")
                     if k in want and normalized(current.get(k)) != normalized(want.get(k)))
    tags = current.get("freeformTags") or {}
    if any(tags.get(k) != v for k, v in our_tags.items()):
        metadata += ("freeformTags",)
    steps = [UpdateStep(group, tuple(changes[group])) for group in GROUP_ORDER if changes[group]]
    if state == "INACTIVE" and steps:
        return UpdatePlan([UpdateStep("all", tuple(k for s in steps for k in s.changed))], kept_storage_gb=kept,
                          metadata=metadata)
    if changes["environment"] and not storage_only and "modelId" in changes["model"]:
        return UpdatePlan(steps, needs_downtime=True, kept_storage_gb=kept, metadata=metadata, reason=(
            f"the container ({', '.join(changes['environment'])}) and the model change together; one at a time, "
            "the new engine would start in the old container or the old engine in the new one"))
    return UpdatePlan(steps, kept_storage_gb=kept, metadata=metadata)


def update_details(step: UpdateStep, want: Any, *, model_id: str, merged_tags: dict[str, str],
                   with_metadata: bool) -> ds_models.UpdateModelDeploymentDetails:
    """The UpdateModelDeploymentDetails of one step; `want` is the CreateModelDeploymentDetails it aims at."""
    cfg = want.model_deployment_configuration_details
    model_cfg, env_cfg = cfg.model_configuration_details, cfg.environment_configuration_details
    groups = GROUP_ORDER if step.group == "all" else (step.group,)
    model_fields: dict[str, Any] = {}
    if "model" in groups:
        model_fields.update(instance_configuration=model_cfg.instance_configuration,
                            scaling_policy=model_cfg.scaling_policy)
    if "bandwidth" in groups:
        model_fields.update(bandwidth_mbps=model_cfg.bandwidth_mbps,
                            maximum_bandwidth_mbps=model_cfg.maximum_bandwidth_mbps)
    update_model = (ds_models.UpdateModelConfigurationDetails(model_id=model_id, **model_fields)
                    if model_fields or "model" in groups else None)
    update_env = None
    if "environment" in groups and env_cfg is not None:
        fields = {attr: getattr(env_cfg, attr) for attr in
                  ds_models.UpdateOcirModelDeploymentEnvironmentConfigurationDetails().swagger_types
                  if attr != "environment_configuration_type" and hasattr(env_cfg, attr)}
        update_env = ds_models.UpdateOcirModelDeploymentEnvironmentConfigurationDetails(
            environment_configuration_type="OCIR_CONTAINER", **fields)
    config = None
    if update_model is not None or update_env is not None:
        config = ds_models.UpdateSingleModelDeploymentConfigurationDetails(
            deployment_type="SINGLE_MODEL", model_configuration_details=update_model,
            environment_configuration_details=update_env)
    logs = None
    if "logs" in groups and want.category_log_details is not None:
        source = want.category_log_details
        logs = ds_models.UpdateCategoryLogDetails(access=source.access, predict=source.predict)
    return ds_models.UpdateModelDeploymentDetails(
        display_name=want.display_name if with_metadata else None,
        description=want.description if with_metadata else None,
        freeform_tags=merged_tags if with_metadata else None,
        model_deployment_configuration_details=config,
        category_log_details=logs,
    )
