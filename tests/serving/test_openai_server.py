"""The CPU OpenAI smoke server on a ModelOpt FP8 export of the tiny model, through its launcher.

One server for the module (it loads torch and the model once). Answers are parsed with the openai SDK's own
types (and the SDK client is used for the streaming calls), so a shape the SDK does not accept fails here.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import httpx
import openai
import pytest
from openai.types import Completion
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from trtllm_oci.checkpoint.modelopt_ptq import (
    TINY_CALIBRATION_TEXTS,
    CalibrationTexts,
    KvCacheQuant,
    PtqMethod,
    PtqRequest,
    run_ptq,
)
from trtllm_oci.serving.openai_app import SERVER_HEADER, SERVER_NAME
from trtllm_oci.serving.openai_server import (
    OpenAIServerError,
    OpenAIServerKind,
    OpenAIServerSpec,
    PortInUseError,
    ServerDiedError,
    choose_openai_server,
    server_argv,
    start_openai_server,
)
from trtllm_oci.tiny_model import TINY_CHAT_TEMPLATE, make_tiny_llama

SERVED = "tiny-fp8"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def fp8_checkpoint(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("openai")
    source = make_tiny_llama(root / "tiny-chat", chat_template=TINY_CHAT_TEMPLATE)
    result = run_ptq(PtqRequest(model_dir=source, output_dir=root / "tiny-fp8", method=PtqMethod.FP8,
                                kv_cache=KvCacheQuant.FP8, calibration=CalibrationTexts(texts=TINY_CALIBRATION_TEXTS),
                                device="cpu", calib_seq_len=64, batch_size=4))
    return result.output_dir


@pytest.fixture(scope="module")
def server(fp8_checkpoint, tmp_path_factory):
    log_path = tmp_path_factory.mktemp("openai-log") / "server.log"
    spec = OpenAIServerSpec(checkpoint_dir=fp8_checkpoint, served_model_name=SERVED, port=free_port(),
                            startup_timeout_s=240)
    running = start_openai_server(spec, choice=choose_openai_server("cpu-smoke"), log_path=log_path)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="unused", max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def tokenizer(fp8_checkpoint):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(fp8_checkpoint)


def post(server, route: str, body: dict) -> httpx.Response:
    return httpx.post(f"{server.base_url}{route}", json=body, timeout=120)


def sse_events(response: httpx.Response) -> list:
    events = []
    for line in response.text.splitlines():
        if line.startswith("data: "):
            payload = line[len("data: "):].strip()
            events.append(payload if payload == "[DONE]" else json.loads(payload))
    return events


# --------------------------------------------------------------------------------------- the routes


def test_health_models_and_the_label(server):
    health = httpx.get(f"{server.base_url}/health")
    assert (health.status_code, health.content) == (200, b"")
    assert health.headers[SERVER_HEADER] == SERVER_NAME
    models = httpx.get(f"{server.base_url}/v1/models").json()
    assert models["object"] == "list"
    assert [(m["id"], m["owned_by"]) for m in models["data"]] == [(SERVED, SERVER_NAME)]
    assert any(SERVER_NAME in line and "ready" in line for line in server.log_tail())
    assert any("dequantized to float32 on load" in line for line in server.log_tail())  # FP8 is labelled as such
    assert server.log_path.read_text().count("ready: ") == 1


def test_completion_with_usage(server, tokenizer):
    body = {"model": SERVED, "prompt": "The quick brown fox", "max_tokens": 6, "temperature": 0, "ignore_eos": True}
    first = Completion.model_validate(post(server, "/v1/completions", body).json())
    again = Completion.model_validate(post(server, "/v1/completions", body).json())
    assert first.usage.prompt_tokens == len(tokenizer("The quick brown fox")["input_ids"])
    assert (first.usage.completion_tokens, first.usage.total_tokens) == (6, first.usage.prompt_tokens + 6)
    assert first.choices[0].finish_reason == "length"
    assert first.choices[0].text == again.choices[0].text  # greedy is deterministic
    assert first.model == SERVED


def test_chat_completion_uses_the_chat_template(server, tokenizer):
    messages = [{"role": "user", "content": "What is ML?"}]
    answer = ChatCompletion.model_validate(post(server, "/v1/chat/completions", {
        "model": SERVED, "messages": messages, "max_tokens": 5, "temperature": 0, "ignore_eos": True}).json())
    templated = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert templated.endswith("user: What is ML?\nassistant:")
    assert answer.usage.prompt_tokens == len(tokenizer(templated, add_special_tokens=False)["input_ids"])
    assert answer.usage.completion_tokens == 5
    assert answer.choices[0].message.role == "assistant"


def test_chat_stream_with_usage_matches_the_plain_answer(server, client):
    messages = [{"role": "user", "content": "Café, naïve, résumé"}]
    plain = client.chat.completions.create(model=SERVED, messages=messages, max_tokens=8, temperature=0,
                                           extra_body={"ignore_eos": True})
    chunks = list(client.chat.completions.create(model=SERVED, messages=messages, max_tokens=8, temperature=0,
                                                 stream=True, stream_options={"include_usage": True},
                                                 extra_body={"ignore_eos": True}))
    assert all(isinstance(c, ChatCompletionChunk) for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == plain.choices[0].message.content
    token_chunks = [c for c in chunks[1:] if c.choices]
    assert len(token_chunks) == 8  # one chunk per generated token, as trtllm-serve streams
    assert token_chunks[-1].choices[0].finish_reason == "length"
    last = chunks[-1]
    assert last.choices == [] and last.usage.completion_tokens == 8
    assert last.usage.prompt_tokens == plain.usage.prompt_tokens
    assert all(c.usage is None for c in chunks[:-1])


def test_completion_stream_usage_options(server, client):
    body = {"model": SERVED, "prompt": "Triton Inference Server", "max_tokens": 4, "temperature": 0,
            "ignore_eos": True, "stream": True}
    events = sse_events(post(server, "/v1/completions", body))
    assert events[-1] == "[DONE]" and all("usage" not in e for e in events[:-1])
    # The SDK parses completion chunks as Completion objects (its streaming type), without a final-chunk check.
    chunks = list(client.completions.create(
        model=SERVED, prompt="Triton Inference Server", max_tokens=4, temperature=0, stream=True,
        extra_body={"ignore_eos": True, "stream_options": {"include_usage": True, "continuous_usage_stats": True}}))
    assert all(isinstance(c, Completion) and c.object == "text_completion" for c in chunks)
    assert [c.usage.completion_tokens for c in chunks] == [1, 2, 3, 4, 4]  # running counts, then the final chunk
    assert chunks[-1].choices == [] and chunks[-2].choices[0].finish_reason == "length"
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "".join(
        e["choices"][0]["text"] for e in events[:-1])


def test_stop_string_ends_the_answer(server):
    full = post(server, "/v1/completions", {"model": SERVED, "prompt": "The quick", "max_tokens": 12,
                                            "temperature": 0, "ignore_eos": True}).json()["choices"][0]["text"]
    stop = full[3:5] if len(full) >= 5 else full[-1:]
    answer = post(server, "/v1/completions", {"model": SERVED, "prompt": "The quick", "max_tokens": 12,
                                              "temperature": 0, "ignore_eos": True, "stop": stop}).json()
    assert answer["choices"][0]["finish_reason"] == "stop"
    assert answer["choices"][0]["text"] == full[: full.find(stop)]
    assert answer["usage"]["completion_tokens"] < 12


def test_metrics_lists_requests_and_drains(server):
    post(server, "/v1/completions", {"model": SERVED, "prompt": "x", "max_tokens": 2, "ignore_eos": True})
    stats = httpx.get(f"{server.base_url}/metrics").json()
    assert isinstance(stats, list) and stats
    assert stats[-1]["completionTokens"] == 2 and stats[-1]["server"] == SERVER_NAME
    assert httpx.get(f"{server.base_url}/metrics").json() == []


# ------------------------------------------------------------------------------------ echo and logprobs


@pytest.fixture(scope="module")
def reference_logprobs(fp8_checkpoint):
    """Log-softmax of the same dequantized model in this process: what the server's logprobs must equal."""
    import torch

    from trtllm_oci.serving.openai_app import load_model

    loaded = load_model(fp8_checkpoint)

    def logprobs(ids: list[int]):
        with torch.inference_mode():
            logits = loaded.model(input_ids=torch.tensor([ids])).logits[0]
        return torch.log_softmax(logits.float(), dim=-1)

    return logprobs


def test_echo_with_logprobs_scores_every_prompt_token(client, tokenizer, reference_logprobs):
    ids = tokenizer("The quick brown fox", add_special_tokens=False)["input_ids"]
    # lm-eval's local-completions loglikelihood request (lm_eval/models/openai_completions.py _create_payload)
    out = client.completions.create(model=SERVED, prompt=[ids], echo=True, logprobs=2, max_tokens=1, temperature=0,
                                    seed=1234)
    choice = out.choices[0]
    assert out.usage.prompt_tokens == len(ids) and out.usage.completion_tokens == 1
    logprobs = choice.logprobs
    assert len(logprobs.token_logprobs) == len(ids) + 1 and logprobs.token_logprobs[0] is None
    assert logprobs.top_logprobs[0] is None and all(len(t) in (2, 3) for t in logprobs.top_logprobs[1:])
    assert choice.text == tokenizer.decode(ids) + "".join(logprobs.tokens[len(ids):])
    expected = reference_logprobs(ids)  # causal: the prompt's scores depend on the prompt alone
    for position in range(1, len(ids)):
        assert logprobs.token_logprobs[position] == pytest.approx(float(expected[position - 1, ids[position]]),
                                                                  abs=1e-4)
        chosen = tokenizer.decode([ids[position]])
        assert logprobs.top_logprobs[position][chosen] == pytest.approx(logprobs.token_logprobs[position])
    assert logprobs.text_offset[:2] == [0, len(logprobs.tokens[0])]


def test_logprobs_without_echo_cover_the_answer_and_greedy_tokens_are_the_top(client, tokenizer):
    out = client.completions.create(model=SERVED, prompt="Machine learning is", logprobs=1, max_tokens=4,
                                    temperature=0, extra_body={"ignore_eos": True})
    logprobs = out.choices[0].logprobs
    assert out.usage.completion_tokens == 4 and len(logprobs.token_logprobs) == 4
    assert "".join(logprobs.tokens) == out.choices[0].text
    for value, top in zip(logprobs.token_logprobs, logprobs.top_logprobs, strict=True):
        assert value is not None and value == max(top.values())  # lm-eval's is_greedy test


# ----------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("route", "body", "status", "fragment"),
    [
        ("/v1/completions", {"model": "other", "prompt": "x"}, 404, "does not exist"),
        ("/v1/completions", {"prompt": "x", "bogus": 1}, 400, "bogus: Extra inputs are not permitted"),
        ("/v1/completions", {"prompt": "x", "stream_options": {"include_usage": True}}, 400,
         "stream_options can only be set if stream is true"),
        ("/v1/completions", {"prompt": "x", "max_tokens": 100000}, 400, "exceeds the model's context of 512"),
        ("/v1/completions", {"prompt": "x", "n": 2}, 400, "n:"),
        ("/v1/completions", {"prompt": "x", "logprobs": 6}, 400, "logprobs: Input should be less than or equal to 5"),
        ("/v1/completions", {"prompt": "x", "echo": True, "stream": True}, 400, "not supported with stream=true"),
        ("/v1/completions", {"prompt": [[1, 2, 100000]]}, 400, "outside the model's vocabulary [0, 512)"),
        ("/v1/completions", {"prompt": []}, 400, "prompt is an empty list"),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}], "logprobs": True}, 400,
         "logprobs=True is not supported"),
        ("/v1/chat/completions", {"messages": []}, 400, "messages"),
    ],
)
def test_bad_requests_are_400s_with_trtllm_serve_errors(server, route, body, status, fragment):
    response = post(server, route, body)
    assert response.status_code == status, response.text
    error = response.json()
    assert error["object"] == "error" and fragment in error["message"]
    assert server.is_running()


# ------------------------------------------------------------------------------------------- launcher


def test_choice_here_is_the_cpu_smoke_server_and_says_why():
    choice = choose_openai_server()
    assert choice.kind == OpenAIServerKind.CPU_SMOKE and choice.label == SERVER_NAME
    assert "TensorRT-LLM is not installed here" in choice.reason
    with pytest.raises(OpenAIServerError, match="trtllm-serve was asked for"):
        choose_openai_server("trtllm-serve")


def test_choice_is_trtllm_serve_where_tensorrt_llm_is_installed(monkeypatch):
    import importlib.util
    import shutil

    from trtllm_oci.serving import openai_server

    monkeypatch.setattr(shutil, "which", lambda name: "/usr/local/bin/trtllm-serve" if name == "trtllm-serve" else None)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: object() if name == "tensorrt_llm" else real_find_spec(name, *a))
    choice = openai_server.choose_openai_server()
    assert choice.kind == OpenAIServerKind.TRTLLM_SERVE
    spec = OpenAIServerSpec(checkpoint_dir=Path("/ckpt/llama-fp8"), served_model_name="llama", port=8000,
                            trtllm_serve_args=("--config", "/ckpt/llm_api.yaml"))
    assert server_argv(choice, spec) == ["trtllm-serve", "/ckpt/llama-fp8", "--host", "127.0.0.1", "--port", "8000",
                                         "--backend", "pytorch", "--config", "/ckpt/llm_api.yaml"]


def test_cpu_smoke_argv():
    spec = OpenAIServerSpec(checkpoint_dir=Path("/ckpt/tiny-fp8"), served_model_name="tiny", port=8000,
                            cache_implementation="static")
    argv = server_argv(choose_openai_server("cpu-smoke"), spec, python="python3")
    assert argv[:3] == ["python3", "-m", "trtllm_oci.serving.openai_app"]
    args = dict(zip(argv[3::2], argv[4::2], strict=False))
    assert args == {"--model-dir": "/ckpt/tiny-fp8", "--served-model-name": "tiny", "--host": "127.0.0.1",
                    "--port": "8000", "--device": "cpu", "--dtype": "auto", "--cache-implementation": "static",
                    "--threads": "1"}


def test_port_in_use_is_reported_before_starting(fp8_checkpoint):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        spec = OpenAIServerSpec(checkpoint_dir=fp8_checkpoint, served_model_name=SERVED, port=port)
        with pytest.raises(PortInUseError, match=rf"port {port} on 127\.0\.0\.1 is in use"):
            start_openai_server(spec, choice=choose_openai_server("cpu-smoke"))


def test_a_server_that_dies_at_startup_is_reported_with_its_log(tmp_path):
    (tmp_path / "config.json").write_text('{"quantization_config": {"quant_method": "superquant9000"}}')
    spec = OpenAIServerSpec(checkpoint_dir=tmp_path, served_model_name="broken", port=free_port(), startup_timeout_s=120)
    with pytest.raises(ServerDiedError) as info:
        start_openai_server(spec, choice=choose_openai_server("cpu-smoke"))
    message = str(info.value)
    assert "exited with code 3" in message and "superquant9000" in message and SERVER_NAME in message


def test_stop_frees_the_port(fp8_checkpoint):
    spec = OpenAIServerSpec(checkpoint_dir=fp8_checkpoint, served_model_name="second", port=free_port())
    running = start_openai_server(spec, choice=choose_openai_server("cpu-smoke"))
    assert httpx.get(f"{running.base_url}/v1/models").json()["data"][0]["id"] == "second"
    running.stop()
    assert running.process.returncode is not None
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", spec.port))  # free again


# ------------------------------------------------------------------------------- no chat template


def test_chat_without_a_chat_template_is_a_400(tmp_path):
    from fastapi.testclient import TestClient

    from trtllm_oci.serving.openai_app import Generator, build_app, load_model

    plain = make_tiny_llama(tmp_path / "tiny-plain")
    app = build_app(Generator(load_model(plain)), "plain")
    with TestClient(app) as local:
        response = local.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]})
        assert response.status_code == 400
        error = response.json()
        assert error["object"] == "error" and "has no chat template" in error["message"]
        assert error["param"] == "messages"
        completion = local.post("/v1/completions", json={"prompt": "hi", "max_tokens": 2, "ignore_eos": True})
        assert completion.status_code == 200 and completion.json()["usage"]["completion_tokens"] == 2
