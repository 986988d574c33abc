"""Updates compare only what the project sets, keep a sufficient storage size, and send one group at a time."""

import oci
import pytest

from tests.cloud.conftest import FAST_WAIT, make_request
from trtllm_oci.cloud import limits
from trtllm_oci.cloud.deployment import deploy


def _puts(standin):
    return [r["json"] for r in standin.requests_to("PUT", r"/20190101/modelDeployments/")]


def _groups(put):
    config = put.get("modelDeploymentConfigurationDetails") or {}
    return sorted(k for k in ("modelConfigurationDetails", "environmentConfigurationDetails") if config.get(k))


def test_a_rerun_against_echoed_defaults_is_unchanged(clients, standin, artifact_zip):
    first = deploy(clients, make_request(), artifact_zip, wait=FAST_WAIT)
    [md] = standin.live_deployments()
    env = md["modelDeploymentConfigurationDetails"]["environmentConfigurationDetails"]
    assert env["entrypoint"] == [] and "defaultEnvironmentVariables" in env  # what the service sends back
    again = deploy(clients, make_request(), artifact_zip, wait=FAST_WAIT)
    assert again.action == "unchanged" and again.model_deployment_id == first.model_deployment_id
    assert _puts(standin) == []


def test_a_model_swap_keeps_a_storage_size_that_still_suffices(clients, standin, artifact_zip, tmp_path):
    deploy(clients, make_request(artifact_size_bytes=30 * 10**9), artifact_zip, wait=FAST_WAIT)
    newer = tmp_path / "v2.zip"
    newer.write_bytes(b"PK-v2")
    # One GB less artifact: the estimate drops by one GB, the deployment's volume still fits it.
    smaller = make_request(artifact_size_bytes=29 * 10**9)
    assert limits.storage_size_gb(25 * 10**9, 58 * 10**9) < limits.storage_size_gb(25 * 10**9, 60 * 10**9)
    result = deploy(clients, smaller, str(newer), wait=FAST_WAIT)
    assert result.action == "updated"
    [put] = _puts(standin)
    assert _groups(put) == ["modelConfigurationDetails"]


def test_a_bigger_model_grows_the_volume_first_then_swaps_the_model(clients, standin, artifact_zip, tmp_path):
    deploy(clients, make_request(artifact_size_bytes=30 * 10**9), artifact_zip, wait=FAST_WAIT)
    newer = tmp_path / "v2.zip"
    newer.write_bytes(b"PK-v2-bigger")
    deploy(clients, make_request(artifact_size_bytes=60 * 10**9), str(newer), wait=FAST_WAIT)
    env_step, model_step = _puts(standin)
    assert _groups(env_step) == ["environmentConfigurationDetails"]
    assert _groups(model_step) == ["modelConfigurationDetails"]
    [md] = standin.live_deployments()
    variables = md["modelDeploymentConfigurationDetails"]["environmentConfigurationDetails"]["environmentVariables"]
    # A zip is downloaded and unzipped beside itself: the volume holds it twice.
    assert int(variables["STORAGE_SIZE_IN_GB"]) == limits.storage_size_gb(25 * 10**9, 2 * 60 * 10**9)


def test_several_changes_go_one_option_group_per_update(clients, standin, artifact_zip):
    deploy(clients, make_request(), artifact_zip, wait=FAST_WAIT)
    deploy(clients, make_request(bandwidth_mbps=100, instance_count=2, extra_env={"MY_FLAG": "1"}), artifact_zip,
           wait=FAST_WAIT)
    puts = _puts(standin)
    assert len(puts) == 3  # environment, model (count), load balancer (bandwidth)
    [md] = standin.live_deployments()
    model_cfg = md["modelDeploymentConfigurationDetails"]["modelConfigurationDetails"]
    assert model_cfg["bandwidthMbps"] == 100 and model_cfg["scalingPolicy"]["instanceCount"] == 2
    assert not standin.requests_to("POST", r"/actions/deactivate$")


def test_the_service_refuses_two_groups_in_one_update_while_active(clients, standin, artifact_zip):
    result = deploy(clients, make_request(), artifact_zip, wait=FAST_WAIT)
    M = oci.data_science.models
    both = M.UpdateModelDeploymentDetails(model_deployment_configuration_details=M.UpdateSingleModelDeploymentConfigurationDetails(
        deployment_type="SINGLE_MODEL",
        model_configuration_details=M.UpdateModelConfigurationDetails(model_id=result.model_id, bandwidth_mbps=50),
        environment_configuration_details=M.UpdateOcirModelDeploymentEnvironmentConfigurationDetails(
            environment_configuration_type="OCIR_CONTAINER", image="iad.ocir.io/standinns/trtllm-serve:3.0")))
    with pytest.raises(oci.exceptions.ServiceError, match="one option group at a time"):
        clients.data_science.update_model_deployment(result.model_deployment_id, both)


def test_the_quality_verdict_is_tagged_and_a_new_verdict_updates_only_the_tags(clients, standin, artifact_zip):
    """evaluation.on_fail: mark deploys a failed release marked: the verdict is a freeform tag on the model and
    the deployment; a later verdict on the same deployment changes the tag alone (no option group sent)."""
    from trtllm_oci.cloud.deployment import QUALITY_TAG

    deploy(clients, make_request(quality_verdict="failed"), artifact_zip, wait=FAST_WAIT)
    [md] = standin.live_deployments()
    [model] = standin.live_models()
    assert md["freeformTags"][QUALITY_TAG] == "failed" and model["freeformTags"][QUALITY_TAG] == "failed"
    again = deploy(clients, make_request(quality_verdict="passed"), artifact_zip, wait=FAST_WAIT)
    [put] = _puts(standin)
    assert put["freeformTags"][QUALITY_TAG] == "passed" and _groups(put) == []
    [md] = standin.live_deployments()
    assert again.model_deployment_id == md["id"] and md["freeformTags"][QUALITY_TAG] == "passed"
