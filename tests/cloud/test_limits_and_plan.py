"""Pre-flight limit validation (no API call made) and the dry-run plan."""

import json

import pytest

from tests.cloud.conftest import FAST_WAIT, make_request
from trtllm_oci.cloud import limits
from trtllm_oci.cloud.deployment import build_environment_variables, deploy, dry_run_plan
from trtllm_oci.cloud.errors import DeploymentLimitError


@pytest.mark.parametrize("overrides, message", [
    ({"cmd": ["tritonserver", "--x=" + "y" * 2100]}, "cmd \\+ entrypoint are .* bytes"),
    ({"cmd": []}, "cmd is empty"),
    ({"server_port": 8446}, "server_port=8446 is not allowed"),
    ({"health_port": 80}, "health_port=80 is not allowed"),
    ({"server_port": 24224}, "server_port=24224"),
    ({"extra_env": {"BIG": "x" * 2100}}, "environment variables are .* bytes"),
    ({"extra_env": {"1BAD": "x"}}, "'1BAD' is invalid"),
    ({"extra_env": {"BAD_": "x"}}, "'BAD_' is invalid"),
    ({"extra_env": {"A" * 32: "x"}}, "has 32 characters"),
    ({"extra_env": {"TENANCY_OCID": "x"}}, "reserved"),
    ({"extra_env": {"STORAGE_SIZE_IN_GB": "9"}}, "derives from the request"),
    ({"deployment_timeout_minutes": 241}, "1-240"),
    ({"image": "docker.io/library/triton:1"}, "not an OCIR image"),
    ({"image_digest": "sha256:abc"}, "not 'sha256:<64 hex>'"),
    ({"instance_count": 0}, "at least 1"),
    ({"access_log_id": "ocid1.log.x"}, "needs both access_log_id and access_log_group_id"),
    ({"artifact_size_bytes": 40 * 10**12}, "boot-volume maximum"),
])
def test_limit_breaches_fail_before_any_call(clients, standin, artifact_zip, overrides, message):
    with pytest.raises(DeploymentLimitError, match=message):
        deploy(clients, make_request(**overrides), artifact_zip, wait=FAST_WAIT)
    assert standin.received == []


def test_shape_not_offered_fails_before_anything_is_created(clients, standin, artifact_zip):
    with pytest.raises(DeploymentLimitError, match="BM.GPU.H200.8' is not offered.*VM.GPU.A10.2"):
        deploy(clients, make_request(shape="BM.GPU.H200.8"), artifact_zip, wait=FAST_WAIT)
    assert [r["path"] for r in standin.received] == ["/20190101/modelDeploymentShapes"] * 3  # paginated


def test_storage_size_covers_image_and_artifact_with_headroom():
    assert limits.storage_size_gb(0, 0) == 50
    assert limits.storage_size_gb(25 * 10**9, 30 * 10**9) == 75  # 55 + max(13.75, 20)
    assert limits.storage_size_gb(100 * 10**9, 300 * 10**9) == 500  # 400 * 1.25
    with pytest.raises(DeploymentLimitError, match="must be >= 0"):
        limits.storage_size_gb(-1, 0)


def test_streaming_switches_predict_endpoint():
    env = build_environment_variables(make_request(streaming=True))
    assert env["MODEL_DEPLOY_PREDICT_ENDPOINT"] == "/v2/models/ensemble/generate_stream"
    assert env["MODEL_DEPLOY_ENABLE_STREAMING"] == "true"
    assert "MODEL_DEPLOY_ENABLE_STREAMING" not in build_environment_variables(make_request())


def test_dry_run_plan_is_json_and_checks_shape_when_given():
    plan = dry_run_plan(make_request(), offered_shapes=["VM.GPU.A10.2"])
    json.dumps(plan)
    assert plan["create_model_deployment"]["modelDeploymentConfigurationDetails"]["deploymentType"] == "SINGLE_MODEL"
    assert plan["checks"][-1] == {"check": "shape offered", "ok": True, "detail": "VM.GPU.A10.2"}
    with pytest.raises(DeploymentLimitError, match="not offered"):
        dry_run_plan(make_request(), offered_shapes=["VM.GPU.A10.1"])
    assert dry_run_plan(make_request())["checks"][-1]["ok"] is None
