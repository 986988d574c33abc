"""target.autoscaling: the service's AutoScalingPolicy beside the fixed instance count."""

import pytest
from pydantic import ValidationError

from tests.cloud.conftest import FAST_WAIT, make_request
from trtllm_oci.cloud.autoscaling import Autoscaling, ScalingRule
from trtllm_oci.cloud.deployment import build_create_model_deployment_details, deploy
from trtllm_oci.cloud.preflight import preflight_checks
from trtllm_oci.cloud.serialization import serialize

CPU = ScalingRule(scale_out_threshold=75, scale_in_threshold=25)
QUEUE = ScalingRule(metric="CUSTOM", pending_duration="PT5M",
                    scale_out_query='PredictLatency[1m]{resourceId = "MODEL_DEPLOYMENT_OCID"}.mean() > 2000',
                    scale_in_query='PredictLatency[1m]{resourceId = "MODEL_DEPLOYMENT_OCID"}.mean() < 200')


def _policy(req):
    cfg = serialize(build_create_model_deployment_details(req))["modelDeploymentConfigurationDetails"]
    return cfg["modelConfigurationDetails"]["scalingPolicy"]


def test_autoscaling_becomes_the_services_policy_and_deploys(clients, standin, artifact_zip):
    req = make_request(autoscaling=Autoscaling(min_instances=1, max_instances=4, rules=[CPU, QUEUE]))
    policy = _policy(req)
    assert policy["policyType"] == "AUTOSCALING" and policy["coolDownInSeconds"] == 300
    [details] = policy["autoScalingPolicies"]
    assert (details["minimumInstanceCount"], details["initialInstanceCount"], details["maximumInstanceCount"]) == \
        (1, 1, 4)
    assert [r["metricExpressionRuleType"] for r in details["rules"]] == ["PREDEFINED_EXPRESSION", "CUSTOM_EXPRESSION"]
    assert deploy(clients, req, artifact_zip, wait=FAST_WAIT).lifecycle_state == "ACTIVE"
    assert _policy(make_request())["policyType"] == "FIXED_SIZE"


def test_the_quota_covers_the_autoscaling_maximum(clients, standin):
    standin.quotas["ds-gpu-a10-count"] = 4
    req = make_request(shape="VM.GPU.A10.2", autoscaling=Autoscaling(min_instances=1, max_instances=3, rules=[CPU]))
    [quota] = [c for c in preflight_checks(req, clients=clients).checks if c.name == "gpu quota"]
    assert quota.ok is False and "needs 6 GPU(s)" in quota.detail


@pytest.mark.parametrize("fields, message", [
    ({"min_instances": 3, "max_instances": 2, "rules": [CPU]}, "below min_instances"),
    ({"min_instances": 1, "max_instances": 2, "rules": []}, "at least 1"),
    ({"min_instances": 1, "max_instances": 2, "rules": [CPU], "cool_down_seconds": 60}, "greater than or equal to 300"),
])
def test_impossible_policies_are_refused_in_the_spec(fields, message):
    with pytest.raises(ValidationError, match=message):
        Autoscaling(**fields)


@pytest.mark.parametrize("fields, message", [
    ({"scale_out_threshold": 20, "scale_in_threshold": 80}, "must be below scale_out_threshold"),
    ({"scale_out_threshold": 80, "scale_in_threshold": 20, "pending_duration": "PT1M"}, "between PT3M and PT1H"),
    ({"metric": "CUSTOM", "scale_out_query": "x > 1"}, "needs scale_out_query and scale_in_query"),
])
def test_impossible_rules_are_refused(fields, message):
    with pytest.raises(ValidationError, match=message):
        ScalingRule(**fields)


def test_a_rerun_with_the_same_policy_is_unchanged_and_a_new_maximum_is_one_update(clients, standin, artifact_zip):
    policy = Autoscaling(min_instances=1, max_instances=2, rules=[CPU])
    deploy(clients, make_request(autoscaling=policy), artifact_zip, wait=FAST_WAIT)
    assert deploy(clients, make_request(autoscaling=policy), artifact_zip, wait=FAST_WAIT).action == "unchanged"
    wider = policy.model_copy(update={"max_instances": 5})
    assert deploy(clients, make_request(autoscaling=wider), artifact_zip, wait=FAST_WAIT).action == "updated"
    [put] = standin.requests_to("PUT", r"/modelDeployments/")
    config = put["json"]["modelDeploymentConfigurationDetails"]
    assert config["modelConfigurationDetails"]["scalingPolicy"]["autoScalingPolicies"][0]["maximumInstanceCount"] == 5
    assert "environmentConfigurationDetails" not in config


def test_the_spec_takes_target_autoscaling():
    from pathlib import Path

    from trtllm_oci.release.deployment import deployment_request
    from trtllm_oci.spec import load_spec, parse_spec

    data = load_spec(Path(__file__).parents[2] / "examples" / "release-oci-llama2-13b.yaml").model_dump(mode="json")
    data["target"]["autoscaling"] = {"min_instances": 1, "max_instances": 3,
                                     "rules": [{"metric": "CPU_UTILIZATION", "scale_out_threshold": 70,
                                                "scale_in_threshold": 30}]}
    req = deployment_request(parse_spec(data), artifact_size_bytes=10**9)
    assert req.autoscaling.max_instances == 3 and _policy(req)["policyType"] == "AUTOSCALING"
