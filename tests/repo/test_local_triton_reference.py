"""End to end on CPU: assemble with the reference backend on a tiny Llama, serve it with the real tritonserver
(from nvidia-pytriton) and call the HTTP generate extension like a client of the deployed endpoint."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from trtllm_oci.repo.assemble import RepoOptions, assemble_repository
from trtllm_oci.serving.local import LocalTriton
from trtllm_oci.tiny_model import make_tiny_llama
from trtllm_oci.versions import supported_versions

pytestmark = pytest.mark.triton

PROMPT = "What is ML?"
MAX_TOKENS = 8


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
    return make_tiny_llama(tmp_path_factory.mktemp("tiny") / "tiny-llama")


@pytest.fixture(scope="module")
def hf_greedy_text(tiny_llama) -> str:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    ids = tokenizer(PROMPT, return_tensors="pt").input_ids
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=MAX_TOKENS, do_sample=False)
    return tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)


def _serve(tmp_path_factory, tiny_llama, streaming: bool):
    out = tmp_path_factory.mktemp("repo") / ("streaming" if streaming else "plain")
    options = RepoOptions(
        trtllm_version="1.2.1", backend="reference", streaming=streaming, triton_max_batch_size=4
    )
    manifest = assemble_repository(None, tiny_llama, out, options, hf_model_dir=tiny_llama)
    return LocalTriton(manifest.model_repository, ready_timeout_s=240)


def _post(url: str, body: dict) -> bytes:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.read()
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"{url} -> HTTP {exc.code}: {exc.read().decode(errors='replace')}") from exc


@pytest.mark.timeout(600)
def test_generate_matches_hf_greedy(tmp_path_factory, tiny_llama, hf_greedy_text):
    with _serve(tmp_path_factory, tiny_llama, streaming=False) as triton:
        reply = json.loads(
            _post(
                f"{triton.http_url}/v2/models/ensemble/generate",
                {"text_input": PROMPT, "max_tokens": MAX_TOKENS},
            )
        )
    assert reply["model_name"] == "ensemble"
    assert reply["text_output"] == hf_greedy_text


@pytest.mark.timeout(600)
def test_generate_stream_concatenates_to_hf_greedy(tmp_path_factory, tiny_llama, hf_greedy_text):
    with _serve(tmp_path_factory, tiny_llama, streaming=True) as triton:
        raw = _post(
            f"{triton.http_url}/v2/models/ensemble/generate_stream",
            {"text_input": PROMPT, "max_tokens": MAX_TOKENS, "stream": True},
        ).decode()
    events = [
        json.loads(line.removeprefix("data: ")) for line in raw.splitlines() if line.startswith("data: ")
    ]
    assert all("error" not in event for event in events), events
    assert len(events) > 1, "a streamed reply arrives as several SSE events"
    assert "".join(event["text_output"] for event in events) == hf_greedy_text


# --- response tensors as upstream's models and clients see them, for every version of the version table -------
# Upstream's clients read text_output[0].decode() (inflight_batcher_llm/client/end_to_end_grpc_client.py,
# tools/inflight_batcher_llm/end_to_end_streaming_client.py@v0.5.0) and output_ids[0][0] from tensorrt_llm
# (inflight_batcher_llm/client/inflight_batcher_llm_client.py); the C++ backend fills output_ids as
# [1, beams, tokens] and sequence_length as [1, beams] (fillTritonResponse, model_instance_state.cc).


def _grpc_infer(url: str, model: str, arrays: dict, outputs: list[str]):
    """One request over a gRPC stream, the way upstream's clients send it; returns the single result."""
    import queue

    import tritonclient.grpc as grpcclient
    from tritonclient.utils import np_to_triton_dtype

    inputs = []
    for name, array in arrays.items():
        tensor = grpcclient.InferInput(name, list(array.shape), np_to_triton_dtype(array.dtype))
        tensor.set_data_from_numpy(array)
        inputs.append(tensor)
    results: queue.Queue = queue.Queue()
    client = grpcclient.InferenceServerClient(url)
    try:
        client.start_stream(callback=lambda result, error: results.put(error or result))
        client.async_stream_infer(model, inputs, outputs=[grpcclient.InferRequestedOutput(o) for o in outputs])
        client.stop_stream()
    finally:
        client.close()
    result = results.get(timeout=5)
    assert results.empty(), "a non-decoupled model answers once"
    if isinstance(result, Exception):
        raise AssertionError(f"{model}: {result}")
    return result


def _np_dtype(triton_type: str):
    from tritonclient.utils import triton_to_np_dtype

    return triton_to_np_dtype(triton_type.removeprefix("TYPE_").replace("STRING", "BYTES"))


@pytest.mark.timeout(900)
@pytest.mark.parametrize("version", supported_versions())
def test_response_tensors_have_upstreams_shapes(tmp_path_factory, tiny_llama, version):
    import numpy as np

    from trtllm_oci.repo.interface import interface_for

    interface = interface_for(version)
    batch = 128 if version == "0.5.0" else 4  # 0.5.0 templates hard-code 128
    out = tmp_path_factory.mktemp("shapes") / version
    options = RepoOptions(trtllm_version=version, backend="reference", triton_max_batch_size=batch)
    manifest = assemble_repository(None, tiny_llama, out, options, hf_model_dir=tiny_llama)
    ensemble = interface.models["ensemble"]
    max_tokens_dtype = _np_dtype(ensemble.input("max_tokens").data_type)
    request = {
        "text_input": np.array([[PROMPT.encode()]], dtype=object),
        "max_tokens": np.array([[MAX_TOKENS]], dtype=max_tokens_dtype),
        "bad_words": np.array([[b""]], dtype=object),
        "stop_words": np.array([[b""]], dtype=object),
    }
    trt = interface.models["tensorrt_llm"]
    direct = {
        "input_ids": np.array([[1, 421, 382, 349, 47, 34]], dtype=np.int32),
        "input_lengths": np.array([[6]], dtype=np.int32),
        "request_output_len": np.array([[MAX_TOKENS]], dtype=_np_dtype(trt.input("request_output_len").data_type)),
    }
    declared = {t.name for t in trt.outputs}
    with LocalTriton(manifest.model_repository, ready_timeout_s=300) as triton:
        text = _grpc_infer(triton.grpc_url, "ensemble", request, ["text_output"]).as_numpy("text_output")
        llm = _grpc_infer(triton.grpc_url, "tensorrt_llm", direct, sorted({"output_ids", "sequence_length"} & declared))
    assert text.shape == (1,) and text.dtype == object, "one string per beam, like upstream's postprocessing"
    assert isinstance(text[0], bytes) and text[0].decode("utf-8")
    output_ids = llm.as_numpy("output_ids")
    assert output_ids.dtype == np.int32 and output_ids.shape[:2] == (1, 1)
    if "sequence_length" in declared:
        sequence_length = llm.as_numpy("sequence_length")
        assert sequence_length.shape == (1, 1) and sequence_length.dtype == np.int32
        assert int(sequence_length[0][0]) <= output_ids.shape[2]
    else:
        assert llm.get_output("sequence_length") is None, "0.5 declares no sequence_length"
