"""The openai transport against the strict trtllm-serve stand-in (tests/standins/openai_server.py).

The stand-in runs in a thread of this process, so its perf_counter_ns readings and the client's
share one clock: the client must send before the server receives and receive after the server
wrote, and its TTFT/ITL must match what the server itself recorded within the transit time.
"""

from __future__ import annotations

import asyncio
import statistics

import pytest
from aiohttp import web

from tests.standins.openai_server import OpenAIStandIn
from trtllm_oci.bench.errors import TransportError
from trtllm_oci.bench.metrics import summarize_point
from trtllm_oci.bench.records import RequestSpec
from trtllm_oci.bench.runner import BenchmarkConfig, LoadPoint, run_benchmark, run_load_point
from trtllm_oci.bench.transports import OpenAITransport

TOKENS = 6
FIRST_MS, GAP_MS = 40.0, 10.0
# Client-server transit (request in, chunk out) on a loaded 2-core machine stays far below this;
# a wrong definition (TTFT to the last chunk, ITL including TTFT) is off by 50+ ms.
TRANSIT_MS = 50.0
ITL_SLACK_MS = 5.0


def _specs(n: int, output_len: int = TOKENS, **extra: object) -> list[RequestSpec]:
    return [RequestSpec(prompt=f"p{i} one two three", output_len=output_len, extra_inputs=dict(extra))
            for i in range(n)]


FOUR = LoadPoint(concurrency=4)


def _run(transport: OpenAITransport, specs, point: LoadPoint = FOUR):
    async def go():
        async with transport:
            await transport.probe()
            return await run_load_point(transport, specs, point)

    return asyncio.run(go())


def _served_by_prompt(server: OpenAIStandIn) -> dict[str, object]:
    out = {}
    for served in server.requests:
        body = served.body
        prompt = body["messages"][0]["content"] if "messages" in body else body["prompt"]
        out[prompt] = served
    return out


@pytest.mark.parametrize("api", ["chat", "completions"])
def test_streaming_metrics_match_what_the_server_recorded(api):
    with OpenAIStandIn(first_token_delay_ms=FIRST_MS, inter_token_delay_ms=GAP_MS) as server:
        records = _run(OpenAITransport(server.url, api=api), _specs(8))
    summary, rows = summarize_point(records, tokenizer=None)
    assert summary["n_ok"] == 8, [r.error for r in records]
    served = _served_by_prompt(server)
    transit, client_gaps, server_gaps = [], [], []
    for record in records:
        s = served[record.spec.prompt]
        assert record.send_ns <= s.received_ns and record.end_ns >= s.end_ns
        assert len(record.chunk_ns) == len(s.emit_ns) == TOKENS
        assert all(c >= e for c, e in zip(record.chunk_ns, s.emit_ns, strict=True))
        ttft_ms = (record.chunk_ns[0] - record.send_ns) / 1e6
        assert ttft_ms >= s.first_token_ms
        transit.append(ttft_ms - s.first_token_ms)
        client_gaps += [(b - a) / 1e6 for a, b in zip(record.chunk_ns, record.chunk_ns[1:], strict=False)]
        server_gaps += s.gaps_ms
    assert statistics.median(transit) < TRANSIT_MS
    assert summary["ttft_ms_p50"] == pytest.approx(
        statistics.median(s.first_token_ms for s in server.requests), abs=TRANSIT_MS)
    assert summary["itl_ms_p50"] == pytest.approx(statistics.median(server_gaps), abs=ITL_SLACK_MS)
    assert summary["itl_ms_p50"] == pytest.approx(statistics.median(client_gaps))
    assert summary["tpot_ms_p50"] == pytest.approx(statistics.median(server_gaps), abs=ITL_SLACK_MS)
    # Counts are the server's usage: completion tokens, and prompt words (+ the chat template's 4).
    assert summary["token_count_source"] == "server" and summary["input_count_source"] == "server"
    assert summary["osl_mean"] == TOKENS and not summary["flag_client_token_counts"]
    assert summary["isl_mean"] == 4 + (4 if api == "chat" else 0)
    assert all(r.saw_done for r in records)


def test_request_bodies_follow_the_openai_shapes():
    with OpenAIStandIn(first_token_delay_ms=1, inter_token_delay_ms=1) as server:
        _run(OpenAITransport(server.url, "standin-model", api="chat"), _specs(1))
        _run(OpenAITransport(server.url, api="completions", streaming=False, length_fields=()), _specs(1))
    chat, completion = (s.body for s in server.requests)
    assert chat == {"model": "standin-model", "messages": [{"role": "user", "content": "p0 one two three"}],
                    "max_tokens": TOKENS, "temperature": 0.0, "stream": True,
                    "stream_options": {"include_usage": True}, "min_tokens": TOKENS, "ignore_eos": True}
    # Non-streaming: no stream_options (trtllm-serve refuses them without stream); no extensions.
    assert completion == {"model": "standin-model", "prompt": "p0 one two three", "max_tokens": TOKENS,
                          "temperature": 0.0, "stream": False}


@pytest.mark.parametrize("api", ["chat", "completions"])
def test_non_streaming_answers(api):
    with OpenAIStandIn(first_token_delay_ms=20, inter_token_delay_ms=5) as server:
        records = _run(OpenAITransport(server.url, api=api, streaming=False), _specs(3))
    summary, rows = summarize_point(records, None)
    assert summary["n_ok"] == 3 and summary["osl_mean"] == TOKENS and summary["token_count_source"] == "server"
    assert summary["ttft_ms_p50"] == summary["e2e_ms_p50"]
    last_ms = min(s.last_token_ms for s in server.requests)
    assert summary["e2e_ms_p50"] >= last_ms
    assert records[0].output_text == "".join(f" w{i}" for i in range(TOKENS))


def test_usage_missing_falls_back_to_the_tokenizer_and_is_flagged(tiny_tokenizer):
    with OpenAIStandIn(first_token_delay_ms=1, inter_token_delay_ms=1, fault_all="no_usage") as server:
        records = _run(OpenAITransport(server.url), _specs(2))
    for tokenizer, source in ((tiny_tokenizer, "tokenizer"), (None, "chunks")):
        summary, rows = summarize_point(records, tokenizer)
        assert {row["token_count_source"] for row in rows} == {source}
        assert summary["flag_client_token_counts"] and "client_token_counts" in summary["flags"]
    expected = len(tiny_tokenizer.encode(records[0].output_text, add_special_tokens=False))
    assert summarize_point(records, tiny_tokenizer)[1][0]["osl"] == expected


def test_running_usage_on_every_chunk_is_not_summed():
    with OpenAIStandIn(first_token_delay_ms=1, inter_token_delay_ms=1, continuous_usage_default=True) as server:
        records = _run(OpenAITransport(server.url), _specs(2))
    summary, _ = summarize_point(records, None)
    assert summary["osl_mean"] == TOKENS and summary["token_count_source"] == "server"


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("error_event", "server error in stream: injected error_event after 2 tokens (code 500)"),
        ("error_object", "server error in stream: injected error_object after 2 tokens (code 500)"),
        ("malformed", "unparseable SSE data"),
    ],
)
def test_errors_inside_a_200_stream_are_recorded(fault, message):
    with OpenAIStandIn(first_token_delay_ms=5, inter_token_delay_ms=2, faults={1: fault, 3: fault}) as server:
        records = _run(OpenAITransport(server.url), _specs(5), LoadPoint(concurrency=1))
    summary, rows = summarize_point(records, None)
    assert summary["n_err"] == 2 and summary["n_ok"] == 3 and "errors" in summary["flags"]
    failed = [r for r in records if not r.ok]
    assert [r.index for r in failed] == [1, 3]
    assert all(r.http_status == 200 and message in r.error and len(r.chunk_ns) == 2 for r in failed)
    assert summary["osl_mean"] == TOKENS  # failed requests do not enter the token statistics


def test_a_stream_cut_before_done_is_an_error():
    with OpenAIStandIn(first_token_delay_ms=5, inter_token_delay_ms=2, faults={0: "abort"}) as server:
        records = _run(OpenAITransport(server.url), _specs(2), LoadPoint(concurrency=1))
    assert not records[0].ok and records[1].ok
    assert "data: [DONE]" in records[0].error or "ClientPayloadError" in records[0].error
    assert records[0].http_status == 200


def test_the_stand_in_refuses_what_trtllm_serve_refuses():
    with OpenAIStandIn(first_token_delay_ms=1, inter_token_delay_ms=1) as server:
        unknown = _run(OpenAITransport(server.url), _specs(1, best_of_n=3))
        not_default = _run(OpenAITransport(server.url), _specs(1, top_k=5))
        options = _run(OpenAITransport(server.url, streaming=False), _specs(1, stream_options={"include_usage": True}))
    assert unknown[0].http_status == 400 and "Extra inputs are not permitted" in unknown[0].error
    assert "best_of_n" in unknown[0].error
    assert not_default[0].http_status == 400 and "top_k=5" in not_default[0].error
    assert options[0].http_status == 400 and "stream_options can only be set if stream is true" in options[0].error


def test_probe_names_the_served_models():
    with OpenAIStandIn() as server:
        with pytest.raises(TransportError, match=r"--model 'llama' is not served .* lists \['standin-model'\]"):
            _run(OpenAITransport(server.url, "llama"), _specs(1))
        transport = OpenAITransport(server.url + "/v1/")
        _run(transport, _specs(1))
        assert transport.model == "standin-model" and transport.url == f"{server.url}/v1/chat/completions"


async def _not_openai(handler_status: int = 404):
    async def anything(request: web.Request) -> web.Response:
        return web.Response(status=handler_status, text="Not Found")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", anything)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"


def test_a_server_that_is_not_openai_fails_the_probe_clearly():
    async def go():
        runner, url = await _not_openai()
        try:
            async with OpenAITransport(url, "m") as transport:
                await transport.probe()
        finally:
            await runner.cleanup()

    with pytest.raises(TransportError, match=r"HTTP 404.*needs an OpenAI-compatible server.*check --url"):
        asyncio.run(go())


def test_an_unreachable_url_fails_the_probe_clearly():
    with pytest.raises(TransportError, match=r"cannot reach http://127.0.0.1:9/v1/models"):
        _run(OpenAITransport("http://127.0.0.1:9", "m"), _specs(1))


def test_a_hung_server_times_out_and_stops_the_run():
    """The server accepts requests and never answers: errors recorded, the run stops, no traceback."""
    with OpenAIStandIn(fault_all="hang") as server:
        config = BenchmarkConfig(url=server.url, transport="openai", concurrencies=[2], io_pairs=[(4, 4)],
                                 num_requests=20, warmup=0, request_timeout_s=0.5)
        result = run_benchmark(config)
    assert "the server stopped answering during load point concurrency 2" in result.stopped
    assert "--request-timeout-s 0.5 s" in result.stopped
    # It stops after 3 timeouts in a row: two rounds of 2 in flight; the other 16 were never sent.
    assert len(result.requests) == 4 and result.summary.loc[0, "n_sent"] == 4
    assert "4 requests in a row" in result.stopped
    assert (~result.requests["ok"]).all()
    assert result.requests["error"].str.contains("no complete answer .* within --request-timeout-s 0.5 s").all()
    assert len(server.requests) == 4
