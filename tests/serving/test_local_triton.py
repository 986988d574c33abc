"""LocalTriton against the real tritonserver (nvidia-pytriton wheel) serving the project's
preprocessing + CPU reference tensorrt_llm + postprocessing + ensemble."""

from __future__ import annotations

import json
import os
import queue
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from tests.serving.conftest import write_repo
from trtllm_oci.serving import LocalTriton, TritonStartError
from trtllm_oci.serving.local import first_load_error

pytestmark = pytest.mark.timeout(180)


def _post(url: str, body: dict) -> bytes:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.read()


def _sse_events(raw: bytes) -> list[dict]:
    return [json.loads(line[len("data: "):]) for line in raw.decode().splitlines() if line.startswith("data: ")]


def _greedy_ids(tokenizer, model_dir: Path, prompt: str, max_tokens: int) -> list[int]:
    """Greedy continuation computed in-process with transformers."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    ids = torch.tensor([tokenizer.encode(prompt)])
    with torch.inference_mode():
        out = model.generate(ids, max_new_tokens=max_tokens, do_sample=False, eos_token_id=None, pad_token_id=0)
    new = out[0, ids.shape[1]:].tolist()
    if tokenizer.eos_token_id in new:
        new = new[: new.index(tokenizer.eos_token_id)]
    return new


def _expected_text(tokenizer, model_dir: Path, prompt: str, max_tokens: int) -> str:
    return tokenizer.decode(_greedy_ids(tokenizer, model_dir, prompt, max_tokens), skip_special_tokens=True)


def test_generate_matches_transformers_greedy(server, tiny_model, tiny_tokenizer):
    reply = json.loads(_post(f"{server.http_url}/v2/models/ensemble/generate",
                             {"text_input": "What is ML?", "max_tokens": 12}))
    assert reply["model_name"] == "ensemble"
    assert reply["text_output"] == _expected_text(tiny_tokenizer, tiny_model, "What is ML?", 12)
    assert reply["output_log_probs"] == [0.0] * len(reply["output_log_probs"])


def test_generate_log_probs_and_stop_words(server, tiny_model, tiny_tokenizer):
    base = {"text_input": "The quick brown fox", "max_tokens": 10, "return_log_probs": True}
    full = json.loads(_post(f"{server.http_url}/v2/models/ensemble/generate", base))
    assert len(full["output_log_probs"]) == 10
    assert all(lp < 0 for lp in full["output_log_probs"])
    assert full["cum_log_probs"] == pytest.approx(sum(full["output_log_probs"]), rel=1e-4)
    # The first generated token whose text re-encodes to itself, used as a stop word, ends the
    # sequence right after it (stop tokens stay in the output, as in TensorRT-LLM).
    ids = _greedy_ids(tiny_tokenizer, tiny_model, base["text_input"], 10)
    position, stop_text = next(
        (i, tiny_tokenizer.decode([t])) for i, t in enumerate(ids[:-1])
        if tiny_tokenizer.encode(tiny_tokenizer.decode([t]), add_special_tokens=False) == [t]
    )
    stopped = json.loads(_post(f"{server.http_url}/v2/models/ensemble/generate", {**base, "stop_words": [stop_text]}))
    assert len(stopped["output_log_probs"]) == position + 1
    assert stopped["text_output"].endswith(stop_text)


def test_end_id_stops_unless_min_tokens(server, tiny_tokenizer):
    base = {"text_input": "What is ML?", "max_tokens": 8, "return_log_probs": True}
    free = json.loads(_post(f"{server.http_url}/v2/models/ensemble/generate", base))
    # Declaring the first generated token as end_id yields an empty sequence...
    first_token = tiny_tokenizer.encode(free["text_output"], add_special_tokens=False)[0]
    ended = json.loads(_post(f"{server.http_url}/v2/models/ensemble/generate", {**base, "end_id": first_token}))
    assert ended["text_output"] == "" and ended["output_log_probs"] in ([], 0.0)
    # ...unless min_tokens forbids ending before 3 tokens.
    forced = json.loads(_post(f"{server.http_url}/v2/models/ensemble/generate",
                              {**base, "end_id": first_token, "min_tokens": 3}))
    assert len(forced["output_log_probs"]) >= 3


def test_generate_stream_sends_one_event_per_token_and_rebuilds_the_text(server):
    body = {"text_input": "What is ML?", "max_tokens": 10}
    whole = json.loads(_post(f"{server.http_url}/v2/models/ensemble/generate", body))["text_output"]
    events = _sse_events(_post(f"{server.http_url}/v2/models/ensemble/generate_stream", {**body, "stream": True}))
    assert len(events) == 10
    assert all("error" not in e for e in events)
    assert "".join(e["text_output"] for e in events) == whole


def test_grpc_streaming(server):
    import tritonclient.grpc as grpcclient

    results: queue.Queue = queue.Queue()
    client = grpcclient.InferenceServerClient(server.grpc_url)
    try:
        client.start_stream(callback=lambda result, error: results.put((result, error)))
        inputs = []
        for name, value, dtype in [("text_input", np.array([["Café 日本"]], dtype=object), "BYTES"),
                                   ("max_tokens", np.array([[6]], dtype=np.int32), "INT32"),
                                   ("stream", np.array([[True]]), "BOOL")]:
            tensor = grpcclient.InferInput(name, value.shape, dtype)
            tensor.set_data_from_numpy(value)
            inputs.append(tensor)
        client.async_stream_infer("ensemble", inputs, request_id="grpc-1", enable_empty_final_response=True)
        chunks = []
        while True:
            result, error = results.get(timeout=60)
            assert error is None, error
            text = result.as_numpy("text_output")
            if text is not None:
                chunks.append(text.reshape(-1)[0].decode())
            # The ensemble may put the final flag on the last data response or on an empty one.
            if result.get_response().parameters["triton_final_response"].bool_param:
                break
    finally:
        client.stop_stream()
        client.close()
    assert len(chunks) == 6
    whole = json.loads(_post(f"{server.http_url}/v2/models/ensemble/generate",
                             {"text_input": "Café 日本", "max_tokens": 6}))["text_output"]
    assert "".join(chunks) == whole


def test_server_urls_and_metrics(server):
    assert server.http_url == f"http://127.0.0.1:{server.http_port}"
    assert server.grpc_url == f"127.0.0.1:{server.grpc_port}"
    with urllib.request.urlopen(server.metrics_url, timeout=10) as response:
        assert b"nv_inference_request_success" in response.read()


def test_broken_tokenizer_dir_names_model_and_cause(tmp_path, tiny_model):
    repo = write_repo(tmp_path / "repo", tiny_model, tokenizer_dir=tmp_path / "no-such-tokenizer")
    lines: list[str] = []
    with pytest.raises(TritonStartError) as caught, LocalTriton(repo, ready_timeout_s=120, log_sink=lines.append):
        pass
    message = str(caught.value)
    assert "preprocessing" in message or "postprocessing" in message
    assert "no-such-tokenizer" in message
    assert str(caught.value.log_file) in message and caught.value.log_file.is_file()
    assert lines, "log lines were streamed to the sink"


def test_stop_leaves_no_process(tmp_path, tiny_model):
    repo = write_repo(tmp_path / "repo", tiny_model)
    server = LocalTriton(repo, ready_timeout_s=120)
    with server:
        pid = server.pid
        assert server.is_ready()
        stub_pids = [p for p in _group_members(pid) if p != pid]
        assert stub_pids, "python backend stubs run in the server's process group"
    assert not _alive(pid)
    assert not any(_alive(p) for p in stub_pids)
    assert _group_members(pid) == []


def test_missing_repo_and_bad_timeout_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        LocalTriton(tmp_path / "absent")
    with pytest.raises(ValueError, match="ready_timeout_s=0"):
        LocalTriton(tmp_path, ready_timeout_s=0)


def test_first_load_error_parses_log_line_and_table():
    line = ('E1121 19:55:01.123 77 model_lifecycle.cc:654] "failed to load \'preprocessing\' version 1: '
            'Internal: OSError: Can\'t load tokenizer for \'/nope\'.\\nAt:\\n  model.py(10)"')
    assert first_load_error(["I... ok", line]).startswith(
        "model 'preprocessing' (version 1) failed to load: Internal: OSError: Can't load tokenizer for '/nope'.")
    table = ["| Model | Version | Status |", "| tensorrt_llm | 1 | UNAVAILABLE: Invalid argument: bad |"]
    assert first_load_error(table) == "model 'tensorrt_llm' (version 1) failed to load: Invalid argument: bad"
    assert first_load_error(["I1121 all good"]) is None


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.getpgid(int(entry)) == pgid:
                    members.append(int(entry))
            except ProcessLookupError:
                pass
    return members


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except FileNotFoundError:
        return False
