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


def refuse_unanswered(result: Any, out_dir: Path) -> None:
    """A release whose endpoint answered no request, or went silent mid-run, is not a benchmarked release:
    raise (the tables are already written under `out_dir`) with the first error the endpoint gave."""
    from trtllm_oci.bench.errors import BenchmarkFailedError
    from trtllm_oci.errors import redact_credentials

    summary, requests = result.summary, result.requests
    answered = int(summary["n_ok"].sum()) if "n_ok" in summary.columns else 0
    if answered and not result.stopped:
        return
    errors = requests["error"] if "error" in requests.columns else []
    first = next((str(e) for e in errors if e), None)
    why = result.stopped or f"none of the {len(requests)} requests got an answer"
    raise BenchmarkFailedError(redact_credentials(
        f"the benchmark failed: {why}" + (f"; the first error: {first[:300]}" if first else "")
        + f". What was measured is in {out_dir}; check the route and model the "
          "benchmark sends to (benchmark.transport, benchmark.api, serving.served_model_name) and the server's log"))


def outcome_from(result: Any, out_dir: Path, served_by: str | None = None) -> BenchOutcome:
    """Write the result tables and plots under `out_dir`; the headline is the best load point by output tok/s."""
    from trtllm_oci.bench.plots import plot_summary
    from trtllm_oci.bench.results import summary_markdown, summary_table_records, write_results

    summary = result.summary
    if summary.empty:
        refuse_unanswered(result, out_dir)
    files = write_results(summary, result.requests, out_dir)
    refuse_unanswered(result, out_dir)
    (Path(out_dir) / "summary.md").write_text(summary_markdown(summary), encoding="utf-8")
    files["summary_md"] = Path(out_dir) / "summary.md"
    for plot in plot_summary(summary, out_dir):
        files[f"plot_{plot.stem}"] = plot
    best = summary.loc[summary["out_tok_s"].idxmax()] if len(summary) else None
    headline = {c: _clean(best[c]) for c in HEADLINE_COLUMNS if best is not None and c in summary.columns}
    headline["n_err_total"] = int(summary["n_err"].sum()) if "n_err" in summary.columns else 0
    return BenchOutcome(headline=headline, files={k: str(v) for k, v in files.items()},
                        summary_records=summary_table_records(summary), served_by=served_by)


def served_capabilities(serving: ServingConfig) -> Any:
    """What the served Triton model declares, from the config.pbtxt the release assembled, for a transport that
    cannot ask the server: a Model Deployment routes only its registered paths, and its ensemble is whichever
    TensorRT-LLM version's interface (0.14 has min_length and no token counts; 1.2 min_tokens and both).
    None for an OpenAI frontend."""
    from trtllm_oci.bench.payload import ModelCapabilities
    from trtllm_oci.repo.checks import read_model_config

    if serving.frontend != "triton" or serving.model_repository is None:
        return None
    return ModelCapabilities.from_config(read_model_config(serving.model_repository, serving.served_model))


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
        price = shape.price_per_hour_usd
        cost = CostInputs(
            gpu_count=p.world_size,
            gpu_bw_gbs=shape.gpu.memory_bandwidth_gbs,
            # No catalog price: the cost columns stay unknown rather than free.
            usd_per_hour=None if price is None else price * getattr(spec.target, "instance_count", 1),
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
        caps=served_capabilities(serving) if transport == "oci" else None,
    )
