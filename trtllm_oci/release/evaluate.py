"""The evaluate stage of a release: its task set fetched and checked before anything is served, then the
quantized release and its unquantized source scored through the same OpenAI-compatible server on this host,
and the verdict under the spec's limits.

The source is the downloaded model directory served exactly as the release is (same server, same served name,
same LLM-API options); its scores are kept in the baseline cache (where the engine cache is: locally, or its
Object Storage bucket), so a rebuild of another quantization of the same commit on the same task set and harness
reuses them without serving the source again, on this host or another that shares the cache.

For an OCI target the gate runs before the image is published and the deployment made, on a copy served on
the flow's host: the deployment's predict route is signed per request (OCI request signing), which lm-eval's
OpenAI client cannot do, and a gate after deploying would put a failed release live first.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from trtllm_oci.backends.base import ServingConfig
from trtllm_oci.evaluate.baseline import BaselineKey
from trtllm_oci.evaluate.endpoint import PromptLogprobsMissingError, check_prompt_logprobs
from trtllm_oci.evaluate.gate import QualityVerdict, check_limits_cover_metrics, compare, verdict_markdown
from trtllm_oci.evaluate.harness import (
    EndpointTarget,
    HarnessRequest,
    HarnessScores,
    check_task_set,
    harness_version,
    run_harness,
)
from trtllm_oci.evaluate.task_set import PreparedTaskSet, download_task_set, task_set_digest
from trtllm_oci.files import staged_dir, write_atomic
from trtllm_oci.hub.download import repo_dir_name
from trtllm_oci.hub.snapshot import DownloadResult
from trtllm_oci.model_facts import load_model_facts
from trtllm_oci.release.cache import open_baseline_store
from trtllm_oci.release.serving import serve_locally
from trtllm_oci.serving.openai_server import OpenAIServerKind, choose_openai_server
from trtllm_oci.settings import Settings
from trtllm_oci.spec import EvaluationSpec, ReleaseSpec

QUALITY_JSON = "quality.json"
QUALITY_MD = "quality.md"


def _evaluation(spec: ReleaseSpec) -> EvaluationSpec:
    if spec.evaluation is None:
        raise ValueError(f"release {spec.release_id} has no evaluation section")
    return spec.evaluation


def task_set_dir(spec: ReleaseSpec, settings: Settings, token: str | None) -> Path:
    """The task set on this host: the local directory, or the Hub dataset at its commit (fetched once)."""
    task_set = _evaluation(spec).task_set
    if task_set.local_dir is not None:
        return Path(task_set.local_dir).expanduser().resolve()
    assert task_set.hf_dataset is not None and task_set.revision is not None  # the spec checks both
    target = settings.evaluation_dir / "task-sets" / f"{repo_dir_name(task_set.hf_dataset)}@{task_set.revision}"
    if not target.is_dir():
        with staged_dir(target) as staging:
            download_task_set(task_set.hf_dataset, task_set.revision, staging, token=token,
                              endpoint=settings.hf_endpoint)
    return target


def prepare_evaluation(spec: ReleaseSpec, settings: Settings, token: str | None,
                       log: Callable[[str], None] | None = None) -> PreparedTaskSet:
    """Fetch and check the task set before anything is built or served: the harness is installed, every task
    exists and loads with its data, every limit names a metric a task reports, and the server this host will
    run returns what the log-likelihood tasks read."""
    evaluation = _evaluation(spec)
    harness = harness_version()
    task_dir = task_set_dir(spec, settings, token)
    digest = task_set_digest(task_dir)
    tasks = check_task_set(HarnessRequest(task_dir=task_dir, tasks=tuple(evaluation.tasks), limit=evaluation.limit,
                                          datasets_cache=settings.evaluation_dir / "datasets-cache"), log)
    check_limits_cover_metrics(evaluation.max_drop, tasks)
    prepared = PreparedTaskSet(task_dir=task_dir, digest=digest, origin=evaluation.task_set.origin, tasks=tasks,
                               limit=evaluation.limit, harness=harness)
    choice = choose_openai_server()
    if choice.kind is OpenAIServerKind.TRTLLM_SERVE and prepared.reads_prompt_logprobs:
        raise PromptLogprobsMissingError(
            f"evaluation.tasks {prepared.reads_prompt_logprobs} are scored by log-likelihood, which needs the prompt's "
            "token logprobs with echo; this host serves with trtllm-serve, whose completions echo the prompt's text "
            "only (its logprobs cover the generated tokens: tensorrt_llm/serve/postprocess_handlers.py). Keep "
            "generate_until tasks (e.g. exact_match) for this host")
    return prepared


def baseline_key(prepared: PreparedTaskSet, model: DownloadResult) -> BaselineKey:
    return BaselineKey(source_commit=model.commit_sha, task_set_digest=prepared.digest, tasks=prepared.task_names,
                       limit=prepared.limit, harness=prepared.harness)


def source_serving_config(serving: ServingConfig, model: DownloadResult) -> ServingConfig:
    """The unquantized source, served as the release is: same server, served name and LLM-API options."""
    return serving.model_copy(update={"checkpoint_dir": Path(model.local_dir), "tokenizer_dir": Path(model.local_dir)})


def score_served(config: ServingConfig, prepared: PreparedTaskSet, max_length: int, settings: Settings,
                 log: Callable[[str], None]) -> tuple[HarnessScores, str]:
    """Serve `config` here, score it on the task set, stop it; returns the scores and what served it."""
    with serve_locally(config, "openai", log) as endpoint:
        url = f"{endpoint.url}/v1/completions"
        if prepared.reads_prompt_logprobs:
            check_prompt_logprobs(url, endpoint.model, prepared.reads_prompt_logprobs, endpoint.server)
        target = EndpointTarget(completions_url=url, model=endpoint.model, tokenizer_dir=config.tokenizer_dir,
                                max_length=max_length)
        scores = run_harness(HarnessRequest(task_dir=prepared.task_dir, tasks=prepared.task_names,
                                            limit=prepared.limit, target=target,
                                            datasets_cache=settings.evaluation_dir / "datasets-cache"), log)
    return scores, endpoint.server


def run_quality_gate(spec: ReleaseSpec, prepared: PreparedTaskSet, serving: ServingConfig, model: DownloadResult,
                     settings: Settings, log: Callable[[str], None], out_dir: Path) -> QualityVerdict:
    """Score the release and (unless its baseline is cached) its source; write quality.json and quality.md
    under `out_dir`; the verdict says what failed. Raising on a failed gate is the caller's choice."""
    evaluation = _evaluation(spec)
    facts = load_model_facts(Path(model.local_dir))
    max_length = min(facts.max_position_embeddings, spec.build.max_seq_len)
    key = baseline_key(prepared, model)
    store = open_baseline_store(spec.engine_cache, settings)
    baseline = store.get(key)
    reused = baseline is not None
    if baseline is None:
        log(f"quality gate: measuring the source {spec.model.label} (commit {model.commit_sha[:12]}) on "
            f"{prepared.origin}")
        scores, server = score_served(source_serving_config(serving, model), prepared, max_length, settings, log)
        baseline = store.put(key, scores, source=f"{spec.model.label} commit {model.commit_sha[:12]}, unquantized, "
                                                 f"served by {server}")
    else:
        log(f"quality gate: the source's scores come from baseline {key.digest[:16]} ({baseline.source})")
    log(f"quality gate: measuring {spec.release_id}")
    candidate, server = score_served(serving, prepared, max_length, settings, log)
    verdict = compare(baseline.scores, candidate, evaluation.max_drop, evaluation.on_fail, source_label=baseline.source,
                      candidate_label=f"{spec.release_id} ({spec.quantization.method.value}), served by {server}",
                      baseline_key=key.digest, baseline_reused=reused)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(out_dir / QUALITY_JSON, json.dumps(verdict.event_payload(), indent=2) + "\n", durable=False)
    write_atomic(out_dir / QUALITY_MD, f"# Quality gate: {spec.release_id}\n\n{verdict_markdown(verdict)}\n",
                 durable=False)
    return verdict
