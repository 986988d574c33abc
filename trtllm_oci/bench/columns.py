"""Column names and definitions of the benchmark tables (the source of docs/benchmark-columns.md)."""

from __future__ import annotations

import pandas as pd

_STAT_WORDS = {
    "mean": "mean",
    "p50": "median (50th percentile)",
    "p90": "90th percentile",
    "p99": "99th percentile",
    "max": "maximum",
}


def _stat_columns(
    prefix: str, what: str, stats: tuple[str, ...] = ("mean", "p50", "p90", "p99")
) -> dict[str, str]:
    return {f"{prefix}_{s}": f"{_STAT_WORDS[s]} of {what}" for s in stats}


_TTFT = "time to first token, ms: first non-empty output chunk minus the request's actual send time (successful requests; for non-streaming /generate it equals E2E)"
_TPOT = "time per output token, ms: per request (E2E - TTFT) / (OSL - 1), requests with OSL > 1 and streaming only"
_ITL = "inter-token latency, ms: every gap between consecutive output chunks divided by that request's tokens per chunk ((OSL-1)/(chunks-1)), pooled over all successful requests"
_E2E = "end-to-end latency, ms: end of the response stream minus actual send (successful requests)"
_QUEUE = "client queue time, ms: actual send minus scheduled send (time a request waited in the client, e.g. behind --max-concurrency)"

#: One row per (I/O pair or dataset) x load point x repeat: the `summary` table.
COLUMNS: dict[str, str] = {
    "run_id": "random id shared by every row of one benchmark invocation",
    "ts": "UTC start time of the invocation (ISO 8601)",
    "transport": "http_sse (/generate_stream), http_generate (/generate, no streaming), grpc (ModelStreamInfer), oci_md (/predictWithResponseStream), openai_chat_sse / openai_completions_sse (/v1/chat/completions or /v1/completions, streaming), openai_chat / openai_completions (the same without streaming); oci_md+openai_chat (or +openai_completions) when the OCI route carries OpenAI bodies",
    "model": "Triton model name the requests went to (normally `ensemble`), or the served model name an OpenAI body named",
    "shape": "compute shape label given with --shape (used for cost and roofline inputs)",
    "dataset": "random (synthetic prompts of exact token length) or sharegpt",
    "isl_requested": "requested input length in tokens for synthetic prompts (NaN for datasets)",
    "osl_requested": "requested output length in tokens when fixed (min_tokens = max_tokens), NaN for natural-length datasets",
    "load_mode": "concurrency (closed loop), poisson (open loop, exponential gaps) or gamma (open loop, burstiness != 1)",
    "concurrency": "closed-loop concurrency: requests kept in flight (NaN for open-loop rows)",
    "target_rps": "open-loop target request rate in requests/s (NaN for closed loop; inf sends all at once)",
    "burstiness": "gamma shape of the inter-arrival gaps: 1 = Poisson, < 1 burstier, inf = constant (open loop only)",
    "max_concurrency": "cap on in-flight requests in open-loop mode (NaN = none); waits show up as client queue time",
    "repeat": "repeat number, 0-based",
    "seed": "seed for prompts and arrival times of this repeat (base --seed + repeat)",
    "warmup": "number of warm-up requests sent (and discarded) before the load points of this I/O pair",
    "n_sent": "requests sent in this load point",
    "n_ok": "requests that finished without error",
    "n_err": "requests that failed: HTTP/gRPC errors, transport errors and error events inside a 200 stream",
    "err_rate": "n_err / n_sent",
    "duration_s": "seconds from the first send to the last response end of this load point",
    "achieved_send_rps": "(n_sent - 1) / (last send - first send): the request rate the client actually achieved",
    "achieved_concurrency": "sum of all requests' E2E / duration_s (mean requests in flight, Little's law)",
    "req_s": "successful requests per second: n_ok / duration_s",
    "in_tok_s": "input tokens of successful requests per second",
    "out_tok_s": "output tokens of successful requests per second (whole deployment)",
    "total_tok_s": "input plus output tokens per second",
    "out_tok_s_per_gpu": "out_tok_s / gpu_count",
    "isl_mean": "mean input length in tokens of successful requests (see input_count_source)",
    "osl_mean": "mean output length in tokens of successful requests (see token_count_source)",
    "token_count_source": "where output token counts came from: server (num_output_tokens, or an OpenAI answer's usage.completion_tokens), tokenizer (the model's tokenizer on the received text), chunks (one token per streamed chunk) or words; '+'-joined if mixed",
    "input_count_source": "where input token counts came from: server (num_input_tokens, includes BOS; an OpenAI answer's usage.prompt_tokens, which includes the chat template), tokenizer (exact prompt text, no special tokens) or words",
    **_stat_columns("ttft_ms", _TTFT),
    **_stat_columns("tpot_ms", _TPOT),
    **_stat_columns("itl_ms", _ITL, ("mean", "p50", "p90", "p99", "max")),
    **_stat_columns("e2e_ms", _E2E),
    **_stat_columns("client_queue_ms", _QUEUE),
    "tok_s_per_user_p50": "output tokens/s seen by one user at median TPOT: 1000 / tpot_ms_p50",
    "slo_ttft_ms": "TTFT service-level objective in ms (NaN = none)",
    "slo_tpot_ms": "TPOT service-level objective in ms (NaN = none)",
    "n_good": "successful requests meeting every given SLO (TTFT <= slo_ttft_ms and TPOT <= slo_tpot_ms)",
    "goodput_rps": "n_good / duration_s",
    "goodput_frac": "n_good / n_sent (errors count as misses)",
    "goodput_out_tok_s": "output tokens of SLO-meeting requests per second",
    "flag_client_bound": "True when achieved_send_rps < 95% of the seeded schedule's own rate ((n-1) / scheduled span, target_rps on average): the client (or --max-concurrency) could not keep the schedule",
    "osl_err_mean_pct": "mean |OSL - requested| / requested over fixed-length requests, percent",
    "flag_osl_mismatch": "True when osl_err_mean_pct > 2%: output lengths missed the request (min_tokens ignored, EOS, or token counting differs)",
    "flag_errors": "True when any request failed",
    "flag_client_token_counts": "True when some successful request's output tokens were counted by the client (token_count_source not server): the server sent no count (an OpenAI server that ignored stream_options.include_usage, an ensemble without return_num_output_tokens), so OSL and tok/s are client estimates",
    "flag_few_requests": "True when fewer than 100 requests succeeded (percentiles p99 are then unreliable)",
    "gpu_count": "GPUs serving the model (TP x PP), input",
    "gpu_bw_gbs": "datasheet memory bandwidth per GPU in GB/s, input",
    "usd_per_hour": "price of the whole shape per hour in USD, input",
    "weight_bytes": "bytes of (active) weights read per decode step, input",
    "kv_bytes_per_token": "KV-cache bytes per token of context (2 x layers x kv_heads x head_dim x bytes), input",
    "roofline_tok_s": "memory-bound decode ceiling in tokens/s: B * gpu_count * BW / (W + B * L * k) with B = achieved_concurrency, L = isl_mean + osl_mean / 2",
    "roofline_eff": "(B / TPOT p50) / roofline_tok_s; equals memory-bandwidth utilisation (MBU) under this model; > 1 means a wrong W, quantisation or speculative decoding",
    "flag_roofline_over_1": "True when roofline_eff > 1",
    "usd_per_1M_out": "usd_per_hour / (3600 * out_tok_s) * 1e6: USD per million output tokens at this load",
    "usd_per_1M_total": "the same per million input plus output tokens",
    "usd_per_1M_out_at_slo": "usd_per_hour / (3600 * goodput_out_tok_s) * 1e6: USD per million output tokens that met the SLOs",
    "flags": "comma-separated names of the flags that are True (client_bound, osl_mismatch, errors, client_token_counts, few_requests, roofline_over_1)",
}

#: One row per request: the `requests` table.
REQUEST_COLUMNS: dict[str, str] = {
    "run_id": COLUMNS["run_id"],
    "load_point": "row number of this request's load point in the summary table",
    "transport": COLUMNS["transport"],
    "load_mode": COLUMNS["load_mode"],
    "concurrency": COLUMNS["concurrency"],
    "target_rps": COLUMNS["target_rps"],
    "repeat": COLUMNS["repeat"],
    "index": "request number within the load point (send order for open loop)",
    "ok": "True when the request finished without error",
    "error": "error message (HTTP status, transport error, timeout, the stream's error event, or a stream cut short before data: [DONE]); empty when ok",
    "streamed": "True for streaming transports",
    "osl_requested": "max_tokens sent (min_tokens too when the length is fixed)",
    "n_chunks": "non-empty output chunks received",
    "client_queue_ms": "actual send minus scheduled send, ms",
    "isl": "input tokens (see input_count_source)",
    "input_count_source": COLUMNS["input_count_source"],
    "e2e_ms": "end of stream minus actual send, ms (also for failed requests)",
    "osl": "output tokens (see token_count_source); 0 for failed requests",
    "token_count_source": "server (the answer's own count), tokenizer, chunks or words: anything but server is a client-side count",
    "ttft_ms": "first non-empty chunk minus actual send, ms",
    "tpot_ms": "(E2E - TTFT) / (OSL - 1), ms",
    "itl_ms_mean": "mean of this request's inter-token latencies (chunk gaps per token), ms",
    "meets_slo": "True when ok and within every given SLO",
    "send_offset_s": "actual send time relative to the load point's first send, s",
}

REQUIRED_SUMMARY_CSV_COLUMNS = (
    "concurrency",
    "n_ok",
    "n_err",
    "req_s",
    "out_tok_s",
    "ttft_ms_p50",
    "ttft_ms_p99",
    "tpot_ms_p50",
    "itl_ms_p50",
    "e2e_ms_p50",
)


def order_columns(df: pd.DataFrame) -> pd.DataFrame:
    """Columns in COLUMNS order; an unknown column is a bug (undocumented), so it raises."""
    unknown = [c for c in df.columns if c not in COLUMNS]
    if unknown:
        raise KeyError(
            f"undocumented summary columns {unknown}: add them to trtllm_oci.bench.columns.COLUMNS"
        )
    return df[[c for c in COLUMNS if c in df.columns]]


def columns_markdown() -> str:
    """The text of docs/benchmark-columns.md."""
    lines = [
        "# Benchmark result columns",
        "",
        "Generated from `trtllm_oci/bench/columns.py` (`python -m trtllm_oci.bench.columns > docs/benchmark-columns.md`);",
        "a test keeps the two in sync. Times are client-side `time.perf_counter_ns()` readings.",
        "",
        "## summary (summary.csv / summary.parquet): one row per load point and repeat",
        "",
        "| column | definition |",
        "|---|---|",
    ]
    lines += [f"| `{name}` | {text.replace('|', '/')} |" for name, text in COLUMNS.items()]
    lines += [
        "",
        "## requests (requests.csv / requests.parquet): one row per request",
        "",
        "| column | definition |",
        "|---|---|",
    ]
    lines += [f"| `{name}` | {text.replace('|', '/')} |" for name, text in REQUEST_COLUMNS.items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(columns_markdown(), end="")
