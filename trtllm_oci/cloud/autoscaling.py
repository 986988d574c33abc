"""Autoscaling of a Model Deployment: the service's AutoScalingPolicy, written as a small spec.

The service scales between `min_instances` and `max_instances` on threshold rules: predefined CPU or memory
utilisation, or a custom Monitoring Query Language expression (any metric the deployment emits). Rules, limits
and defaults are the SDK's (oci/data_science/models/auto_scaling_policy.py, threshold_based_auto_scaling_policy_
details.py, predefined_metric_expression_rule.py, custom_metric_expression_rule.py, scaling_configuration.py
@2.189.0): cool-down at least 300 s (the default), pending duration PT3M..PT1H (default PT3M). An MQL query may name
the deployment as `MODEL_DEPLOYMENT_OCID` (the docstring's example: `CPUUtilization[1m]{resourceId =
"MODEL_DEPLOYMENT_OCID"}.grouping().mean() > 75`).

Plain pydantic here, with no SDK import at module import time, so the release spec can use the model as its
`target.autoscaling` field.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

COOL_DOWN_MIN_SECONDS = 300
_DURATION_RE = re.compile(r"^PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?$")
PENDING_MIN_SECONDS, PENDING_MAX_SECONDS = 180, 3600


def _duration_seconds(value: str) -> int | None:
    match = _DURATION_RE.match(value)
    if not match or not any(match.groups()):
        return None
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return 3600 * hours + 60 * minutes + seconds


class ScalingRule(BaseModel):
    """Scale out when the metric passes `scale_out_threshold` (or `scale_out_query` fires), in below `scale_in_...`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: Literal["CPU_UTILIZATION", "MEMORY_UTILIZATION", "CUSTOM"] = "CPU_UTILIZATION"
    scale_out_threshold: int | None = Field(default=None, ge=1, le=100, description="percent, predefined metrics")
    scale_in_threshold: int | None = Field(default=None, ge=0, le=99, description="percent, predefined metrics")
    scale_out_query: str | None = Field(default=None, description="MQL alarm query, metric CUSTOM")
    scale_in_query: str | None = Field(default=None, description="MQL alarm query, metric CUSTOM")
    pending_duration: str = Field(default="PT3M", description="ISO 8601, PT3M..PT1H")
    instance_count_adjustment: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _consistent(self) -> ScalingRule:
        seconds = _duration_seconds(self.pending_duration)
        if seconds is None or not PENDING_MIN_SECONDS <= seconds <= PENDING_MAX_SECONDS:
            raise ValueError(f"pending_duration {self.pending_duration!r} must be ISO 8601 between PT3M and PT1H")
        if self.metric == "CUSTOM":
            if not (self.scale_out_query and self.scale_in_query):
                raise ValueError("metric CUSTOM needs scale_out_query and scale_in_query (MQL alarm expressions)")
            if self.scale_out_threshold is not None or self.scale_in_threshold is not None:
                raise ValueError("thresholds belong to CPU_UTILIZATION/MEMORY_UTILIZATION; a CUSTOM rule's query "
                                 "carries its own threshold")
            return self
        if self.scale_out_threshold is None or self.scale_in_threshold is None:
            raise ValueError(f"metric {self.metric} needs scale_out_threshold and scale_in_threshold (percent)")
        if self.scale_in_threshold >= self.scale_out_threshold:
            raise ValueError(f"scale_in_threshold ({self.scale_in_threshold}) must be below scale_out_threshold "
                             f"({self.scale_out_threshold}), or the deployment would scale in and out forever")
        if self.scale_out_query or self.scale_in_query:
            raise ValueError("queries belong to metric CUSTOM")
        return self


class Autoscaling(BaseModel):
    """`target.autoscaling`: used instead of the fixed `instance_count` when set."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_instances: int = Field(ge=1)
    max_instances: int = Field(ge=1)
    initial_instances: int | None = Field(default=None, ge=1, description="default: min_instances")
    cool_down_seconds: int = Field(default=COOL_DOWN_MIN_SECONDS, ge=COOL_DOWN_MIN_SECONDS)
    rules: list[ScalingRule] = Field(min_length=1)

    @model_validator(mode="after")
    def _bounds(self) -> Autoscaling:
        if self.max_instances < self.min_instances:
            raise ValueError(f"max_instances ({self.max_instances}) is below min_instances ({self.min_instances})")
        initial = self.initial_instances or self.min_instances
        if not self.min_instances <= initial <= self.max_instances:
            raise ValueError(f"initial_instances ({initial}) must lie between min_instances and max_instances")
        return self


def scaling_policy(autoscaling: Autoscaling | None, instance_count: int) -> Any:
    """The SDK ScalingPolicy: AutoScalingPolicy for `autoscaling`, FixedSizeScalingPolicy otherwise."""
    from oci.data_science import models as m

    if autoscaling is None:
        return m.FixedSizeScalingPolicy(instance_count=instance_count)

    def rule(r: ScalingRule) -> Any:
        common = {"pending_duration": r.pending_duration, "instance_count_adjustment": r.instance_count_adjustment}
        if r.metric == "CUSTOM":
            return m.CustomMetricExpressionRule(
                scale_in_configuration=m.CustomExpressionQueryScalingConfiguration(query=r.scale_in_query, **common),
                scale_out_configuration=m.CustomExpressionQueryScalingConfiguration(query=r.scale_out_query,
                                                                                   **common))
        return m.PredefinedMetricExpressionRule(
            metric_type=r.metric,
            scale_in_configuration=m.PredefinedExpressionThresholdScalingConfiguration(threshold=r.scale_in_threshold,
                                                                                       **common),
            scale_out_configuration=m.PredefinedExpressionThresholdScalingConfiguration(
                threshold=r.scale_out_threshold, **common))

    return m.AutoScalingPolicy(
        cool_down_in_seconds=autoscaling.cool_down_seconds, is_enabled=True,
        auto_scaling_policies=[m.ThresholdBasedAutoScalingPolicyDetails(
            rules=[rule(r) for r in autoscaling.rules], maximum_instance_count=autoscaling.max_instances,
            minimum_instance_count=autoscaling.min_instances,
            initial_instance_count=autoscaling.initial_instances or autoscaling.min_instances)])
