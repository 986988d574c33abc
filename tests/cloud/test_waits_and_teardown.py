"""Waits sized from the service's own limits, and teardown from any state."""

import pytest

from tests.cloud.conftest import COMPARTMENT, FAST_WAIT, make_request
from trtllm_oci.cloud.deployment import bootstrap_wait, deploy, teardown_release
from trtllm_oci.cloud.errors import DeploymentFailedError
from trtllm_oci.cloud.waiting import PROVISIONING_ALLOWANCE_MINUTES


def test_the_client_waits_at_least_as_long_as_the_service_may_bootstrap():
    for minutes in (60, 240):
        policy = bootstrap_wait(make_request(deployment_timeout_minutes=minutes))
        assert policy.timeout_seconds == 60 * (minutes + PROVISIONING_ALLOWANCE_MINUTES)


def test_a_failed_deployment_is_torn_down_with_its_model(clients, standin, artifact_zip):
    standin.inject("POST", r"/20190101/modelDeployments$", "fail_work_request")
    with pytest.raises(DeploymentFailedError):
        deploy(clients, make_request(), artifact_zip, wait=FAST_WAIT, cleanup_on_failure=False)
    assert [d["lifecycleState"] for d in standin.live_deployments()] == ["FAILED"]
    report = teardown_release(clients, COMPARTMENT, "rel-001", wait=FAST_WAIT)
    assert len(report.deleted_deployments) == 1 and len(report.deleted_models) == 1
    assert standin.live_deployments() == [] and standin.live_models() == []


def test_teardown_waits_out_a_deployment_still_creating(clients, standin, artifact_zip):
    from trtllm_oci.cloud.errors import StillInProgressError
    from trtllm_oci.cloud.waiting import WaitPolicy
    standin.lifecycle_delay = 1.0
    with pytest.raises(StillInProgressError):
        deploy(clients, make_request(), artifact_zip, wait=WaitPolicy(timeout_seconds=0.2, poll_seconds=0.05))
    teardown_release(clients, COMPARTMENT, "rel-001", wait=FAST_WAIT)
    assert standin.live_deployments() == [] and standin.live_models() == []


def test_teardown_removes_a_deployment_that_fails_while_it_waits(clients, standin, artifact_zip):
    from trtllm_oci.cloud.errors import StillInProgressError
    from trtllm_oci.cloud.waiting import WaitPolicy
    standin.lifecycle_delay = 1.0
    standin.inject("POST", r"/20190101/modelDeployments$", "fail_work_request")
    with pytest.raises(StillInProgressError):
        deploy(clients, make_request(), artifact_zip, wait=WaitPolicy(timeout_seconds=0.2, poll_seconds=0.05))
    report = teardown_release(clients, COMPARTMENT, "rel-001", wait=FAST_WAIT)
    assert len(report.deleted_deployments) == 1 and len(report.deleted_models) == 1
    assert standin.live_deployments() == [] and standin.live_models() == []


def test_a_deployment_that_needs_attention_is_deactivated_then_deleted(clients, standin, artifact_zip, tmp_path):
    deploy(clients, make_request(), artifact_zip, wait=FAST_WAIT)
    standin.inject("PUT", r"/20190101/modelDeployments/", "needs_attention")
    newer = tmp_path / "v2.zip"
    newer.write_bytes(b"PK-v2")
    with pytest.raises(DeploymentFailedError):
        deploy(clients, make_request(), str(newer), wait=FAST_WAIT)
    teardown_release(clients, COMPARTMENT, "rel-001", wait=FAST_WAIT)
    assert len(standin.requests_to("POST", r"/actions/deactivate$")) == 1
    assert standin.live_deployments() == [] and standin.live_models() == []


def test_a_bootstrap_longer_than_deployment_timeout_fails_like_the_service(clients, standin, artifact_zip):
    # llama2 README Troubleshooting: "Workflow timed out. Maximum runtime was: <deployment_timeout> minutes."
    standin.bootstrap_minutes = 90
    with pytest.raises(DeploymentFailedError, match="Workflow timed out. Maximum runtime was: 60 minutes"):
        deploy(clients, make_request(deployment_timeout_minutes=60), artifact_zip, wait=FAST_WAIT)
    assert standin.live_deployments() == [] and standin.live_models() == []
    result = deploy(clients, make_request(deployment_timeout_minutes=120), artifact_zip, wait=FAST_WAIT)
    assert result.lifecycle_state == "ACTIVE"
