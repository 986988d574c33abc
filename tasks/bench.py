"""Stage: benchmark the served release (local Triton, or the OCI Model Deployment) and keep the results."""

from __future__ import annotations

from pathlib import Path

from prefect import task

from trtllm_oci.backends.base import ServingConfig
from trtllm_oci.cloud.deployment import DeploymentResult
from trtllm_oci.model_facts import ModelFacts
from trtllm_oci.release.bench import BenchOutcome, benchmark_config, outcome_from
from trtllm_oci.release.model import model_facts
from trtllm_oci.release.serving import serve_locally
from trtllm_oci.settings import current_settings
from trtllm_oci.spec import ReleaseSpec
from trtllm_oci.tasks.common import hf_token, run_logger


def _facts(spec: ReleaseSpec) -> ModelFacts | None:
    """The model facts for cost and roofline columns; only needed when the target names a shape."""
    if spec.shape is None:
        return None
    settings = current_settings()
    return model_facts(spec.model, settings, hf_token(settings))


def _log_point(log):
    return lambda row: log.info(
        "load point concurrency=%s: %.1f out tok/s, TTFT p50 %.1f ms, %s errors", row.get("concurrency"),
        row.get("out_tok_s", float("nan")), row.get("ttft_ms_p50", float("nan")), row.get("n_err"))


@task(name="serve-and-benchmark-local", task_run_name="bench-local-{spec.release_id}", timeout_seconds=4 * 3600,
      persist_result=True)
def serve_and_benchmark_local_task(spec: ReleaseSpec, serving: ServingConfig, out_dir: Path) -> BenchOutcome:
    """Serve the release on this host, measure it, and stop the server (also when the benchmark fails).
    Each load point's results are written as soon as it is measured."""
    from trtllm_oci.bench.results import ResultWriter
    from trtllm_oci.bench.runner import run_benchmark

    log = run_logger()
    with serve_locally(serving, spec.benchmark.transport, log.info) as endpoint:
        log.info("%s ready at %s (%s)", endpoint.server, endpoint.url, endpoint.transport)
        config = benchmark_config(spec, endpoint.url, endpoint.transport, serving, _facts(spec))
        result = run_benchmark(config, progress=_log_point(log), on_point=ResultWriter(Path(out_dir)).write_tables)
    outcome = outcome_from(result, Path(out_dir), served_by=endpoint.server)
    log.info("benchmark results in %s", out_dir)
    return outcome


@task(name="benchmark-deployment", task_run_name="bench-oci-{spec.release_id}", timeout_seconds=4 * 3600,
      persist_result=True)
def benchmark_deployment_task(
    spec: ReleaseSpec, deployment: DeploymentResult, serving: ServingConfig, out_dir: Path
) -> BenchOutcome:
    """Measure the Model Deployment through its signed predict endpoints."""
    from trtllm_oci.bench.results import ResultWriter
    from trtllm_oci.bench.runner import run_benchmark
    from trtllm_oci.tasks.cloud import release_clients

    signer = release_clients(spec).auth.signer
    config = benchmark_config(spec, deployment.url or "", "oci", serving, _facts(spec), signer=signer,
                              routes=deployment.routes)
    return outcome_from(run_benchmark(config, progress=_log_point(run_logger()),
                                      on_point=ResultWriter(Path(out_dir)).write_tables), Path(out_dir))
