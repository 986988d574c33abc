import oci

from tests.cloud.conftest import COMPARTMENT


def test_sdk_lists_shapes_through_signed_requests(clients, standin):
    shapes = oci.pagination.list_call_get_all_results(clients.data_science.list_model_deployment_shapes,
                                                      COMPARTMENT).data
    assert "VM.GPU.A10.2" in [s.name for s in shapes]
    assert standin.auth_failures == 0
