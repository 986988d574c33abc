"""Flow `release`: plan → download (+ the evaluation set) → quantize → build engines → assemble repository →
[OCI: evaluate → image → deploy → benchmark | local: serve and benchmark → evaluate] → report. Composition only:
every stage is a task (or a flow of its own) in tasks/."""

from __future__ import annotations

from pathlib import Path

from prefect import flow
from prefect.deployments import run_deployment

from trtllm_oci.backends import backend_for
from trtllm_oci.backends.base import PreparedArtifact
from trtllm_oci.build.host import BuildHost
from trtllm_oci.release.artifact import skipped_stages
from trtllm_oci.release.workspace import Workspace
from trtllm_oci.report import ReleaseReport
from trtllm_oci.settings import current_settings
from trtllm_oci.spec import OciTarget, ReleaseSpec
from trtllm_oci.tasks import events
from trtllm_oci.tasks.bench import benchmark_deployment_task, serve_and_benchmark_local_task
from trtllm_oci.tasks.cloud import (
    deploy_task,
    plan_deployment_task,
    publish_image_task,
    reference_artifact_task,
    smoke_test_task,
)
from trtllm_oci.tasks.common import skip_stage
from trtllm_oci.tasks.download import download_model_task
from trtllm_oci.tasks.engine import build_engine_task
from trtllm_oci.tasks.evaluate import evaluate_quality_task, prepare_evaluation_task
from trtllm_oci.tasks.hooks import release_failed
from trtllm_oci.tasks.plan import plan_capacity
from trtllm_oci.tasks.repo import assemble_repository_task, package_artifact_task
from trtllm_oci.tasks.report import publish_report_task
from trtllm_oci.tasks.retry_policy import retry_only_transient_failures

RUN_NAME = "{spec.model.short_name}-{spec.quantization.method}-tp{spec.parallelism.tp}pp{spec.parallelism.pp}"


@flow(
    name="release",
    flow_run_name="release-" + RUN_NAME,
    # One retry of the whole run: finished stages return their persisted results instead of running again.
    # A refusal of the input, credentials or capacity is not retried (retry_only_transient_failures).
    retries=1,
    retry_delay_seconds=30,
    on_failure=[release_failed],
    on_crashed=[release_failed],
)
def release(
    spec: ReleaseSpec,
    out_dir: str | None = None,
    force_build: bool = False,
    build_host: BuildHost | None = None,
    build_deployment: str | None = None,
) -> ReleaseReport:
    """Take one release spec to a benchmarked endpoint.

    out_dir: where the repository, artifact and benchmark results go (default: a per-release workspace).
    force_build: build even when the capacity planner says the engine will not fit.
    build_host: where engine builds run (Docker or local TensorRT-LLM; GPU ids; TensorRT-LLM checkout).
    build_deployment: run the engine build as this deployment (e.g. "build_engine/build-engine" on the GPU
    work pool) instead of in this process.
    """
    with retry_only_transient_failures():
        ws = Workspace.for_release(spec, current_settings(), out_dir)
        plan = plan_capacity(spec)
        oci = isinstance(spec.target, OciTarget)
        route = plan_deployment_task(spec) if oci else None
        model = download_model_task(spec.model)
        # The evaluation set is fetched and checked now, so a bad one fails before anything is built or served.
        evaluation = prepare_evaluation_task(spec) if spec.evaluation is not None else None

        for stage, reason in skipped_stages(spec).items():
            skip_stage(stage, reason)
        if build_deployment and backend_for(spec.serving.backend).uses_gpu:
            run = run_deployment(name=build_deployment, parameters={"spec": spec.model_dump(mode="json"),
                                                                    "force": force_build}, as_subflow=True)
            artifact = PreparedArtifact.model_validate(run.state.result())
        else:
            artifact = build_engine_task(spec, model, plan, build_host, force_build)
        events.emit_release_event(events.ENGINE_BUILT, spec, {"cache_key": artifact.manifest.key,
                                                              "uri": artifact.manifest.uri,
                                                              "cache_hit": artifact.cache_hit})

        by_reference = route is not None and route.route == "by_reference"
        repo = assemble_repository_task(spec, artifact, model, ws.root, by_reference)
        image = deployment = quality = None
        if evaluation is None:
            skip_stage("evaluate", "no evaluation in the spec")
        if oci:
            if evaluation is not None:
                # Before anything is published: a copy served on this host (the spec allows evaluation only for
                # OpenAI-served checkpoints, which are never by reference).
                quality = evaluate_quality_task(spec, evaluation, repo, model, ws.root)
            if by_reference:
                skip_stage("package", "model by reference: the engines stay in the engine cache; nothing is zipped")
                packaged = reference_artifact_task(spec, artifact, repo, route)
            else:
                packaged = package_artifact_task(repo, ws.artifact_zip)
            image = publish_image_task(spec, model.commit_sha)
            deployment = deploy_task(spec, image, packaged, route, quality)
            events.emit_release_event(events.DEPLOYMENT_ACTIVE, spec, {"model_deployment_id": deployment.model_deployment_id,
                                                                       "url": deployment.url})
            smoke_test_task(spec, deployment)
            bench = benchmark_deployment_task(spec, deployment, repo, ws.benchmark) if spec.benchmark.enabled else None
        else:
            skip_stage("image", "local target: Triton runs on this host from the assembled repository; no image to push")
            skip_stage("deploy", "local target: served by a local Triton for the benchmark, not an OCI Model Deployment")
            bench = serve_and_benchmark_local_task(spec, repo, ws.benchmark) if spec.benchmark.enabled else None
            if evaluation is not None:
                quality = evaluate_quality_task(spec, evaluation, repo, model, ws.root)
        if bench is None:
            skip_stage("benchmark", "benchmark.enabled is false")
        else:
            events.emit_release_event(events.BENCHMARK_DONE, spec, bench.headline)
        return publish_report_task(spec, plan, model, artifact, repo, image, deployment, bench, Path(ws.root), quality)
