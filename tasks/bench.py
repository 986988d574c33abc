"""Stage: benchmark the served release (local Triton, or the OCI Model Deployment) and keep the results."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from prefect import task
from pydantic import BaseModel
from trtllm_oci.tasks.common import run_logger

from trtllm_oci.cloud.deployment import DeploymentResult
from trtllm_oci.repo.assemble import RepoManifest
from trtllm_oci.spec import BenchmarkSpec, ReleaseSpec

HEADLINE_COLUMNS = ("concurrency", "out_tok_s", "req_s", "ttft_ms_p50", "tpot_ms_p50", "e2e_ms_p50", "n_err",
                    "usd_per_1M_out", "goodput_frac")


class BenchOutcome(BaseModel):
    """What the report needs from a benchmark: the headline, where the files are, the summary rows."""

    headline: dict[str, Any]
    files: dict[str, str]
    summary_records: list[dict[str, Any]]


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value.item() if hasattr(value, "item") else value


def outcome_from(result: Any, out_dir: Path) -> BenchOutcome:
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
                        summary_records=summary_table_records(summary))


def benchmark_config(spec: ReleaseSpec, url: str, transport: str, tokenizer_dir: Path | None, signer: Any = None):
    """The benchmark's load from the spec, and cost/roofline inputs from the shape catalog and model facts."""
    from trtllm_oci import planner
    from trtllm_oci.bench.metrics import CostInputs, Slo
    from trtllm_oci.bench.runner import BenchmarkConfig
    from trtllm_oci.bench.tokens import load_tokenizer

    b: BenchmarkSpec = spec.benchmark
    cost = CostInputs()
    shape = spec.shape
    if shape is not None:
        from trtllm_oci.model_source import model_facts_for

        facts = model_facts_for(spec.model)
        p = spec.parallelism
        cost = CostInputs(
            gpu_count=p.world_size,
            gpu_bw_gbs=shape.gpu.memory_bandwidth_gbs,
            usd_per_hour=shape.price_per_hour_usd * getattr(spec.target, "instance_count", 1),
            weight_bytes=planner.per_gpu_weight_bytes(facts, spec.quantization.method, p.tp, p.pp) * p.world_size,
            kv_bytes_per_token=planner.kv_bytes_per_token_per_gpu(facts, spec.quantization.kv_cache_dtype, 1, 1),
        )
    return BenchmarkConfig(
        url=url,
        model="ensemble",
        transport=transport,
        concurrencies=list(b.concurrency),
        io_pairs=[(b.input_len, b.output_len)],
        num_requests=b.num_requests,
        warmup=b.warmup_requests,
        tokenizer=load_tokenizer(tokenizer_dir) if tokenizer_dir else None,
        slo=Slo(ttft_ms=b.slo_ttft_ms, tpot_ms=b.slo_tpot_ms),
        cost=cost,
        shape=shape.name if shape else "local",
        signer=signer,
    )


def _tokenizer_dir(repo: RepoManifest) -> Path:
    from trtllm_oci.repo.assemble import TOKENIZER_DIR

    return Path(repo.root) / TOKENIZER_DIR


@task(name="serve-and-benchmark-local", task_run_name="bench-local-{spec.release_id}", timeout_seconds=4 * 3600,
      persist_result=True)
def serve_and_benchmark_local_task(spec: ReleaseSpec, repo: RepoManifest, out_dir: Path) -> BenchOutcome:
    """Start Triton on the repository, measure it, and stop it (also when the benchmark fails)."""
    from trtllm_oci.bench.runner import run_benchmark
    from trtllm_oci.serving.local import LocalTriton

    log = run_logger()
    with LocalTriton(repo.model_repository, ready_timeout_s=600, log_sink=log.debug) as server:
        log.info("Triton ready at %s (gRPC %s)", server.http_url, server.grpc_url)
        url = server.grpc_url if spec.benchmark.transport == "grpc" else server.http_url
        config = benchmark_config(spec, url, spec.benchmark.transport, _tokenizer_dir(repo))
        result = run_benchmark(config, progress=lambda row: log.info(
            "load point concurrency=%s: %.1f out tok/s, TTFT p50 %.1f ms, %s errors",
            row.get("concurrency"), row.get("out_tok_s", float("nan")), row.get("ttft_ms_p50", float("nan")),
            row.get("n_err")))
    outcome = outcome_from(result, Path(out_dir))
    log.info("benchmark results in %s", out_dir)
    return outcome


@task(name="benchmark-deployment", task_run_name="bench-oci-{spec.release_id}", timeout_seconds=4 * 3600,
      persist_result=True)
def benchmark_deployment_task(
    spec: ReleaseSpec, deployment: DeploymentResult, repo: RepoManifest, out_dir: Path
) -> BenchOutcome:
    """Measure the Model Deployment through its signed /predictWithResponseStream endpoint."""
    from trtllm_oci.tasks.cloud import oci_clients

    from trtllm_oci.bench.runner import run_benchmark

    signer = oci_clients(spec).auth.signer
    config = benchmark_config(spec, deployment.url or "", "oci", _tokenizer_dir(repo), signer=signer)
    return outcome_from(run_benchmark(config), Path(out_dir))
