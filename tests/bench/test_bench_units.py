"""Schedules, metric arithmetic (hand-computed examples), prompts, payloads, column docs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trtllm_oci.bench.columns import COLUMNS, columns_markdown, order_columns
from trtllm_oci.bench.metrics import (
    CostInputs,
    Slo,
    efficiency_and_cost,
    roofline_tok_s,
    summarize_point,
    usd_per_million_tokens,
)
from trtllm_oci.bench.payload import ModelCapabilities, generate_body
from trtllm_oci.bench.prompts import (
    exact_length_prompt,
    fixed_length_requests,
    parse_io_pairs,
    sharegpt_requests,
)
from trtllm_oci.bench.records import RequestRecord, RequestSpec
from trtllm_oci.bench.schedule import arrival_offsets_s
from trtllm_oci.bench.tokens import server_output_total

MS = 1_000_000
REPO = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------- schedule


def test_poisson_schedule_statistics():
    offsets = arrival_offsets_s(20001, request_rate=10.0, burstiness=1.0, seed=7)
    gaps = np.diff(offsets)
    assert offsets[0] == 0.0
    assert gaps.mean() == pytest.approx(0.1, rel=0.02)
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, abs=0.03)  # exponential: CV = 1
    # Exponential CDF at the mean is 1 - 1/e; at the median (ln 2 / rate) it is 1/2.
    assert (gaps < 0.1).mean() == pytest.approx(1 - math.exp(-1), abs=0.01)
    assert (gaps < math.log(2) / 10).mean() == pytest.approx(0.5, abs=0.01)


def test_gamma_burstiness_and_seeds():
    gaps = np.diff(arrival_offsets_s(20001, request_rate=4.0, burstiness=0.5, seed=1))
    assert gaps.mean() == pytest.approx(0.25, rel=0.03)
    assert gaps.std() / gaps.mean() == pytest.approx(math.sqrt(2), rel=0.05)  # CV = 1/sqrt(k)
    a = arrival_offsets_s(50, 3.0, seed=3)
    assert np.array_equal(a, arrival_offsets_s(50, 3.0, seed=3))
    assert not np.array_equal(a, arrival_offsets_s(50, 3.0, seed=4))
    assert np.allclose(np.diff(arrival_offsets_s(5, 2.0, burstiness=math.inf)), 0.5)
    assert np.array_equal(arrival_offsets_s(4, math.inf), np.zeros(4))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_requests": 0, "request_rate": 1.0}, "num_requests=0"),
        ({"num_requests": 5, "request_rate": 0.0}, "request rate 0.0"),
        ({"num_requests": 5, "request_rate": 1.0, "burstiness": 0.0}, "burstiness 0.0"),
    ],
)
def test_schedule_rejects_bad_inputs(kwargs, message):
    with pytest.raises(ValueError, match=message):
        arrival_offsets_s(**kwargs)


# ---------------------------------------------------------------- metrics


def _record(index, send_ms, chunk_ms, osl_requested, error=None, input_len=10):
    record = RequestRecord(index=index, spec=RequestSpec("p", osl_requested, input_len=input_len))
    record.scheduled_ns = record.send_ns = int(send_ms * MS) + 1  # +1: scheduled_ns 0 means "unset"
    for i, t in enumerate(chunk_ms):
        record.add_chunk(int(t * MS) + 1, f" t{i}")
        record.server_output_tokens.append(i + 1)
    record.end_ns = int((chunk_ms[-1] if chunk_ms else send_ms + 10) * MS) + 1
    record.error = error
    return record


def _worked_example():
    # A: TTFT 100, E2E 140, 3 tokens -> TPOT 20. B: TTFT 300, E2E 340, 5 tokens -> TPOT 10.
    # C: fails 10 ms after its send at 50 ms.
    return [
        _record(0, 0, [100, 120, 140], 3),
        _record(1, 0, [300, 310, 320, 330, 340], 5),
        _record(2, 50, [], 5, error="boom"),
    ]


def test_worked_example_latency_throughput_goodput_and_cost():
    summary, rows = summarize_point(
        _worked_example(), None, slo=Slo(ttft_ms=200, tpot_ms=25), cost=CostInputs(gpu_count=2, usd_per_hour=2.0)
    )
    assert (summary["n_sent"], summary["n_ok"], summary["n_err"]) == (3, 2, 1)
    assert summary["duration_s"] == pytest.approx(0.34)  # first send 0 -> last end 340 ms
    assert summary["ttft_ms_mean"] == pytest.approx(200.0)
    assert summary["tpot_ms_p50"] == pytest.approx(15.0)
    # ITL pools A's gaps (20, 20) and B's (10, 10, 10, 10).
    assert summary["itl_ms_p50"] == pytest.approx(10.0)
    assert summary["itl_ms_mean"] == pytest.approx(80 / 6)
    assert summary["itl_ms_max"] == pytest.approx(20.0)
    assert summary["req_s"] == pytest.approx(2 / 0.34)
    assert summary["out_tok_s"] == pytest.approx(8 / 0.34)  # 23.53
    assert summary["total_tok_s"] == pytest.approx(28 / 0.34)
    assert summary["out_tok_s_per_gpu"] == pytest.approx(4 / 0.34)
    assert summary["achieved_concurrency"] == pytest.approx((0.14 + 0.34 + 0.01) / 0.34)
    # Only A meets TTFT <= 200 ms and TPOT <= 25 ms; B misses TTFT, C failed.
    assert summary["n_good"] == 1
    assert summary["goodput_rps"] == pytest.approx(2.941, rel=1e-3)
    assert summary["goodput_frac"] == pytest.approx(1 / 3)
    assert summary["goodput_out_tok_s"] == pytest.approx(8.824, rel=1e-3)
    # $2/h at 23.53 tok/s: 2 / (3600 * 23.53) * 1e6 = $23.61 per 1M; within SLO 8.824 tok/s: $62.96.
    assert summary["usd_per_1M_out"] == pytest.approx(23.61, rel=1e-3)
    assert summary["usd_per_1M_out_at_slo"] == pytest.approx(62.96, rel=1e-3)
    assert summary["flag_errors"] and summary["flag_few_requests"] and not summary["flag_osl_mismatch"]
    assert [row["meets_slo"] for row in rows] == [True, False, False]


def test_output_length_miss_is_flagged():
    records = [_record(0, 0, [10, 20, 30, 40], 5), _record(1, 0, [10, 20, 30, 40], 4)]  # 4 of 5: 20% short
    summary, _ = summarize_point(records, None)
    assert summary["osl_err_mean_pct"] == pytest.approx(10.0)
    assert summary["flag_osl_mismatch"] and "osl_mismatch" in summary["flags"]


def test_itl_divides_multi_token_chunks():
    record = _record(0, 0, [100, 140, 180], 9)
    record.server_output_tokens = [1, 5, 9]  # running total: 4 tokens in each later chunk
    summary, _ = summarize_point([record], None)
    assert summary["osl_mean"] == 9
    assert summary["itl_ms_p50"] == pytest.approx(10.0)  # 40 ms / 4 tokens
    assert summary["tpot_ms_p50"] == pytest.approx(10.0)  # (180 - 100) / 8


def test_server_output_totals():
    assert server_output_total([1, 2, 3], 3) == 3  # running total
    assert server_output_total([1, 1, 1], 3) == 3  # per-chunk deltas
    assert server_output_total([2, 2, 2], 3) == 6
    assert server_output_total([7], 1) == 7


def test_roofline_worked_examples():
    # benchmark.md §4.4: Llama-2-7B FP16 (13.5 GB) on an A10 (600 GB/s) at batch 1: 600/13.5 = 44.4 tok/s.
    assert roofline_tok_s(1, 1, 600, 13.5e9, 524288, 0) == pytest.approx(44.44, rel=1e-3)
    # 8 streams at 1000 tokens of context, 512 KiB of KV per token:
    # 8 * 600e9 / (13.5e9 + 8 * 1000 * 524288) = 4.8e12 / 17.694e9 = 271.3 tok/s.
    assert roofline_tok_s(8, 1, 600, 13.5e9, 524288, 1000) == pytest.approx(271.27, rel=1e-3)
    # TP2 doubles the bandwidth.
    assert roofline_tok_s(1, 2, 600, 13.5e9, 0, 0) == pytest.approx(88.89, rel=1e-3)
    summary = {"achieved_concurrency": 1.0, "isl_mean": 0.0, "osl_mean": 0.0, "tpot_ms_p50": 25.0,
               "out_tok_s": 40.0, "total_tok_s": 80.0, "goodput_out_tok_s": math.nan}
    cost = CostInputs(gpu_count=1, gpu_bw_gbs=600, usd_per_hour=2.0, weight_bytes=13.5e9, kv_bytes_per_token=524288)
    out = efficiency_and_cost(summary, cost)
    assert out["roofline_eff"] == pytest.approx(0.9, rel=1e-3)  # 40 tok/s of 44.4: the doc's 0.90
    assert not out["flag_roofline_over_1"]
    assert math.isnan(out["usd_per_1M_out_at_slo"])
    summary["tpot_ms_p50"] = 20.0  # 50 tok/s > 44.4: impossible on this memory, flagged
    assert efficiency_and_cost(summary, cost)["flag_roofline_over_1"]


def test_cost_worked_example():
    # benchmark.md §4.5: a $2.00/h single-GPU shape at 1,000 out tok/s costs $0.56 per million.
    assert usd_per_million_tokens(2.0, 1000.0) == pytest.approx(0.5556, rel=1e-3)
    assert math.isnan(usd_per_million_tokens(2.0, 0.0))


def test_cost_and_slo_inputs_are_validated():
    with pytest.raises(ValueError, match="gpu_bw_gbs=0"):
        CostInputs(gpu_bw_gbs=0)
    with pytest.raises(ValueError, match="tpot_ms=-1"):
        Slo(tpot_ms=-1)
    with pytest.raises(ValueError, match="no requests were sent"):
        summarize_point([], None)


# ---------------------------------------------------------------- prompts


@pytest.mark.parametrize("n", [1, 7, 128, 333])
def test_prompts_reencode_to_the_exact_length(tiny_tokenizer, n):
    rng = np.random.default_rng(n)
    for _ in range(3):
        prompt = exact_length_prompt(tiny_tokenizer, n, rng)
        assert len(tiny_tokenizer.encode(prompt, add_special_tokens=False)) == n


def test_fixed_length_requests_are_seeded_and_distinct(tiny_tokenizer):
    a = fixed_length_requests(tiny_tokenizer, 64, 32, 5, seed=1)
    assert [s.prompt for s in a] == [s.prompt for s in fixed_length_requests(tiny_tokenizer, 64, 32, 5, seed=1)]
    assert len({s.prompt for s in a}) == 5
    assert all(s.input_len == 64 and s.output_len == 32 and s.fixed_output_len for s in a)
    words = fixed_length_requests(None, 50, 8, 2, seed=0)
    assert all(len(s.prompt.split()) == 50 and s.input_len is None for s in words)
    with pytest.raises(ValueError, match="must both be >= 1"):
        fixed_length_requests(None, 0, 8, 2, seed=0)


def test_io_pairs():
    assert parse_io_pairs("128/128, 2048/128") == [(128, 128), (2048, 128)]
    for bad in ("128", "128/0", "a/b", ""):
        with pytest.raises(ValueError, match="INPUT/OUTPUT|no I/O length pairs"):
            parse_io_pairs(bad)


def _sharegpt(tmp_path: Path, entries) -> Path:
    path = tmp_path / "sharegpt.json"
    path.write_text(json.dumps(entries))
    return path


def test_sharegpt_dataset(tmp_path, tiny_tokenizer):
    convo = lambda q, a: {"id": q[:5], "conversations": [{"from": "human", "value": q}, {"from": "gpt", "value": a}]}  # noqa: E731
    entries = [convo(f"question number {i} about the weather today", f"answer {i} " * (i + 3)) for i in range(12)]
    entries.append({"id": "x", "conversations": [{"from": "gpt", "value": "starts with the model"}]})
    path = _sharegpt(tmp_path, entries)
    specs = sharegpt_requests(path, tiny_tokenizer, 10, seed=0)
    assert len(specs) == 10 and not any(s.fixed_output_len for s in specs)
    for s in specs:
        assert s.input_len == len(tiny_tokenizer.encode(s.prompt, add_special_tokens=False))
    fixed = sharegpt_requests(path, None, 4, seed=0, output_len=16)
    assert all(s.output_len == 16 and s.fixed_output_len for s in fixed)
    with pytest.raises(ValueError, match="only 12 usable requests"):
        sharegpt_requests(path, tiny_tokenizer, 50, seed=0)
    with pytest.raises(ValueError, match="needs --tokenizer"):
        sharegpt_requests(path, None, 2, seed=0)
    with pytest.raises(ValueError, match="not found"):
        sharegpt_requests(tmp_path / "missing.json", tiny_tokenizer, 2, seed=0)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="is not JSON"):
        sharegpt_requests(tmp_path / "bad.json", tiny_tokenizer, 2, seed=0)
    with pytest.raises(ValueError, match="no conversation"):
        sharegpt_requests(_sharegpt(tmp_path, [{"conversations": []}]), tiny_tokenizer, 2, seed=0)


# ---------------------------------------------------------------- payload

_CONFIG = {
    "name": "ensemble",
    "max_batch_size": 64,
    "input": [{"name": n, "data_type": "TYPE_INT32"} for n in ("max_tokens", "min_length")]
    + [{"name": "text_input", "data_type": "TYPE_STRING"}, {"name": "stream", "data_type": "TYPE_BOOL"}],
    "output": [{"name": "text_output", "data_type": "TYPE_STRING"}],
}


def test_body_follows_the_served_models_inputs():
    caps = ModelCapabilities.from_config(_CONFIG)  # an older ensemble: min_length, no token counts
    body = generate_body(RequestSpec("hi", 32), caps, stream=True)
    assert body == {"text_input": "hi", "max_tokens": 32, "stream": True, "min_length": 32}
    natural = generate_body(RequestSpec("hi", 32, fixed_output_len=False), caps, stream=False)
    assert "min_length" not in natural and natural["stream"] is False
    assert not caps.server_counts_output
    assumed = ModelCapabilities.assumed_ensemble()
    body = generate_body(RequestSpec("hi", 8), assumed, stream=True)
    assert body["min_tokens"] == 8 and body["return_num_output_tokens"] and body["exclude_input_in_output"]
    assert body["temperature"] == 0.0 and body["top_k"] == 1
    with pytest.raises(ValueError, match="extra input 'top_p' is not an input"):
        generate_body(RequestSpec("hi", 8, extra_inputs={"top_p": 0.9}), caps, stream=True)


def test_config_without_ensemble_inputs_is_rejected():
    config = {"name": "tensorrt_llm", "input": [{"name": "input_ids"}], "output": []}
    with pytest.raises(ValueError, match=r"lacks required input\(s\) \['max_tokens', 'text_input'\].*ensemble"):
        ModelCapabilities.from_config(config)
    with pytest.raises(ValueError, match="min_length_field='max'"):
        ModelCapabilities.assumed_ensemble("max")


def _llmapi_caps() -> ModelCapabilities:
    """The capabilities of the llmapi model's config.pbtxt as the release writes it (its tensors: data/llm_api.json,
    from NVIDIA/TensorRT-LLM:triton_backend/all_models/llmapi/tensorrt_llm/config.pbtxt), read as Triton serves it."""
    from google.protobuf import json_format

    from trtllm_oci.llm_api.triton_repo import LlmapiRepoOptions, build_llmapi_config

    config = build_llmapi_config("1.2.1", LlmapiRepoOptions(decoupled=True))
    return ModelCapabilities.from_config(json_format.MessageToDict(config, preserving_proto_field_name=True))


def test_the_llmapi_model_gets_its_own_input_names():
    caps = _llmapi_caps()
    assert caps.dialect == "llmapi" and caps.min_length_field is None and not caps.server_counts_output
    body = generate_body(RequestSpec("hi", 8), caps, stream=True)
    assert body == {"text_input": "hi", "sampling_param_max_tokens": 8, "streaming": True,
                    "sampling_param_exclude_input_from_output": True, "sampling_param_temperature": 0.0,
                    "sampling_param_top_k": 1}
    assert set(body) <= caps.inputs, "a key the model does not declare becomes a request parameter, not an input"
    assert generate_body(RequestSpec("hi", 8), caps, stream=False)["streaming"] is False
    assert generate_body(RequestSpec("hi", 8, extra_inputs={"sampling_param_seed": 7}), caps,
                         stream=True)["sampling_param_seed"] == 7
    with pytest.raises(ValueError, match="extra input 'top_p' is not an input"):
        generate_body(RequestSpec("hi", 8, extra_inputs={"top_p": 0.9}), caps, stream=True)


def test_the_llmapi_models_cumulative_stream_is_folded_as_increments():
    from trtllm_oci.bench.wire import LlmapiGenerateWire, TritonGenerateWire, generate_wire

    assert isinstance(generate_wire(_llmapi_caps()), LlmapiGenerateWire)
    assert type(generate_wire(ModelCapabilities.assumed_ensemble())) is TritonGenerateWire
    wire = LlmapiGenerateWire()
    record = RequestRecord(0, RequestSpec("p", 3))
    for i, text in enumerate(["The", "The quick", "The quick brown"]):
        wire.fold(record, {"model_name": "tensorrt_llm", "text_output": text}, 10 + i)
    assert record.chunk_texts == ["The", " quick", " brown"] and record.chunk_ns == [10, 11, 12]
    assert record.output_text == "The quick brown" and record.error is None
    broken = RequestRecord(1, RequestSpec("p", 3))
    wire.fold(broken, {"text_output": "The"}, 1)
    wire.fold(broken, {"text_output": "A different"}, 2)
    assert broken.error is not None and "does not extend" in broken.error
    failed = RequestRecord(2, RequestSpec("p", 3))
    wire.fold(failed, {"error": "Streaming is only supported in decoupled mode."}, 1)
    assert failed.error is not None and "decoupled" in failed.error


def test_a_probed_llmapi_model_switches_the_generate_wire_and_an_openai_wire_stays():
    from trtllm_oci.bench.transports import HttpTransport, OciModelDeploymentTransport
    from trtllm_oci.bench.wire import LlmapiGenerateWire, OpenAIWire, TritonGenerateWire

    http = HttpTransport("http://127.0.0.1:1", "tensorrt_llm")
    assert type(http.wire) is TritonGenerateWire
    http.adopt(_llmapi_caps())
    assert isinstance(http.wire, LlmapiGenerateWire)
    http.adopt(ModelCapabilities.assumed_ensemble())
    assert type(http.wire) is TritonGenerateWire
    oci = OciModelDeploymentTransport("https://md", lambda r: r, caps=_llmapi_caps())
    assert isinstance(oci.wire, LlmapiGenerateWire)
    openai = OciModelDeploymentTransport("https://md", lambda r: r, caps=_llmapi_caps(), wire=OpenAIWire("m"))
    openai.adopt(_llmapi_caps())
    assert isinstance(openai.wire, OpenAIWire)


# ---------------------------------------------------------------- columns and results


def test_column_docs_are_in_sync():
    doc = (REPO / "docs" / "benchmark-columns.md").read_text(encoding="utf-8")
    assert doc == columns_markdown(), "regenerate: python -m trtllm_oci.bench.columns > docs/benchmark-columns.md"


def test_every_summary_column_is_documented_and_produced():
    from trtllm_oci.bench.columns import REQUEST_COLUMNS

    summary, rows = summarize_point(_worked_example(), None, slo=Slo(ttft_ms=200), cost=CostInputs(gpu_count=1))
    identity = {"run_id", "ts", "transport", "model", "shape", "dataset", "isl_requested", "osl_requested",
                "load_mode", "concurrency", "burstiness", "max_concurrency", "repeat", "seed", "warmup"}
    assert set(summary) | identity == set(COLUMNS)
    per_request = set(rows[0]) - {"send_ns", "end_ns"} | {"run_id", "load_point", "transport", "load_mode",
                                                          "concurrency", "target_rps", "repeat", "send_offset_s"}
    assert per_request == set(REQUEST_COLUMNS)
    with pytest.raises(KeyError, match="undocumented summary columns \\['surprise'\\]"):
        order_columns(pd.DataFrame([{"surprise": 1}]))


def test_results_files_markdown_and_records(tmp_path):
    from trtllm_oci.bench.results import summary_markdown, summary_table_records, write_results

    summary, rows = summarize_point(_worked_example(), None, slo=Slo(ttft_ms=200, tpot_ms=25),
                                    cost=CostInputs(gpu_count=1, usd_per_hour=2.0))
    identity = {"run_id": "r1", "ts": "t", "transport": "http_sse", "model": "ensemble", "shape": "VM.GPU.A10.1",
                "dataset": "random", "isl_requested": 10, "osl_requested": 5, "load_mode": "concurrency",
                "concurrency": 2, "burstiness": math.nan, "max_concurrency": math.nan, "repeat": 0, "seed": 0,
                "warmup": 0}
    df = order_columns(pd.DataFrame([{**identity, **summary}]))
    paths = write_results(df, pd.DataFrame(rows), tmp_path)
    assert pd.read_csv(paths["summary_csv"]).loc[0, "n_ok"] == 2
    assert len(pd.read_parquet(paths["requests_parquet"])) == 3
    text = summary_markdown(df)
    assert "| http_sse |" in text and "Peak throughput" in text
    # Only 1 of 3 requests met the SLOs, so no load point qualifies at 95%.
    assert "No load point met the SLOs" in text and "errors" in text
    records = summary_table_records(df)
    assert records[0]["target_rps"] is None and records[0]["n_err"] == 1
    json.dumps(records)  # JSON-safe for a Prefect table artifact
    with pytest.raises(ValueError, match="lacks required columns"):
        write_results(df.drop(columns=["ttft_ms_p99"]), pd.DataFrame(rows), tmp_path)



def test_a_shape_without_a_price_shows_its_cost_as_unknown_not_free(tmp_path):
    from trtllm_oci.bench.results import summary_markdown

    identity = {"run_id": "r1", "ts": "t", "transport": "http_sse", "model": "m", "shape": "BM.GPU.GB200.4",
                "dataset": "random", "isl_requested": 10, "osl_requested": 5, "load_mode": "concurrency",
                "concurrency": 2, "burstiness": math.nan, "max_concurrency": math.nan, "repeat": 0, "seed": 0,
                "warmup": 0}

    def table(cost):
        summary, _ = summarize_point(_worked_example(), None, cost=cost)
        text = summary_markdown(order_columns(pd.DataFrame([{**identity, **summary}])))
        header = next(line for line in text.splitlines() if line.startswith("| transport"))
        row = next(line for line in text.splitlines() if line.startswith("| http_sse"))
        cells = dict(zip(header.strip("|").split(" | "), row.strip("|").split(" | "), strict=True))
        return text, cells["usd_per_1M_out"].strip()

    text, cell = table(CostInputs(gpu_count=4, usd_per_hour=None))
    assert cell == "–" and "– per 1M output tokens" in text and "$" not in text
    text, cell = table(CostInputs(gpu_count=4, usd_per_hour=2.0))
    assert cell not in ("–", "-") and float(cell.replace(",", "")) > 0 and "$" in text


# ---------------------------------------------------------------- SSE decoding and OpenAI bodies


def test_sse_decoder_follows_the_event_stream_rules():
    from trtllm_oci.bench.wire import SseDecoder

    decoder = SseDecoder()
    lines = [b": keep-alive comment\n", b"event: error\n", b"data: {\"a\":\n", b"data:1}\r\n", b"\n",
             b"data: {\"b\": 2} \n", b"\n", b"\n", b"data: [DONE]"]
    events = [e for i, line in enumerate(lines) if (e := decoder.feed(line, 100 + i)) is not None]
    events.append(decoder.flush())
    assert [(e.name, e.data, e.first_ns) for e in events] == [
        ("error", b'{"a":\n1}', 102), (None, b'{"b": 2} ', 105), (None, b"[DONE]", 108)]
    assert decoder.flush() is None


def _openai_record(streamed: bool = True):
    record = RequestRecord(0, RequestSpec("p", 4))
    record.streamed = streamed
    return record


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"error": {"message": "boom", "type": "InternalServerError", "code": 500}}, "server error in stream: boom (code 500)"),
        ({"error": "plain"}, "server error in stream: plain"),
        ({"object": "error", "message": "bad", "type": "BadRequestError", "code": 400}, "bad (code 400)"),
        ({"text_output": " a"}, "not an OpenAI chat.completion.chunk"),
        ({"object": "text_completion", "choices": []}, "not an OpenAI chat.completion.chunk"),
        (["not", "an", "object"], "not a JSON object"),
    ],
)
def test_openai_events_that_are_errors(event, message):
    from trtllm_oci.bench.openai_api import apply_event

    record = _openai_record()
    apply_event(record, event, 1, "chat", streamed=True)
    assert not record.chunk_ns and message in record.error


def test_openai_events_fold_text_and_usage():
    from trtllm_oci.bench.openai_api import apply_event

    record = _openai_record()
    chunks = [{"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"role": "assistant"}}]},
              {"choices": [{"index": 0, "delta": {"reasoning_content": "hm", "content": None}}],
               "usage": {"prompt_tokens": 9, "completion_tokens": 1}},
              {"choices": [{"index": 0, "delta": {"content": " x"}, "finish_reason": "length"}],
               "usage": {"prompt_tokens": 9, "completion_tokens": 2}},
              {"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}}]
    for i, chunk in enumerate(chunks):
        apply_event(record, chunk, 10 + i, "chat", streamed=True)
    # The role-only chunk and the usage chunk carry no text: TTFT is the first generated token.
    assert record.chunk_ns == [11, 12] and record.output_text == "hm x"
    assert record.server_output_tokens == [2] and record.server_input_tokens == 9 and record.error is None
    answer = {"object": "text_completion", "choices": [{"index": 0, "text": " a b"}],
              "usage": {"prompt_tokens": 3, "completion_tokens": 2}}
    whole = _openai_record(streamed=False)
    apply_event(whole, answer, 5, "completions", streamed=False)
    assert whole.output_text == " a b" and whole.server_output_tokens == [2]


def test_openai_bodies_and_options():
    from trtllm_oci.bench.openai_api import parse_length_fields, request_body, served_models

    spec = RequestSpec("hi", 8, extra_inputs={"top_p": 0.5})
    assert request_body(spec, "m", "completions", stream=True, length_fields=("ignore_eos",)) == {
        "model": "m", "prompt": "hi", "max_tokens": 8, "temperature": 0.0, "stream": True,
        "stream_options": {"include_usage": True}, "ignore_eos": True, "top_p": 0.5}
    natural = request_body(RequestSpec("hi", 8, fixed_output_len=False), "m", "chat", stream=False)
    assert "min_tokens" not in natural and "ignore_eos" not in natural and "stream_options" not in natural
    assert parse_length_fields("none") == () and parse_length_fields("min_tokens") == ("min_tokens",)
    with pytest.raises(ValueError, match="output-length fields \\['min_length'\\]"):
        parse_length_fields("min_length,ignore_eos")
    with pytest.raises(ValueError, match="--api 'generate'"):
        request_body(spec, "m", "generate", stream=True)
    assert served_models({"object": "list", "data": [{"id": "a"}, {"id": "b"}]}) == ["a", "b"]
    with pytest.raises(ValueError, match="not an OpenAI model list"):
        served_models({"models": []})
