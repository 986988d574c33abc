"""One pre-flight for the plan stage: every service limit and the GPU quota, before download, build and push."""

from __future__ import annotations

from importlib import resources

import pytest
import yaml

from tests.cloud.conftest import COMPARTMENT, FAST_WAIT, make_request
from trtllm_oci.cloud.deployment import deploy
from trtllm_oci.cloud.errors import DeploymentLimitError
from trtllm_oci.cloud.ocids import check_ocid
from trtllm_oci.cloud.preflight import preflight_checks
from trtllm_oci.serving.launch import deploy_cmd


def _by_name(report):
    return {c.name: c for c in report.checks}


def test_a_good_request_passes_every_check_without_an_api_call(standin):
    report = preflight_checks(make_request(cmd=deploy_cmd("/r", 8), world_size=8))
    assert report.ok and standin.received == []
    assert _by_name(report)["gpu quota"].ok is None  # needs clients


def test_every_broken_limit_is_reported_at_once():
    req = make_request(server_port=8446, image="fra.ocir.io/standinns/trtllm-serve:1.0",
                       cmd=["tritonserver", "--x=" + "y" * 2100], extra_env={"TENANCY_OCID": "x"},
                       project_id="ocid1.datascienceproject.oc1.phx.p")
    report = preflight_checks(req)
    failed = {c.name for c in report.failures}
    assert failed == {"ports", "image", "cmd+entrypoint size", "environment", "ocids"}
    details = " ".join(c.detail for c in report.failures)
    assert "8446" in details and "iad.ocir.io" in details and "phx" in details and "reserved" in details
    with pytest.raises(DeploymentLimitError, match="ports: .*8446"):
        report.raise_for_failures()


@pytest.mark.parametrize("value, types, message", [
    ("ocid1.datascienceproject.oc1.iad.p", ("compartment", "tenancy"), "OCID of a datascienceproject"),
    ("ocid1.compartment.oc2..c", ("compartment",), "realm oc2"),
    ("ocid1.datascienceproject.oc1.fra.p", ("datascienceproject",), "region fra"),
    ("not-an-ocid", ("compartment",), "is not an OCID"),
])
def test_ocids_name_their_type_realm_and_region(value, types, message):
    with pytest.raises(DeploymentLimitError, match=message):
        check_ocid(value, "target.x", types=types, region="us-ashburn-1")
    check_ocid("ocid1.datascienceproject.oc1.us-ashburn-1.p", "target.x", types=("datascienceproject",),
               region="us-ashburn-1")


def test_the_gpu_quota_is_checked_before_anything_is_built(clients, standin):
    standin.quotas["ds-gpu-a10-count"] = 2
    ok = preflight_checks(make_request(shape="VM.GPU.A10.2"), clients=clients)
    assert _by_name(ok)["gpu quota"].ok is True and _by_name(ok)["shape offered"].ok is True
    short = preflight_checks(make_request(shape="VM.GPU.A10.2", instance_count=2), clients=clients)
    assert _by_name(short)["gpu quota"].ok is False
    assert "needs 4 GPU(s) under service limit ds-gpu-a10-count" in _by_name(short)["gpu quota"].detail
    unknown = preflight_checks(make_request(shape="BM.GPU.H100.8"), clients=clients)
    assert _by_name(unknown)["gpu quota"].ok is None and "oci limits definition list" in \
        _by_name(unknown)["gpu quota"].detail


def test_the_stand_in_refuses_a_deployment_over_the_quota(clients, standin, artifact_zip):
    import oci

    from trtllm_oci.cloud.deployment import build_create_model_deployment_details

    standin.quotas["ds-gpu-a10-count"] = 2
    first = deploy(clients, make_request(shape="VM.GPU.A10.2"), artifact_zip, wait=FAST_WAIT)
    over = build_create_model_deployment_details(make_request(shape="VM.GPU.A10.1"), first.model_id)
    with pytest.raises(oci.exceptions.ServiceError, match="LimitExceeded"):
        clients.data_science.create_model_deployment(over)
    assert len(standin.live_deployments()) == 1


def test_deploy_stops_at_the_quota_before_creating_a_model(clients, standin, artifact_zip):
    standin.quotas["ds-gpu-a10-count"] = 1
    with pytest.raises(DeploymentLimitError, match="service limit ds-gpu-a10-count"):
        deploy(clients, make_request(shape="VM.GPU.A10.2"), artifact_zip, wait=FAST_WAIT)
    assert not standin.requests_to("POST", r"/20190101/models$")


def _catalog_with(tmp_path, monkeypatch, **shapes):
    packaged = yaml.safe_load(resources.files("trtllm_oci.data").joinpath("gpu_shapes.yaml").read_text())
    packaged["shapes"].update(shapes)
    path = tmp_path / "shapes.yaml"
    path.write_text(yaml.safe_dump(packaged))
    monkeypatch.setenv("TRTLLM_OCI_SHAPES", str(path))


def test_the_limit_name_comes_from_the_shape_catalog(clients, standin, tmp_path, monkeypatch):
    from trtllm_oci.cloud.quota import check_gpu_quota

    # A user's catalog names the limit of a shape the packaged one has no name for (BM.GPU.B4.8, the
    # A100-40GB shape ADS lists beside BM.GPU4.8); the pre-flight then checks it with no code change.
    _catalog_with(tmp_path, monkeypatch, **{"BM.GPU.B4.8": {
        "gpu": "A100-40GB", "gpu_count": 8, "price_source": "test", "service_limit_name": "ds-gpu4-count"}})
    standin.quotas["ds-gpu4-count"] = 8
    ok = check_gpu_quota(clients.limits, COMPARTMENT, "BM.GPU.B4.8", 1)
    assert (ok.limit_name, ok.needed_gpus, ok.available, ok.ok) == ("ds-gpu4-count", 8, 8, True)
    assert standin.requests_to("GET", r"/limits/ds-gpu4-count/resourceAvailability$")
    with pytest.raises(DeploymentLimitError, match="needs 16 GPU\\(s\\) under service limit ds-gpu4-count"):
        check_gpu_quota(clients.limits, COMPARTMENT, "BM.GPU.B4.8", 2)


def test_a_catalog_limit_name_the_service_does_not_know_is_reported_not_checked(clients, standin, tmp_path,
                                                                                monkeypatch):
    from trtllm_oci.cloud.quota import check_gpu_quota

    _catalog_with(tmp_path, monkeypatch, **{"BM.GPU.B4.8": {
        "gpu": "A100-40GB", "gpu_count": 8, "price_source": "test", "service_limit_name": "ds-gpu-b4-count"}})
    check = check_gpu_quota(clients.limits, COMPARTMENT, "BM.GPU.B4.8", 1)
    assert check.ok is None and check.limit_name == "ds-gpu-b4-count" and "404" in check.detail


def test_gpu_limit_name_overrides_the_catalog_and_unnamed_shapes_are_not_checked(clients, standin):
    standin.quotas["ds-gpu4-count"] = 0
    standin.quotas["ds-gpu-a10-count"] = 100
    over = preflight_checks(make_request(shape="VM.GPU.A10.2", gpu_limit_name="ds-gpu4-count"), clients=clients)
    assert _by_name(over)["gpu quota"].ok is False and "ds-gpu4-count" in _by_name(over)["gpu quota"].detail
    gb200 = preflight_checks(make_request(shape="BM.GPU.GB200.4"), clients=clients)
    assert _by_name(gb200)["gpu quota"].ok is None
    assert "names no service limit for BM.GPU.GB200.4" in _by_name(gb200)["gpu quota"].detail
