"""Stage: benchmark the served release (local Triton, or the OCI Model Deployment) and keep the results."""

from __future__ import annotations

from pathlib import Path

from prefect import task

from trtllm_oci.cloud.deployment import DeploymentResult
from trtllm_oci.model_facts import ModelFacts
from trtllm_oci.release.bench import BenchOutcome, benchmark_config, outcome_from, tokenizer_dir
from trtllm_oci.release.model import model_facts
from trtllm_oci.repo.assemble import RepoManifest
from trtllm_oci.settings import current_settings
from trtllm_oci.spec import ReleaseSpec
from trtllm_oci.tasks.common import hf_token, run_logger


def _facts(spec: ReleaseSpec) -> ModelFacts | None:
    """The model facts for cost and roofline columns; only needed when the target names a shape."""
    if spec.shape is None:
        return None
    settings = current_settings()
    return model_facts(spec.model, settings, hf_token(settings))


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
        config = benchmark_config(spec, url, spec.benchmark.transport, tokenizer_dir(repo), _facts(spec))
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
    from trtllm_oci.bench.runner import run_benchmark
    from trtllm_oci.tasks.cloud import release_clients

    signer = release_clients(spec).auth.signer
    config = benchmark_config(spec, deployment.url or "", "oci", tokenizer_dir(repo), _facts(spec), signer=signer)
    return outcome_from(run_benchmark(config), Path(out_dir))
