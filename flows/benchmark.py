"""Flow `benchmark`: measure any Triton TensorRT-LLM endpoint with the release's benchmark settings."""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from trtllm_oci.backends.base import ServingConfig
from trtllm_oci.release.bench import BenchOutcome
from trtllm_oci.release.workspace import Workspace
from trtllm_oci.settings import current_settings
from trtllm_oci.spec import ReleaseSpec
from trtllm_oci.tasks.bench import serve_and_benchmark_local_task


@flow(name="benchmark", flow_run_name="benchmark-{spec.release_id}")
def benchmark(spec: ReleaseSpec, repo: ServingConfig, out_dir: str | None = None) -> BenchOutcome:
    """Serve an assembled repository locally and benchmark it (OCI deployments are measured by `release`)."""
    return serve_and_benchmark_local_task(spec, repo, Path(Workspace.for_release(spec, current_settings(), out_dir).benchmark))
