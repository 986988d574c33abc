"""Metrics measured against a real Triton serving a model with known delays.

The model reports, per response, the milliseconds since it read the request (`server_elapsed_ms`,
its own clock), so the client's numbers are checked against what the server really did: its
sleeps overshoot on a busy machine, and a check against the nominal delays then fails although
the client measured correctly (TTFT 212 ms for a nominal 200 ms with another process running).
"""

from __future__ import annotations

import asyncio
import math
import statistics

import pytest

from trtllm_oci.bench.metrics import summarize_point
from trtllm_oci.bench.payload import ModelCapabilities
from trtllm_oci.bench.records import RequestSpec
from trtllm_oci.bench.runner import LoadPoint, run_load_point
from trtllm_oci.bench.transports import GrpcStreamTransport, HttpTransport
from trtllm_oci.bench.wire import TritonGenerateWire

FIRST_MS = 200.0
GAP_MS = 20.0
TOKENS = 10
DELAYS = {"first_token_delay_ms": FIRST_MS, "inter_token_delay_ms": GAP_MS, "return_server_timing": True}
# The client sends before the model reads the request and receives after the model sent, so its
# TTFT is never below the model's own and exceeds it by the transit time (Triton, the python
# backend's IPC, the client), a few ms here and far below this on a busy 2-core machine; a wrong
# definition (TTFT to a later chunk, ITL including TTFT) is off by 20 ms (a gap) or more.
TRANSIT_MS = 50.0
GAP_SLACK_MS = 5.0


class ServerTimingWire(TritonGenerateWire):
    """The generate wire, also keeping each response's server_elapsed_ms per request index."""

    def __init__(self) -> None:
        self.elapsed_ms: dict[int, list[float]] = {}

    def fold(self, record, event, now_ns):
        super().fold(record, event, now_ns)
        value = event.get("server_elapsed_ms") if isinstance(event, dict) else None
        while isinstance(value, list):
            value = value[0] if value else None
        if value is not None:
            self.elapsed_ms.setdefault(record.index, []).append(float(value))

    def first(self, index: int) -> float:
        return self.elapsed_ms[index][0]

    def last(self, index: int) -> float:
        return self.elapsed_ms[index][-1]

    def gaps(self, index: int) -> list[float]:
        times = self.elapsed_ms[index]
        return [b - a for a, b in zip(times, times[1:], strict=False)]


def _specs(n: int, **extra: object) -> list[RequestSpec]:
    return [RequestSpec(prompt="one two three four", output_len=TOKENS, extra_inputs={**DELAYS, **extra}) for _ in range(n)]


def _run(transport, specs, point):
    async def go():
        async with transport:
            if transport.caps is None:
                await transport.probe()
            return await run_load_point(transport, specs, point)

    return asyncio.run(go())


def _transport(kind: str, server, **kwargs):
    if kind == "http":
        return HttpTransport(server.http_url, "timed_stream", **kwargs)
    return GrpcStreamTransport(server.grpc_url, "timed_stream", **kwargs)


@pytest.mark.parametrize("kind", ["http", "grpc"])
def test_streaming_metrics_match_the_servers_delays(timed_triton, kind):
    wire = ServerTimingWire()
    records = _run(_transport(kind, timed_triton, wire=wire), _specs(8), LoadPoint(concurrency=4))
    summary, rows = summarize_point(records, tokenizer=None)
    assert summary["n_ok"] == 8 and summary["n_err"] == 0
    transit, server_gaps = [], []
    for record, row in zip(records, rows, strict=True):
        assert len(wire.elapsed_ms[record.index]) == TOKENS
        assert row["ttft_ms"] >= wire.first(record.index)  # never below what the server took
        assert row["e2e_ms"] >= wire.last(record.index)
        transit.append(row["ttft_ms"] - wire.first(record.index))
        server_gaps += wire.gaps(record.index)
    assert statistics.median(transit) < TRANSIT_MS
    # The model did sleep about the asked delays (its overshoot is what a busy machine adds).
    assert statistics.median(wire.first(r.index) for r in records) >= FIRST_MS
    assert summary["tpot_ms_p50"] == pytest.approx(statistics.median(server_gaps), abs=GAP_SLACK_MS)
    assert summary["itl_ms_p50"] == pytest.approx(statistics.median(server_gaps), abs=GAP_SLACK_MS)
    assert summary["e2e_ms_p50"] - statistics.median(wire.last(r.index) for r in records) < TRANSIT_MS
    assert summary["osl_mean"] == TOKENS
    assert summary["token_count_source"] == "server"
    assert summary["isl_mean"] == 4  # the model counts words; server counts win over the prompt's unknown length
    # Four in flight for the whole run: Little's law recovers the concurrency.
    assert summary["achieved_concurrency"] == pytest.approx(4, rel=0.1)
    # Two waves of four: the run cannot be shorter than twice the server's own time per request.
    assert summary["req_s"] == pytest.approx(8 / summary["duration_s"])
    assert summary["duration_s"] * 1000 >= 2 * min(wire.last(r.index) for r in records)
    assert all(row["n_chunks"] == TOKENS for row in rows)


@pytest.mark.parametrize("kind", ["http", "grpc"])
def test_errors_inside_the_stream_are_counted(timed_triton, kind):
    wire = ServerTimingWire()
    specs = _specs(3) + _specs(2, error_after_tokens=3)
    records = _run(_transport(kind, timed_triton, wire=wire), specs, LoadPoint(concurrency=5))
    summary, rows = summarize_point(records, tokenizer=None)
    assert summary["n_err"] == 2 and summary["n_ok"] == 3
    assert summary["flag_errors"] and "errors" in summary["flags"]
    failed = [row for row in rows if not row["ok"]]
    assert all("injected error after 3 tokens" in row["error"] for row in failed)
    if kind == "http":  # the error arrived after three good events inside an HTTP 200 stream
        assert all(r.http_status == 200 and len(r.chunk_ns) == 3 for r in records if not r.ok)
    # Failed requests do not pollute the latency statistics: only the three full streams count.
    ok_last = [wire.last(r.index) for r in records if r.ok]
    assert max(ok_last) <= summary["e2e_ms_p99"] < max(ok_last) + TRANSIT_MS
    assert summary["e2e_ms_p99"] > max(wire.last(r.index) for r in records if not r.ok) + GAP_MS


def test_non_streaming_generate(timed_triton):
    wire = ServerTimingWire()
    transport = HttpTransport(timed_triton.http_url, "timed_stream", streaming=False, wire=wire)
    records = _run(transport, _specs(3), LoadPoint(concurrency=3))
    summary, rows = summarize_point(records, tokenizer=None)
    assert summary["n_ok"] == 3
    server_ms = [wire.last(r.index) for r in records]  # one answer, sent after the last token's delay
    assert min(server_ms) >= FIRST_MS + (TOKENS - 1) * GAP_MS
    assert all(0 <= row["e2e_ms"] - ms < TRANSIT_MS for row, ms in zip(rows, server_ms, strict=True))
    assert summary["ttft_ms_p50"] == summary["e2e_ms_p50"]  # no streaming: first byte is the whole answer
    assert math.isnan(summary["tpot_ms_p50"]) and math.isnan(summary["itl_ms_p50"])
    assert rows[0]["osl"] == TOKENS and rows[0]["token_count_source"] == "server"
    assert records[0].output_text == "".join(f" w{i}" for i in range(TOKENS))


def test_non_streaming_generate_error_is_an_http_error(timed_triton):
    transport = HttpTransport(timed_triton.http_url, "timed_stream", streaming=False)
    records = _run(transport, _specs(1, error_after_tokens=0), LoadPoint(concurrency=1))
    assert not records[0].ok
    assert records[0].http_status == 400 and "injected error" in records[0].error


def test_client_counts_when_the_server_gives_none(timed_triton, tiny_tokenizer):
    """Without return_num_output_tokens the tokenizer counts the received text; without it, chunks."""
    probe = HttpTransport(timed_triton.http_url, "timed_stream")
    caps = asyncio.run(_probe(probe))
    no_counts = ModelCapabilities(
        inputs=caps.inputs - {"return_num_input_tokens", "return_num_output_tokens"},
        outputs=caps.outputs,
        input_dtypes=caps.input_dtypes,
        max_batch_size=caps.max_batch_size,
        known=True,
    )
    specs = [RequestSpec(prompt="one two", output_len=4, input_len=2, extra_inputs={"first_token_delay_ms": 1.0,
                                                                                       "inter_token_delay_ms": 1.0})]
    for tokenizer, source in ((tiny_tokenizer, "tokenizer"), (None, "chunks")):
        records = _run(HttpTransport(timed_triton.http_url, "timed_stream", caps=no_counts), specs,
                       LoadPoint(concurrency=1))
        summary, rows = summarize_point(records, tokenizer)
        assert rows[0]["token_count_source"] == source
        expected = len(tiny_tokenizer.encode(" w0 w1 w2 w3", add_special_tokens=False)) if tokenizer else 4
        assert rows[0]["osl"] == expected
        assert rows[0]["isl"] == 2 and rows[0]["input_count_source"] == "tokenizer"


async def _probe(transport):
    async with transport:
        return await transport.probe()


def test_open_loop_rate_keeps_schedule_and_cap_shows_as_queue_time(timed_triton):
    fast = {"first_token_delay_ms": 5.0, "inter_token_delay_ms": 1.0}
    specs = [RequestSpec(prompt="x", output_len=2, extra_inputs=fast) for _ in range(30)]
    records = _run(_transport("http", timed_triton), specs, LoadPoint(request_rate=50.0, burstiness=1.0))
    summary, _ = summarize_point(records, None, target_rps=50.0)
    assert not summary["flag_client_bound"]
    assert summary["client_queue_ms_p99"] < 20.0

    slow = {"first_token_delay_ms": 100.0, "inter_token_delay_ms": 1.0}
    specs = [RequestSpec(prompt="x", output_len=2, extra_inputs=slow) for _ in range(6)]
    records = _run(_transport("http", timed_triton), specs,
                   LoadPoint(request_rate=100.0, burstiness=float("inf"), max_concurrency=1))
    summary, _ = summarize_point(records, None, target_rps=100.0)
    # One slot, >= 100 ms each: request k waits for request k-1 to end, so the 6th waits about
    # 5 x 100 ms minus its 50 ms schedule offset, exactly the previous one's end minus its schedule.
    assert summary["flag_client_bound"] and "client_bound" in summary["flags"]
    assert summary["client_queue_ms_mean"] > 150.0
    for before, after in zip(records, records[1:], strict=False):
        assert after.send_ns >= before.end_ns
        assert (after.send_ns - after.scheduled_ns) / 1e6 == pytest.approx(
            (before.end_ns - after.scheduled_ns) / 1e6, abs=TRANSIT_MS)
    assert max(r.send_ns - r.scheduled_ns for r in records) / 1e6 >= 5 * 100 - 50


def test_probe_errors_name_the_url():
    from trtllm_oci.bench.errors import TransportError

    with pytest.raises(TransportError, match="cannot reach http://127.0.0.1:9/v2/models/ensemble/config"):
        asyncio.run(_probe(HttpTransport("http://127.0.0.1:9", "ensemble")))


def test_probe_of_a_missing_model_fails_clearly(timed_triton):
    from trtllm_oci.bench.errors import TransportError

    with pytest.raises(TransportError, match="HTTP 404.*no_such_model.*check --model"):
        asyncio.run(_probe(HttpTransport(timed_triton.http_url, "no_such_model")))
    with pytest.raises(TransportError, match="no_such_model"):
        asyncio.run(_probe(GrpcStreamTransport(timed_triton.grpc_url, "no_such_model")))
