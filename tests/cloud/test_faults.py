"""Injected faults: retried where safe, otherwise a clear error with nothing orphaned."""

import pytest

from tests.cloud.conftest import FAST_WAIT, make_request
from trtllm_oci.cloud.deployment import deploy
from trtllm_oci.cloud.errors import DeploymentFailedError


@pytest.mark.parametrize("status", [429, 500, 503])
def test_throttling_and_server_errors_on_creates_are_retried_without_duplicates(clients, standin, artifact_zip,
                                                                                 status):
    standin.inject("POST", r"/20190101/models$", "status", status=status, times=2)
    standin.inject("POST", r"/20190101/modelDeployments$", "status", status=status, times=1)
    result = deploy(clients, make_request(), artifact_zip, wait=FAST_WAIT)
    assert result.lifecycle_state == "ACTIVE"
    model_posts = standin.requests_to("POST", r"/20190101/models$")
    assert len(model_posts) == 3
    assert len({p["headers"]["opc-retry-token"] for p in model_posts}) == 1
    assert len(standin.live_models()) == 1 and len(standin.live_deployments()) == 1


def test_lost_response_to_create_is_retried_with_same_token_and_not_duplicated(clients, standin, artifact_zip):
    # The stand-in creates the model, then answers after the client's 1 s read timeout.
    standin.inject("POST", r"/20190101/models$", "slow", delay=1.5)
    result = deploy(clients, make_request(), artifact_zip, wait=FAST_WAIT)
    assert len(standin.requests_to("POST", r"/20190101/models$")) == 2
    assert [m["id"] for m in standin.live_models()] == [result.model_id]


def test_retries_give_up_with_the_service_error_and_nothing_orphaned(clients, standin, artifact_zip):
    standin.inject("POST", r"/20190101/modelDeployments$", "status", status=500, times=50)
    with pytest.raises(Exception) as info:
        deploy(clients, make_request(), artifact_zip, wait=FAST_WAIT)
    assert getattr(info.value, "status", None) == 500
    assert standin.live_models() == [] and standin.live_deployments() == []


def test_failed_create_work_request_explains_and_cleans_up(clients, standin, artifact_zip):
    standin.inject("POST", r"/20190101/modelDeployments$", "fail_work_request")
    with pytest.raises(DeploymentFailedError) as info:
        deploy(clients, make_request(), artifact_zip, wait=FAST_WAIT)
    err = info.value
    assert "ended FAILED" in str(err) and "health check" in str(err)
    assert any("health check" in e for e in err.work_request_errors)
    assert err.model_deployment_id in err.cleaned_up and len(err.cleaned_up) == 2 and err.left_for_teardown == []
    assert standin.live_models() == [] and standin.live_deployments() == []


def test_needs_attention_after_update_keeps_old_release_serving(clients, standin, artifact_zip, tmp_path):
    first = deploy(clients, make_request(), artifact_zip, wait=FAST_WAIT)
    standin.inject("PUT", r"/20190101/modelDeployments/", "needs_attention")
    newer = tmp_path / "v2.zip"
    newer.write_bytes(b"PK-v2")
    with pytest.raises(DeploymentFailedError) as info:
        deploy(clients, make_request(), str(newer), wait=FAST_WAIT)
    assert "previous configuration" in str(info.value)
    [md] = standin.live_deployments()
    assert md["lifecycleState"] == "NEEDS_ATTENTION"
    assert md["modelDeploymentConfigurationDetails"]["modelConfigurationDetails"]["modelId"] == first.model_id
    assert [m["id"] for m in standin.live_models()] == [first.model_id]


def test_failed_deployment_of_release_is_replaced_on_next_run(clients, standin, artifact_zip):
    standin.inject("POST", r"/20190101/modelDeployments$", "fail_work_request")
    with pytest.raises(DeploymentFailedError):
        deploy(clients, make_request(), artifact_zip, wait=FAST_WAIT, cleanup_on_failure=False)
    assert [d["lifecycleState"] for d in standin.live_deployments()] == ["FAILED"]
    result = deploy(clients, make_request(), artifact_zip, wait=FAST_WAIT)
    assert result.action == "created"
    assert [d["id"] for d in standin.live_deployments()] == [result.model_deployment_id]


def test_a_client_time_out_is_not_a_failure_and_deletes_nothing(clients, standin, artifact_zip):
    standin.lifecycle_delay = 3.0
    from trtllm_oci.cloud.errors import StillInProgressError
    from trtllm_oci.cloud.waiting import WaitPolicy
    with pytest.raises(StillInProgressError, match="not a failure") as info:
        deploy(clients, make_request(), artifact_zip, wait=WaitPolicy(timeout_seconds=0.5, poll_seconds=0.05))
    [md] = standin.live_deployments()
    assert md["lifecycleState"] == "CREATING"
    assert not standin.requests_to("DELETE", r"/20190101/")
    assert md["id"] in info.value.left_for_teardown and len(standin.live_models()) == 1
    # The next run waits for the same deployment instead of creating a second one.
    again = deploy(clients, make_request(), artifact_zip, wait=FAST_WAIT)
    assert again.model_deployment_id == md["id"] and again.lifecycle_state == "ACTIVE"
    assert len(standin.live_deployments()) == 1 and len(standin.live_models()) == 1
