"""Flow `build_engine`: plan, download and build (or reuse) the engines of a release.

Deployed on the GPU work pool (prefect.yaml) with a concurrency limit of one, so a GPU host runs one
build at a time; `release` can call it through `run_deployment` and reads the returned manifest, so the
result is persisted: give the workers shared result storage (PREFECT_DEFAULT_RESULT_STORAGE_BLOCK).
"""

from __future__ import annotations

from prefect import flow

from trtllm_oci.backends.base import PreparedArtifact
from trtllm_oci.build.host import BuildHost
from trtllm_oci.spec import ReleaseSpec
from trtllm_oci.tasks.download import download_model_task
from trtllm_oci.tasks.engine import build_engine_task
from trtllm_oci.tasks.plan import plan_capacity

RUN_NAME = "build-{spec.model.short_name}-{spec.quantization.method}-tp{spec.parallelism.tp}pp{spec.parallelism.pp}"


@flow(name="build_engine", flow_run_name=RUN_NAME, persist_result=True)
def build_engine(spec: ReleaseSpec, force: bool = False, build_host: BuildHost | None = None) -> PreparedArtifact:
    plan = plan_capacity(spec)
    model = download_model_task(spec.model)
    return build_engine_task(spec, model, plan, build_host, force)
