"""Routes a deployment exposes, the route each release is called on, and streams that break after the 200."""

import pytest

from tests.cloud.conftest import FAST_WAIT, make_request
from tests.standins.oci_services import OpenAiContainer, TritonContainer
from trtllm_oci.cloud.deployment import build_create_model_deployment_details, deploy
from trtllm_oci.cloud.invoke import SmokeTestError, predict, predict_stream, smoke_test
from trtllm_oci.cloud.routes import invoke_url, openai_routes, triton_generate_routes
from trtllm_oci.cloud.serialization import serialize
from trtllm_oci.errors import InputError


def _env(req):
    details = serialize(build_create_model_deployment_details(req))
    return details["modelDeploymentConfigurationDetails"]["environmentConfigurationDetails"]


def test_a_streaming_release_streams_token_by_token_and_has_no_plain_generate(clients, standin, artifact_zip, auth):
    result = deploy(clients, make_request(streaming=True), artifact_zip, wait=FAST_WAIT)
    streamed = smoke_test(result.url, auth.signer, prompt="a b c", streaming=True)
    assert streamed.text == "echo: a b c" and streamed.chunks == 4
    assert streamed.url == result.url + "/predictWithResponseStream"  # it is the predict endpoint itself
    with pytest.raises(Exception, match="no non-streaming generation route"):
        smoke_test(result.url, auth.signer, streaming=False, routes=triton_generate_routes("ensemble", streaming=True))


def test_streaming_endpoint_of_a_non_streaming_release_answers_409(clients, standin, artifact_zip, auth):
    standin.default_container = TritonContainer(decoupled=False)
    result = deploy(clients, make_request(), artifact_zip, wait=FAST_WAIT)
    body = {"text_input": "x", "max_tokens": 4, "stream": True}
    with pytest.raises(SmokeTestError, match="HTTP 409.*ExternalServerIncorrectState"):
        list(predict_stream(result.url + "/predictWithResponseStream", body, auth.signer))
    assert smoke_test(result.url, auth.signer, prompt="fine").url == result.url + "/predict"


def test_a_stream_failure_trailer_fails_the_smoke_test(clients, standin, artifact_zip, auth):
    result = deploy(clients, make_request(streaming=True), artifact_zip, wait=FAST_WAIT)
    standin.inject("POST", r"/predictWithResponseStream", "stream_failure", delay=2)
    with pytest.raises(SmokeTestError, match="StreamFailure.*RequestTimeout"):
        smoke_test(result.url, auth.signer, prompt="a b c d", streaming=True)


def test_a_route_that_is_not_registered_is_not_reachable(clients, standin, artifact_zip, auth):
    standin.default_container = TritonContainer(decoupled=False)
    result = deploy(clients, make_request(), artifact_zip, wait=FAST_WAIT)
    with pytest.raises(SmokeTestError, match="HTTP 404"):
        predict(result.url + "/predict/v2/models/tensorrt_llm/generate", {"text_input": "x"}, auth.signer)
    assert predict(result.url + "/predict/v2/models/ensemble/generate", {"text_input": "x", "max_tokens": 1},
                   auth.signer)["text_output"] == "echo: x"


def test_an_openai_server_plugs_in_as_route_data(clients, standin, artifact_zip, auth):
    routes = openai_routes()
    standin.default_container = OpenAiContainer()
    req = make_request(streaming=True, routes=routes)
    env = _env(req)
    assert env["environmentVariables"]["MODEL_DEPLOY_PREDICT_ENDPOINT"] == "/v1/chat/completions"
    assert env["environmentVariables"]["MODEL_DEPLOY_HEALTH_ENDPOINT"] == "/health"
    assert env["predictApiSpecification"] == "openai"
    # The framework allowlists the OpenAI paths; only what it does not know is registered.
    assert [e["endpointUriSuffix"] for e in env["customHttpEndpoints"]] == ["/health"]
    result = deploy(clients, req, artifact_zip, wait=FAST_WAIT)
    served = OpenAiContainer().model
    assert smoke_test(result.url, auth.signer, prompt="a b", streaming=True, routes=routes, model=served).text == \
        "echo: a b"
    assert smoke_test(result.url, auth.signer, prompt="a b", streaming=False, routes=routes, model=served).text == \
        "echo: a b"
    with pytest.raises(InputError, match="served model name"):
        smoke_test(result.url, auth.signer, prompt="a b", streaming=True, routes=routes)


def test_invoke_urls_name_the_prefix_and_the_suffix():
    routes = triton_generate_routes("tensorrt_llm_bls", streaming=False)
    assert invoke_url("https://md/ocid", routes.generate, routes) == "https://md/ocid/predict"
    assert invoke_url("https://md/ocid/", routes.generate_stream, routes) == \
        "https://md/ocid/predictWithResponseStream/v2/models/tensorrt_llm_bls/generate_stream"


def _bench(url, signer, routes, streaming, n=2, prompt="a b c"):
    import asyncio

    from trtllm_oci.bench.payload import ModelCapabilities
    from trtllm_oci.bench.records import RequestRecord, RequestSpec
    from trtllm_oci.bench.transports import OciModelDeploymentTransport

    async def run():
        async with OciModelDeploymentTransport(url, signer, caps=ModelCapabilities.assumed_ensemble(),
                                               routes=routes, streaming=streaming) as transport:
            records = [RequestRecord(i, RequestSpec(prompt, 4)) for i in range(n)]
            await asyncio.gather(*(transport.send(r) for r in records))
            return transport, records

    return asyncio.run(run())


def test_the_benchmark_calls_a_non_streaming_release_on_predict(clients, standin, artifact_zip, auth):
    standin.default_container = TritonContainer(decoupled=False)
    result = deploy(clients, make_request(), artifact_zip, wait=FAST_WAIT)
    transport, records = _bench(result.url + "/predict", auth.signer, result.routes, streaming=False)
    assert transport.url == result.url + "/predict"
    assert all(r.ok for r in records), [r.error for r in records]
    assert not standin.requests_to("POST", r"predictWithResponseStream")


def test_the_benchmark_fails_a_request_whose_stream_breaks(clients, standin, artifact_zip, auth):
    result = deploy(clients, make_request(streaming=True), artifact_zip, wait=FAST_WAIT)
    standin.inject("POST", r"/predictWithResponseStream", "stream_failure", delay=1)
    _, records = _bench(result.url, auth.signer, result.routes, streaming=True, n=3)
    failed = [r for r in records if not r.ok]
    assert len(failed) == 1 and "StreamFailure" in failed[0].error
    assert [r.output_text for r in records if r.ok] == ["echo: a b c"] * 2
