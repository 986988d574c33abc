"""tensorrt_llm_bls streams whole UTF-8 characters: a repository assembled with include_bls on the CPU
reference backend, served by the real tritonserver, called like a client of the deployed endpoint.

The tiny Llama's weights are rewritten into a bigram chain (every layer's output projection zeroed, so the
last hidden state is the current token's embedding, and lm_head rows pointing each chain token at its
successor): greedy decoding after PROMPT then emits CHAIN_TEXT token by token, then </s>. The tiny byte-level
BPE cuts ß, ü, 🚀 and 語 of that text into partial-byte tokens, so the stream has to join characters whose
bytes arrive in different responses; random weights almost never emit valid UTF-8 at all.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from trtllm_oci.repo.assemble import RepoOptions, assemble_repository
from trtllm_oci.serving.local import LocalTriton
from trtllm_oci.serving.models.tensorrt_llm_bls.incremental_detokenizer import IncrementalDetokenizer
from trtllm_oci.tiny_model import make_tiny_llama

PROMPT = "Stream:"
CHAIN_TEXT = "Straße über 🚀日本語"
BLS = "tensorrt_llm_bls"
DETOKENIZER_TEXT = "Héllo wörld 日本語 🚀 done. Straße über 👍🏽!"


def _make_chain_model(out_dir: Path) -> tuple[Path, list[int]]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    make_tiny_llama(out_dir)
    tokenizer = AutoTokenizer.from_pretrained(out_dir)
    model = AutoModelForCausalLM.from_pretrained(out_dir)
    chain = tokenizer.encode(CHAIN_TEXT, add_special_tokens=False)
    steps = [tokenizer.encode(PROMPT)[-1], *chain]
    assert len(set(steps)) == len(steps), "a bigram chain needs distinct tokens; change CHAIN_TEXT or PROMPT"
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        embed = model.model.embed_tokens.weight
        for token, successor in zip(steps, [*chain, tokenizer.eos_token_id], strict=True):
            model.lm_head.weight[successor] = 50.0 * embed[token] / embed[token].norm()
    model.save_pretrained(out_dir, safe_serialization=True)
    return out_dir, chain


@pytest.fixture(scope="module")
def chain_model(tmp_path_factory) -> tuple[Path, list[int]]:
    return _make_chain_model(tmp_path_factory.mktemp("chain") / "tiny-llama-chain")


@pytest.fixture(scope="module")
def chain_tokenizer(chain_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(chain_model[0])


@pytest.fixture(scope="module")
def hf_greedy_ids(chain_model, chain_tokenizer) -> list[int]:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(chain_model[0])
    ids = torch.tensor([chain_tokenizer.encode(PROMPT)])
    with torch.inference_mode():
        out = model.generate(
            ids, max_new_tokens=64, do_sample=False, pad_token_id=chain_tokenizer.pad_token_id
        )
    new = out[0, ids.shape[1] :].tolist()
    return new[: new.index(chain_tokenizer.eos_token_id)] if chain_tokenizer.eos_token_id in new else new


@pytest.fixture(scope="module")
def bls_server(tmp_path_factory, chain_model):
    model_dir, _ = chain_model
    options = RepoOptions(
        trtllm_version="1.2.1", backend="reference", streaming=True, include_bls=True, triton_max_batch_size=4
    )
    manifest = assemble_repository(
        None, model_dir, tmp_path_factory.mktemp("bls-repo") / "repo", options, hf_model_dir=model_dir
    )
    assert "model_repository/tensorrt_llm_bls/1/incremental_detokenizer.py" in manifest.files
    for model in ("preprocessing", "postprocessing", "tensorrt_llm", "tensorrt_llm_bls"):
        assert f"model_repository/{model}/1/model_config_params.py" in manifest.files
    log_file = tmp_path_factory.mktemp("bls-logs") / "tritonserver.log"
    with LocalTriton(manifest.model_repository, ready_timeout_s=240, log_file=log_file) as triton:
        yield triton


def _post(url: str, body: dict) -> bytes:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.read()
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"{url} -> HTTP {exc.code}: {exc.read().decode(errors='replace')}") from exc


def _sse_events(raw: bytes) -> list[dict]:
    # Strict decoding: a chunk with broken UTF-8 bytes fails here, before JSON could mask it.
    text = raw.decode("utf-8", errors="strict")
    return [
        json.loads(line.removeprefix("data: ")) for line in text.splitlines() if line.startswith("data: ")
    ]


def _split_boundaries(tokenizer, ids: list[int]) -> list[int]:
    """Positions k where a one-token-per-chunk stream has a character cut between chunk k-1 and chunk k."""
    return [k for k in range(1, len(ids)) if tokenizer.decode(ids[:k]).endswith("\ufffd")]


@pytest.mark.triton
@pytest.mark.timeout(300)
def test_stream_sends_whole_characters_that_concatenate_to_the_full_text(
    bls_server, chain_model, chain_tokenizer, hf_greedy_ids
):
    _, chain = chain_model
    expected = chain_tokenizer.decode(hf_greedy_ids, skip_special_tokens=True)
    assert hf_greedy_ids == chain and expected == CHAIN_TEXT  # the chain model does what the test needs
    # The test proves something only if characters really are cut between streamed tokens.
    assert len(_split_boundaries(chain_tokenizer, hf_greedy_ids)) >= 3

    body = {"text_input": PROMPT, "max_tokens": 64}
    whole = json.loads(_post(f"{bls_server.http_url}/v2/models/{BLS}/generate", body))
    events = _sse_events(
        _post(f"{bls_server.http_url}/v2/models/{BLS}/generate_stream", {**body, "stream": True})
    )

    assert whole["model_name"] == BLS and whole["text_output"] == expected
    assert all("error" not in event for event in events), events
    assert len(events) == len(chain), "one event per generated token"
    texts = [event["text_output"] for event in events]
    assert all("\ufffd" not in text for text in texts), texts
    assert "".join(texts) == whole["text_output"]
    # Each event extends the text by what its token completes; a token holding only bytes of a character
    # still to be finished sends an empty text.
    stable = [chain_tokenizer.decode(hf_greedy_ids[:k]).rstrip("\ufffd") for k in range(len(chain) + 1)]
    assert texts == [stable[k + 1][len(stable[k]) :] for k in range(len(chain))]
    assert "" in texts


@pytest.mark.triton
@pytest.mark.timeout(300)
def test_stream_cut_inside_a_character_ends_like_the_full_text(bls_server, chain_tokenizer, hf_greedy_ids):
    cut = _split_boundaries(chain_tokenizer, hf_greedy_ids)[-1]
    body = {"text_input": PROMPT, "max_tokens": cut}
    whole = json.loads(_post(f"{bls_server.http_url}/v2/models/{BLS}/generate", body))["text_output"]
    events = _sse_events(
        _post(f"{bls_server.http_url}/v2/models/{BLS}/generate_stream", {**body, "stream": True})
    )
    assert whole == chain_tokenizer.decode(hf_greedy_ids[:cut]) and whole.endswith("\ufffd")
    texts = [event["text_output"] for event in events]
    # The bytes no later token completes arrive last, as the full text has them.
    assert "".join(texts) == whole
    assert texts[-1].endswith("\ufffd") and all("\ufffd" not in text for text in texts[:-1])


@pytest.mark.triton
@pytest.mark.timeout(300)
def test_concurrent_streams_keep_their_own_text(bls_server, chain_tokenizer, hf_greedy_ids):
    # Streams run on threads of the one BLS instance: each keeps its own detokenizer state.
    lengths = [len(hf_greedy_ids), 9, 4, 12]
    url = f"{bls_server.http_url}/v2/models/{BLS}/generate_stream"

    def stream(max_tokens: int) -> list[str]:
        body = {"text_input": PROMPT, "max_tokens": max_tokens, "stream": True}
        return [event["text_output"] for event in _sse_events(_post(url, body))]

    with ThreadPoolExecutor(max_workers=len(lengths)) as pool:
        results = list(pool.map(stream, lengths))
    for max_tokens, texts in zip(lengths, results, strict=True):
        whole = chain_tokenizer.decode(hf_greedy_ids[:max_tokens])
        assert len(texts) == max_tokens + whole.endswith("\ufffd")  # + the flushed tail, if any
        assert "".join(texts) == whole


@pytest.mark.triton
@pytest.mark.timeout(300)
def test_log_probs_pass_through(bls_server, hf_greedy_ids):
    body = {"text_input": PROMPT, "max_tokens": 64, "return_log_probs": True}
    reply = json.loads(_post(f"{bls_server.http_url}/v2/models/{BLS}/generate", body))
    assert len(reply["output_log_probs"]) == len(hf_greedy_ids)
    assert all(lp <= 0 for lp in reply["output_log_probs"])
    assert reply["cum_log_probs"] == pytest.approx(sum(reply["output_log_probs"]), rel=1e-4)
    silent = json.loads(
        _post(f"{bls_server.http_url}/v2/models/{BLS}/generate", {**body, "return_log_probs": False})
    )
    assert silent["output_log_probs"] == [0.0] * len(hf_greedy_ids)


@pytest.mark.triton
@pytest.mark.timeout(300)
def test_streaming_beam_search_is_refused_with_the_fix(bls_server):
    body = {"text_input": PROMPT, "max_tokens": 4, "stream": True, "beam_width": 2}
    request = urllib.request.Request(
        f"{bls_server.http_url}/v2/models/{BLS}/generate_stream",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=120)
    assert raised.value.code == 400
    events = _sse_events(raw=raised.value.read())
    assert len(events) == 1
    assert "beam_width=2 with stream=true" in events[0]["error"]
    assert "set stream=false or beam_width=1" in events[0]["error"]


def test_incremental_deltas_rebuild_the_text_token_by_token(tiny_tokenizer):
    ids = tiny_tokenizer.encode(DETOKENIZER_TEXT, add_special_tokens=False)
    # Only meaningful if some character really is split across tokens.
    assert any("\ufffd" in tiny_tokenizer.decode([i]) for i in ids)
    calls = []

    def decode(tokens):
        calls.append(len(tokens))
        return tiny_tokenizer.decode(tokens, skip_special_tokens=True)

    detok = IncrementalDetokenizer(decode)
    deltas = [detok.push([i]) for i in ids]
    deltas.append(detok.finish())
    assert all("\ufffd" not in d for d in deltas)
    assert "".join(deltas) == DETOKENIZER_TEXT == detok.text
    assert sum(1 for d in deltas if d) > 5
    assert calls == list(range(1, len(ids) + 1)), "one decode per push; finish reuses the last one"


def test_incremental_flushes_a_truly_incomplete_tail_on_finish(tiny_tokenizer):
    ids = tiny_tokenizer.encode("ab 🚀", add_special_tokens=False)
    detok = IncrementalDetokenizer(lambda t: tiny_tokenizer.decode(t))
    head = detok.push(ids[:-1])
    assert "\ufffd" not in head and head.startswith("ab")
    assert detok.push([]) == ""
    assert detok.finish() == tiny_tokenizer.decode(ids[:-1])[len(head) :]
    assert detok.finish() == ""
