"""Per-request metrics and one summary row per load point.

Definitions (also in columns.COLUMNS):
- TTFT = first non-empty chunk - actual send; E2E = end of stream - actual send.
- TPOT = (E2E - TTFT) / (OSL - 1) per request (vLLM's TPOT, genai-perf's ITL).
- ITL = every gap between consecutive chunks divided by the tokens that chunk carried
  ((OSL - 1) / (chunks - 1) on average per request), pooled over requests.
- client queue = actual send - scheduled send.
- duration = first send -> last end over all requests of the load point.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from trtllm_oci.bench.records import RequestRecord
from trtllm_oci.bench.tokens import SOURCE_SERVER, count_input_tokens, count_output_tokens

NS_PER_MS = 1e6
NS_PER_S = 1e9
STATS = ("mean", "p50", "p90", "p99")
CLIENT_BOUND_FRACTION = 0.95
OSL_TOLERANCE = 0.02
MIN_REQUESTS = 100


@dataclass(frozen=True)
class CostInputs:
    """Shape and model facts for roofline and cost; any may be None (columns become NaN)."""

    gpu_count: int | None = None
    gpu_bw_gbs: float | None = None
    usd_per_hour: float | None = None
    weight_bytes: float | None = None
    kv_bytes_per_token: float | None = None

    def __post_init__(self) -> None:
        for name in ("gpu_count", "gpu_bw_gbs", "usd_per_hour", "weight_bytes", "kv_bytes_per_token"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name}={value} must be > 0 (or left unset)")


@dataclass(frozen=True)
class Slo:
    ttft_ms: float | None = None
    tpot_ms: float | None = None

    def __post_init__(self) -> None:
        for name in ("ttft_ms", "tpot_ms"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"SLO {name}={value} must be > 0 ms (or left unset)")

    @property
    def any(self) -> bool:
        return self.ttft_ms is not None or self.tpot_ms is not None

    def met(self, ttft_ms: float, tpot_ms: float) -> bool:
        if self.ttft_ms is not None and not ttft_ms <= self.ttft_ms:
            return False
        # A single-token reply has no TPOT; it cannot violate a TPOT bound.
        return not (self.tpot_ms is not None and not math.isnan(tpot_ms) and tpot_ms > self.tpot_ms)


def stats(values: Iterable[float], prefix: str, with_max: bool = False) -> dict[str, float]:
    array = np.asarray([v for v in values if not math.isnan(v)], dtype=float)
    out: dict[str, float] = {}
    if array.size == 0:
        out = {f"{prefix}_{s}": math.nan for s in STATS}
        if with_max:
            out[f"{prefix}_max"] = math.nan
        return out
    out[f"{prefix}_mean"] = float(array.mean())
    for q in (50, 90, 99):
        out[f"{prefix}_p{q}"] = float(np.percentile(array, q))
    if with_max:
        out[f"{prefix}_max"] = float(array.max())
    return out


def request_metrics(record: RequestRecord, tokenizer: Any | None, slo: Slo = Slo()) -> dict[str, Any]:
    """One row of the per-request table (times in ms)."""
    row: dict[str, Any] = {
        "index": record.index,
        "ok": record.ok,
        "error": record.error or "",
        "streamed": record.streamed,
        "osl_requested": record.spec.output_len,
        "n_chunks": len(record.chunk_ns),
        "client_queue_ms": (record.send_ns - record.scheduled_ns) / NS_PER_MS if record.scheduled_ns else 0.0,
        "send_ns": record.send_ns,
        "end_ns": record.end_ns,
    }
    isl, in_source = count_input_tokens(record, tokenizer)
    row["isl"], row["input_count_source"] = isl, in_source
    e2e = (record.end_ns - record.send_ns) / NS_PER_MS if record.end_ns else math.nan
    row["e2e_ms"] = e2e
    if not record.ok:
        row.update(
            osl=0,
            token_count_source="",
            ttft_ms=math.nan,
            tpot_ms=math.nan,
            itl_ms_mean=math.nan,
            meets_slo=False,
        )
        return row
    osl, out_source = count_output_tokens(record, tokenizer)
    row["osl"], row["token_count_source"] = osl, out_source
    if record.streamed:
        ttft = (record.chunk_ns[0] - record.send_ns) / NS_PER_MS
        tpot = (e2e - ttft) / (osl - 1) if osl > 1 else math.nan
    else:
        ttft, tpot = e2e, math.nan
    row["ttft_ms"], row["tpot_ms"] = ttft, tpot
    gaps = itl_values_ms(record, osl)
    row["itl_ms_mean"] = float(np.mean(gaps)) if gaps else math.nan
    row["meets_slo"] = slo.met(ttft, tpot) if slo.any else True
    return row


def itl_values_ms(record: RequestRecord, osl: int) -> list[float]:
    """Chunk gaps divided by the average tokens per chunk after the first (the first carries one)."""
    if not record.streamed or len(record.chunk_ns) < 2 or osl < 2:
        return []
    tokens_per_chunk = max((osl - 1) / (len(record.chunk_ns) - 1), 1e-9)
    return [
        (b - a) / NS_PER_MS / tokens_per_chunk
        for a, b in zip(record.chunk_ns, record.chunk_ns[1:], strict=False)
    ]


def roofline_tok_s(
    concurrency: float,
    gpu_count: int,
    gpu_bw_gbs: float,
    weight_bytes: float,
    kv_bytes_per_token: float,
    context_len: float,
) -> float:
    """Memory-bound decode ceiling: B * TP * BW / (W + B * L * k) tokens/s (benchmark.md §4.4)."""
    bw = gpu_count * gpu_bw_gbs * 1e9
    return concurrency * bw / (weight_bytes + concurrency * context_len * kv_bytes_per_token)


def usd_per_million_tokens(usd_per_hour: float, tok_s: float) -> float:
    """$ per 1e6 tokens at a sustained tok_s on a shape billed usd_per_hour (NaN at 0 tok/s)."""
    if not tok_s > 0:
        return math.nan
    return usd_per_hour / (3600.0 * tok_s) * 1e6


def summarize_point(
    records: Sequence[RequestRecord],
    tokenizer: Any | None,
    slo: Slo = Slo(),
    cost: CostInputs = CostInputs(),
    target_rps: float | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(summary row, per-request rows) for one load point."""
    if not records:
        raise ValueError("no requests were sent for this load point; raise --num-requests")
    rows = [request_metrics(r, tokenizer, slo) for r in records]
    ok_rows = [row for row in rows if row["ok"]]
    ok_records = [r for r in records if r.ok]
    n_sent, n_ok = len(rows), len(ok_rows)
    first_send = min(r.send_ns for r in records)
    last_end = max(r.end_ns for r in records)
    duration_s = max((last_end - first_send) / NS_PER_S, 1e-9)
    sends = sorted(r.send_ns for r in records)
    send_span_s = (sends[-1] - sends[0]) / NS_PER_S
    achieved_send_rps = (n_sent - 1) / send_span_s if n_sent > 1 and send_span_s > 0 else math.nan
    in_tokens = sum(row["isl"] for row in ok_rows)
    out_tokens = sum(row["osl"] for row in ok_rows)
    sum_e2e_s = sum(row["e2e_ms"] for row in rows if not math.isnan(row["e2e_ms"])) / 1000.0

    summary: dict[str, Any] = {
        "n_sent": n_sent,
        "n_ok": n_ok,
        "n_err": n_sent - n_ok,
        "err_rate": (n_sent - n_ok) / n_sent,
        "duration_s": duration_s,
        "achieved_send_rps": achieved_send_rps,
        "achieved_concurrency": sum_e2e_s / duration_s,
        "req_s": n_ok / duration_s,
        "in_tok_s": in_tokens / duration_s,
        "out_tok_s": out_tokens / duration_s,
        "total_tok_s": (in_tokens + out_tokens) / duration_s,
        "isl_mean": float(np.mean([row["isl"] for row in ok_rows])) if ok_rows else math.nan,
        "osl_mean": float(np.mean([row["osl"] for row in ok_rows])) if ok_rows else math.nan,
        "token_count_source": "+".join(sorted({row["token_count_source"] for row in ok_rows})),
        "input_count_source": "+".join(sorted({row["input_count_source"] for row in ok_rows})),
    }
    summary.update(stats((row["ttft_ms"] for row in ok_rows), "ttft_ms"))
    summary.update(stats((row["tpot_ms"] for row in ok_rows), "tpot_ms"))
    itl = [g for r, row in zip(ok_records, ok_rows, strict=True) for g in itl_values_ms(r, row["osl"])]
    summary.update(stats(itl, "itl_ms", with_max=True))
    summary.update(stats((row["e2e_ms"] for row in ok_rows), "e2e_ms"))
    summary.update(stats((row["client_queue_ms"] for row in rows), "client_queue_ms"))
    tpot_p50 = summary["tpot_ms_p50"]
    summary["tok_s_per_user_p50"] = 1000.0 / tpot_p50 if tpot_p50 and tpot_p50 > 0 else math.nan

    # SLO goodput: errors count as misses.
    summary["slo_ttft_ms"] = slo.ttft_ms if slo.ttft_ms is not None else math.nan
    summary["slo_tpot_ms"] = slo.tpot_ms if slo.tpot_ms is not None else math.nan
    if slo.any:
        good = [row for row in ok_rows if row["meets_slo"]]
        summary["n_good"] = len(good)
        summary["goodput_rps"] = len(good) / duration_s
        summary["goodput_frac"] = len(good) / n_sent
        summary["goodput_out_tok_s"] = sum(row["osl"] for row in good) / duration_s
    else:
        summary.update(
            n_good=math.nan, goodput_rps=math.nan, goodput_frac=math.nan, goodput_out_tok_s=math.nan
        )

    # Sanity flags.
    summary["target_rps"] = target_rps if target_rps is not None and math.isfinite(target_rps) else math.nan
    # Compared with the rate of the seeded schedule itself, so the random spread of a short
    # Poisson schedule around target_rps is not mistaken for a slow client.
    scheduled = sorted(r.scheduled_ns for r in records)
    scheduled_span_s = (scheduled[-1] - scheduled[0]) / NS_PER_S
    scheduled_rps = (n_sent - 1) / scheduled_span_s if n_sent > 1 and scheduled_span_s > 0 else math.inf
    summary["flag_client_bound"] = bool(
        target_rps is not None
        and math.isfinite(target_rps)
        and n_sent > 1
        and not achieved_send_rps >= CLIENT_BOUND_FRACTION * scheduled_rps
    )
    fixed = [row for row, r in zip(rows, records, strict=True) if row["ok"] and r.spec.fixed_output_len]
    if fixed:
        rel = [abs(row["osl"] - row["osl_requested"]) / row["osl_requested"] for row in fixed]
        summary["osl_err_mean_pct"] = 100.0 * float(np.mean(rel))
        summary["flag_osl_mismatch"] = bool(np.mean(rel) > OSL_TOLERANCE)
    else:
        summary["osl_err_mean_pct"] = math.nan
        summary["flag_osl_mismatch"] = False
    summary["flag_errors"] = n_sent > n_ok
    summary["flag_client_token_counts"] = any(row["token_count_source"] != SOURCE_SERVER for row in ok_rows)
    summary["flag_few_requests"] = n_ok < MIN_REQUESTS

    summary.update(efficiency_and_cost(summary, cost))
    summary["flags"] = ",".join(
        name.removeprefix("flag_")
        for name in (
            "flag_client_bound",
            "flag_osl_mismatch",
            "flag_errors",
            "flag_client_token_counts",
            "flag_few_requests",
            "flag_roofline_over_1",
        )
        if summary[name]
    )
    return summary, rows


def efficiency_and_cost(summary: dict[str, Any], cost: CostInputs) -> dict[str, Any]:
    out: dict[str, Any] = {
        "gpu_count": cost.gpu_count if cost.gpu_count is not None else math.nan,
        "gpu_bw_gbs": cost.gpu_bw_gbs if cost.gpu_bw_gbs is not None else math.nan,
        "usd_per_hour": cost.usd_per_hour if cost.usd_per_hour is not None else math.nan,
        "weight_bytes": cost.weight_bytes if cost.weight_bytes is not None else math.nan,
        "kv_bytes_per_token": cost.kv_bytes_per_token if cost.kv_bytes_per_token is not None else math.nan,
        "out_tok_s_per_gpu": summary["out_tok_s"] / cost.gpu_count if cost.gpu_count else math.nan,
        "roofline_tok_s": math.nan,
        "roofline_eff": math.nan,
        "usd_per_1M_out": math.nan,
        "usd_per_1M_total": math.nan,
        "usd_per_1M_out_at_slo": math.nan,
    }
    if None not in (cost.gpu_count, cost.gpu_bw_gbs, cost.weight_bytes, cost.kv_bytes_per_token):
        context_len = summary["isl_mean"] + summary["osl_mean"] / 2.0
        concurrency = summary["achieved_concurrency"]
        if concurrency > 0 and not math.isnan(context_len):
            ceiling = roofline_tok_s(
                concurrency,
                cost.gpu_count,
                cost.gpu_bw_gbs,
                cost.weight_bytes,  # type: ignore[arg-type]
                cost.kv_bytes_per_token,
                context_len,
            )  # type: ignore[arg-type]
            out["roofline_tok_s"] = ceiling
            tpot_s = summary["tpot_ms_p50"] / 1000.0
            if tpot_s > 0:
                out["roofline_eff"] = (concurrency / tpot_s) / ceiling
    out["flag_roofline_over_1"] = bool(out["roofline_eff"] > 1.0)
    if cost.usd_per_hour is not None:
        out["usd_per_1M_out"] = usd_per_million_tokens(cost.usd_per_hour, summary["out_tok_s"])
        out["usd_per_1M_total"] = usd_per_million_tokens(cost.usd_per_hour, summary["total_tok_s"])
        out["usd_per_1M_out_at_slo"] = usd_per_million_tokens(cost.usd_per_hour, summary["goodput_out_tok_s"])
    return out
