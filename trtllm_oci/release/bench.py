"""The benchmark of a served release: its load from the spec, cost and roofline inputs from the shape
catalog and the model's facts, and the outcome the report and the events carry."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from trtllm_oci import planner
from trtllm_oci.backends.base import ServingConfig
from trtllm_oci.model_facts import ModelFacts
from trtllm_oci.spec import ReleaseSpec

HEADLINE_COLUMNS = ("concurrency", "out_tok_s", "req_s", "ttft_ms_p50", "tpot_ms_p50", "e2e_ms_p50", "n_err",
                    "usd_per_1M_out", "goodput_frac")


class BenchOutcome(BaseModel):
    """What the report needs from a benchmark: the headline, where the files are, the summary rows."""

    headline: dict[str, Any]
    files: dict[str, str]
    summary_records: list[dict[str, Any]]
    served_by: str | None = None  # what served a local benchmark (tritonserver, trtllm-serve, the CPU smoke server)


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value.item() if hasattr(value, "item") else value


def outcome_from(result: Any, out_dir: Path, served_by: str | None = None) -> BenchOutcome:
    """Write the result tables and plots under `out_dir`; the headline is the best load point by output tok/s."""
    from trtllm_oci.bench.plots import plot_summary
    from trtllm_oci.bench.results import summary_markdown, summary_table_records, write_results

    summary = result.summary
    files = write_results(summary, result.requests, out_dir)
    (Path(out_dir) / "summary.md").write_text(summary_markdown(summary), encoding="utf-8")
    files["summary_md"] = Path(out_dir) / "summary.md"
    for plot in plot_summary(summary, out_dir):
        files[f"plot_{plot.stem}"] = plot
    best = summary.loc[summary["out_tok_s"].idxmax()] if len(summary) else None
    headline = {c: _clean(best[c]) for c in HEADLINE_COLUMNS if best is not None and c in summary.columns}
    headline["n_err_total"] = int(summary["n_err"].sum()) if "n_err" in summary.columns else 0
    return BenchOutcome(headline=headline, files={k: str(v) for k, v in files.items()},
                        summary_records=summary_table_records(summary), served_by=served_by)


def benchmark_config(spec: ReleaseSpec, url: str, transport: str, serving: ServingConfig,
                     facts: ModelFacts | None, signer: Any = None, routes: Any = None) -> Any:
    """The benchmark's load from the spec, aimed at what `serving` answers (Triton's ensemble or an OpenAI
    server's model); with a target shape and the model's facts, also the cost and roofline inputs (price,
    GPUs, bandwidth, weight and KV bytes)."""
    from trtllm_oci.bench.metrics import CostInputs, Slo
    from trtllm_oci.bench.runner import BenchmarkConfig
    from trtllm_oci.bench.tokens import load_tokenizer

    b = spec.benchmark
    cost = CostInputs()
    shape = spec.shape
    if shape is not None and facts is not None:
        p = spec.parallelism
        cost = CostInputs(
            gpu_count=p.world_size,
            gpu_bw_gbs=shape.gpu.memory_bandwidth_gbs,
            usd_per_hour=shape.price_per_hour_usd * getattr(spec.target, "instance_count", 1),
            weight_bytes=planner.per_gpu_weight_bytes(facts, spec.quantization.method, p.tp, p.pp) * p.world_size,
            kv_bytes_per_token=planner.kv_bytes_per_token_per_gpu(facts, spec.quantization.kv_cache_dtype, 1, 1),
        )
    openai = serving.frontend == "openai"
    return BenchmarkConfig(
        url=url,
        model=serving.served_model,
        transport=transport,
        api=b.api if openai else None,
        routes=routes,
        streaming=spec.serving.streaming if transport == "oci" else True,
        concurrencies=list(b.concurrency),
        io_pairs=[(b.input_len, b.output_len)],
        num_requests=b.num_requests,
        warmup=b.warmup_requests,
        tokenizer=load_tokenizer(serving.tokenizer_dir),
        slo=Slo(ttft_ms=b.slo_ttft_ms, tpot_ms=b.slo_tpot_ms),
        cost=cost,
        shape=shape.name if shape else "local",
        signer=signer,
    )
