"""End-to-end deploy/update/teardown with the real oci SDK against the OCI stand-in."""

import logging

import pytest

from tests.cloud.conftest import COMPARTMENT, FAST_WAIT, make_request
from tests.standins.oci_services import TritonContainer
from trtllm_oci.cloud.artifact import StagingBucket
from trtllm_oci.cloud.deployment import (
    MODEL_ID_PLACEHOLDER,
    RELEASE_TAG,
    deploy,
    dry_run_plan,
    teardown_release,
)
from trtllm_oci.cloud.errors import ArtifactUploadError, DeploymentFailedError, DeploymentLimitError
from trtllm_oci.cloud.invoke import smoke_test


def test_create_flow_matches_dry_run_and_serves(clients, standin, artifact_zip, auth):
    standin.default_container = TritonContainer(decoupled=False)
    req = make_request(artifact_sha256="0" * 64, access_log_id="ocid1.log.a", access_log_group_id="ocid1.lg.a")
    result = deploy(clients, req, artifact_zip, wait=FAST_WAIT)

    assert result.action == "created" and result.lifecycle_state == "ACTIVE"
    [model_post] = standin.requests_to("POST", r"/20190101/models$")
    [md_post] = standin.requests_to("POST", r"/20190101/modelDeployments$")
    plan = dry_run_plan(req)
    assert model_post["json"] == plan["create_model"]
    sent_md = md_post["json"]
    mcd = sent_md["modelDeploymentConfigurationDetails"]["modelConfigurationDetails"]
    assert mcd["modelId"] == result.model_id
    mcd["modelId"] = MODEL_ID_PLACEHOLDER
    assert sent_md == plan["create_model_deployment"]
    env = sent_md["modelDeploymentConfigurationDetails"]["environmentConfigurationDetails"]
    assert env["environmentVariables"]["MODEL_DEPLOY_PREDICT_ENDPOINT"] == "/v2/models/ensemble/generate"
    assert {e["endpointUriSuffix"]: e["httpMethods"] for e in env["customHttpEndpoints"]} == {
        "/v2/models/ensemble/generate": ["POST"], "/v2/models/ensemble/generate_stream": ["POST"],
        "/v2/health/ready": ["GET"], "/v2/models/ensemble/config": ["GET"]}
    assert env["cmd"] == req.cmd and env["imageDigest"] == req.image_digest
    with open(artifact_zip, "rb") as fh:
        assert standin.artifacts[result.model_id] == fh.read()
    assert standin.requests_to("POST", r"/artifact$")[0]["headers"]["content-length"] == str(len(
        standin.artifacts[result.model_id]))

    assert smoke_test(result.url, auth.signer, prompt="hello there").text == "echo: hello there"
    # A non-streaming release still exposes generate_stream; its model answers it in one event.
    streamed = smoke_test(result.url, auth.signer, prompt="a b c", streaming=True, routes=result.routes)
    assert streamed.text == "echo: a b c" and streamed.chunks == 1
    assert streamed.url.endswith("/predictWithResponseStream/v2/models/ensemble/generate_stream")
    assert standin.auth_failures == 0


def test_second_run_is_idempotent_and_new_artifact_swaps_model(clients, standin, artifact_zip, tmp_path):
    req = make_request()
    first = deploy(clients, req, artifact_zip, wait=FAST_WAIT)
    again = deploy(clients, req, artifact_zip, wait=FAST_WAIT)
    assert again.action == "unchanged" and again.model_deployment_id == first.model_deployment_id
    assert len(standin.requests_to("POST", r"/20190101/models$")) == 1

    newer = tmp_path / "v2.zip"
    newer.write_bytes(b"PK-different-artifact")
    swapped = deploy(clients, req, str(newer), wait=FAST_WAIT)
    assert swapped.action == "updated" and swapped.model_deployment_id == first.model_deployment_id
    assert swapped.model_id != first.model_id and first.model_id in swapped.deleted
    [update] = standin.requests_to("PUT", r"/modelDeployments/")
    assert "environmentConfigurationDetails" not in update["json"]["modelDeploymentConfigurationDetails"]
    assert [d["id"] for d in standin.live_deployments()] == [first.model_deployment_id]
    assert [m["id"] for m in standin.live_models()] == [swapped.model_id]


def test_an_image_change_is_a_zero_downtime_environment_update(clients, standin, artifact_zip):
    deploy(clients, make_request(), artifact_zip, wait=FAST_WAIT)
    result = deploy(clients, make_request(image="iad.ocir.io/standinns/trtllm-serve:2.0"), artifact_zip,
                    wait=FAST_WAIT)
    assert result.action == "updated" and result.lifecycle_state == "ACTIVE"
    [md] = standin.live_deployments()
    assert md["modelDeploymentConfigurationDetails"]["environmentConfigurationDetails"]["image"].endswith(":2.0")
    [update] = standin.requests_to("PUT", r"/modelDeployments/")
    assert "modelConfigurationDetails" not in update["json"]["modelDeploymentConfigurationDetails"]
    assert not standin.requests_to("POST", r"/actions/deactivate$")


def test_image_and_model_changing_together_need_downtime_opt_in(clients, standin, artifact_zip, tmp_path):
    deploy(clients, make_request(), artifact_zip, wait=FAST_WAIT)
    newer = tmp_path / "v2.zip"
    newer.write_bytes(b"PK-new-engines-for-the-new-image")
    changed = make_request(image="iad.ocir.io/standinns/trtllm-serve:2.0")
    models_before = len(standin.live_models())
    with pytest.raises(DeploymentLimitError, match="container .* and the model change together.*allow_downtime"):
        deploy(clients, changed, str(newer), wait=FAST_WAIT)
    assert len(standin.live_models()) == models_before  # refused before anything was created
    result = deploy(clients, changed, str(newer), wait=FAST_WAIT, allow_downtime=True)
    assert result.lifecycle_state == "ACTIVE"
    assert len(standin.requests_to("POST", r"/actions/deactivate$")) == 1
    assert len(standin.requests_to("POST", r"/actions/activate$")) == 1
    assert len(standin.requests_to("PUT", r"/modelDeployments/")) == 1


def test_teardown_removes_everything_of_the_release_only(clients, standin, artifact_zip):
    kept = deploy(clients, make_request(release_id="other", display_name="other"), artifact_zip, wait=FAST_WAIT)
    gone = deploy(clients, make_request(), artifact_zip, wait=FAST_WAIT)
    report = teardown_release(clients, COMPARTMENT, "rel-001", wait=FAST_WAIT)
    assert report.deleted_deployments == [gone.model_deployment_id]
    assert report.deleted_models == [gone.model_id]
    assert [d["id"] for d in standin.live_deployments()] == [kept.model_deployment_id]
    assert [m["id"] for m in standin.live_models()] == [kept.model_id]
    assert all(m["freeformTags"][RELEASE_TAG] == "other" for m in standin.live_models())


def test_large_artifact_goes_through_object_storage_export(clients, standin, artifact_zip):
    staging = StagingBucket(bucket="artifacts", region="us-ashburn-1")
    result = deploy(clients, make_request(), artifact_zip, wait=FAST_WAIT, direct_limit_bytes=1000,
                    staging=staging, part_size=16 * 1024, parallel_parts=3)
    with open(artifact_zip, "rb") as fh:
        assert standin.artifacts[result.model_id] == fh.read()
    assert len(standin.requests_to("PUT", r"/u/")) > 3
    assert not standin.requests_to("POST", r"/models/[^/]+/artifact$")
    assert standin.objects == {} and standin.uploads == {}


def test_large_artifact_without_bucket_is_a_clear_error_and_rolls_back(clients, standin, artifact_zip):
    with pytest.raises(ArtifactUploadError, match="StagingBucket"):
        deploy(clients, make_request(), artifact_zip, wait=FAST_WAIT, direct_limit_bytes=1000)
    assert standin.live_models() == []


def test_failed_export_work_request_reports_and_rolls_back(clients, standin, artifact_zip):
    standin.inject("POST", r"/actions/exportArtifact$", "fail_work_request")
    with pytest.raises(ArtifactUploadError, match="work request .* ended FAILED"):
        deploy(clients, make_request(), artifact_zip, wait=FAST_WAIT, direct_limit_bytes=1000,
               staging=StagingBucket(bucket="artifacts", region="us-ashburn-1"), part_size=16 * 1024)
    assert standin.live_models() == [] and standin.objects == {}


def test_no_secret_in_logs_during_deploy(clients, standin, artifact_zip, api_key, caplog):
    caplog.set_level(logging.DEBUG)
    standin.inject("POST", r"/20190101/modelDeployments$", "fail_work_request")
    with pytest.raises(DeploymentFailedError) as info:
        deploy(clients, make_request(), artifact_zip, wait=FAST_WAIT)
    secret_line = api_key["pem"].splitlines()[1]
    assert secret_line not in caplog.text and secret_line not in str(info.value)
    assert "BEGIN RSA PRIVATE KEY" not in caplog.text
