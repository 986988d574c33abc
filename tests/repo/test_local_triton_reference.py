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
