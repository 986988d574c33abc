"""The stand-in's own rules: what it refuses to send is what the SDK would misread."""

from tests.standins.oci_services import validate_body, validate_response


def _work_request(**overrides):
    wr = {"id": "ocid1.datascienceworkrequest.oc1.iad.x", "operationType": "MODEL_DEPLOYMENT_CREATE",
          "status": "IN_PROGRESS", "compartmentId": "ocid1.compartment.oc1..c", "percentComplete": 50.0,
          "resources": [{"actionType": "IN_PROGRESS", "entityType": "modelDeployment", "identifier": "x"}],
          "timeAccepted": "2026-12-01T00:00:00Z"}
    wr.update(overrides)
    return wr


def test_a_work_request_as_the_service_sends_it_passes():
    assert validate_response(_work_request(), "WorkRequest") == []


def test_operation_types_the_sdk_does_not_know_are_refused():
    # The values are MODEL_DEPLOYMENT_CREATE etc. (oci/data_science/models/work_request.py@2.189.0), not
    # CREATE_MODEL_DEPLOYMENT, which the SDK would read as UNKNOWN_ENUM_VALUE.
    [error] = validate_response(_work_request(operationType="CREATE_MODEL_DEPLOYMENT"), "WorkRequest")
    assert "operationType" in error and "does not know" in error


def test_a_missing_required_field_and_a_misspelt_one_are_refused():
    wr = _work_request()
    del wr["percentComplete"]
    wr["percent_complete"] = 50.0
    errors = validate_response(wr, "WorkRequest")
    assert any("percentComplete is required" in e for e in errors)
    assert any("percent_complete is not a field" in e for e in errors)


def test_each_service_has_its_own_models():
    # Object Storage's WorkRequest knows COMPLETED; Data Science's does not.
    assert validate_response(_work_request(status="COMPLETED"), "WorkRequest", service="data_science")
    assert validate_body({"object": "a", "contentType": "application/zip"}, "CreateMultipartUploadDetails",
                         service="object_storage") == []
