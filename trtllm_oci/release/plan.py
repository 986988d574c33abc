"""The capacity plan of a release: the verdict on its target shape, what would fit instead, and the
markdown the plan stage publishes."""

from __future__ import annotations

from pydantic import BaseModel

from trtllm_oci import planner
from trtllm_oci.backends import backend_for
from trtllm_oci.build.trtllm import refuse_if_it_will_not_fit
from trtllm_oci.checkpoint.quant_config import CheckpointQuantization, check_runs_on_gpu
from trtllm_oci.errors import InputError
from trtllm_oci.model_facts import ModelFacts
from trtllm_oci.spec import ReleaseSpec


class ReleasePlan(BaseModel):
    """The planner's verdict (None when the target names no GPU shape) and, when it does not fit, what would."""

    plan: planner.Plan | None
    architecture: str
    alternatives: str | None = None


class ReleaseCheckError(InputError):
    """The release cannot be built or served as asked, whatever the memory: found from its spec and the
    model's config.json alone, before any download or GPU time."""

    def __init__(self, problems: list[str], subject: str) -> None:
        self.problems = problems
        super().__init__(f"{subject} cannot be built as asked:\n" + "\n".join(f"  - {p}" for p in problems))


def chat_uses(spec: ReleaseSpec) -> list[str]:
    """The spec's fields that send /v1/chat/completions requests to the served model (empty: none do)."""
    if spec.serving.backend != "pytorch" or spec.serving.effective_frontend != "openai":
        return []
    uses = []
    if spec.target.kind == "oci" and spec.serving.predict_api == "chat":
        uses.append("serving.predict_api: chat (the deployment's predict endpoint and its smoke test)")
    if spec.benchmark.enabled and spec.benchmark.api == "chat" and spec.benchmark.transport in (None, "openai"):
        uses.append("benchmark.api: chat")
    return uses


def release_problems(spec: ReleaseSpec, facts: ModelFacts, chat_template: bool | None = None) -> list[str]:
    """Every problem the spec and config.json show without running anything (the spec itself already
    checked the target shape's GPU count and FP8 support when it loaded): tp dividing the heads and KV
    heads, pp within the layers, max_seq_len within the model's context, what the backend's version table
    allows for this model family, and the precisions the target shape's GPU has kernels for.

    `chat_template`: whether the tokenizer has a chat template (release.model.chat_template_present; None: not
    read), for a release that sends chat requests (`chat_uses`)."""
    problems = planner.layout_problems(facts, spec.parallelism)
    chat = chat_uses(spec) if chat_template is False else []
    if chat:
        problems.append(
            f"the tokenizer of {spec.model.label} has no chat template (no chat_template.jinja, chat_template.json "
            "or chat_template in tokenizer_config.json), so trtllm-serve answers 400 to every /v1/chat/completions "
            f"request, and {' and '.join(chat)} sends them. Set serving.predict_api: completions and "
            "benchmark.api: completions (prompts on /v1/completions), or release a chat model")
    context = planner.context_problem(facts, spec.build)
    if context:
        problems.append(context)
    if spec.target.kind == "local" and spec.benchmark.enabled and spec.serving.backend == "pytorch" \
            and spec.serving.effective_frontend == "triton":
        # release.serving.serve_locally runs tritonserver on this host, which has no TensorRT-LLM for llmapi.
        problems.append("serving.frontend triton with target.kind local: the benchmark serves the release on this "
                        "host with its tritonserver, which cannot run Triton's llmapi model (it needs TensorRT-LLM "
                        "inside its Triton image). Set serving.frontend: openai, target.kind: oci, or "
                        "benchmark.enabled: false to assemble the repository only")
    from trtllm_oci.release.artifact import build_request  # artifact imports this module

    shape = spec.shape
    problems += backend_for(spec.serving.backend).request_problems(build_request(spec, "-"), facts,
                                                                   shape.gpu if shape is not None else None)
    return problems


def check_release(spec: ReleaseSpec, facts: ModelFacts, chat_template: bool | None = None) -> None:
    """Raise ReleaseCheckError listing every problem `release_problems` finds (nothing when there are none)."""
    problems = release_problems(spec, facts, chat_template)
    if problems:
        raise ReleaseCheckError(problems, f"{facts.architecture} ({spec.model.label})")


def plan_release(spec: ReleaseSpec, facts: ModelFacts, existing: CheckpointQuantization | None = None,
                 chat_template: bool | None = None) -> ReleasePlan:
    """The checks of `check_release`, then the planner's verdict on the target shape (when it names one).

    `existing`: how a pytorch release's checkpoint is quantized already (release.model.checkpoint_quantization);
    its real bytes per weight are planned, and a quantization the target GPU cannot run is refused here.
    `chat_template` as in `release_problems`."""
    check_release(spec, facts, chat_template)
    shape = spec.shape
    if shape is None:
        return ReleasePlan(plan=None, architecture=facts.architecture)
    backend = "pytorch" if spec.serving.backend == "pytorch" else "tensorrt"
    bytes_per_weight = None
    if backend == "pytorch" and existing is not None and existing.is_quantized:
        check_runs_on_gpu(existing, shape.gpu)  # NVFP4 below Blackwell, FP8 below SM 89: refused here
        bytes_per_weight = existing.weight_bytes
    result = planner.plan(facts, shape, spec.quantization, spec.parallelism, spec.build,
                          spec.serving.kv_cache_free_gpu_mem_fraction, backend, bytes_per_weight)
    alternatives = None if result.fits else planner.alternatives_text(facts, shape, spec.build)
    return ReleasePlan(plan=result, architecture=facts.architecture, alternatives=alternatives)


def preflight(spec: ReleaseSpec, facts: ModelFacts, force: bool = False,
              existing: CheckpointQuantization | None = None, chat_template: bool | None = None) -> ReleasePlan:
    """What a dry run and the plan stage refuse before any GPU time: `check_release`'s problems, and a build
    the planner says will not fit the target shape (unless `force`); returns the plan (`existing` and
    `chat_template` as in `plan_release`)."""
    release_plan = plan_release(spec, facts, existing, chat_template)
    result = release_plan.plan
    if result is not None and not result.fits and backend_for(spec.serving.backend).uses_gpu:
        refuse_if_it_will_not_fit(result, release_plan.alternatives, force)
    return release_plan


def oom_advice(spec: ReleaseSpec, facts: ModelFacts) -> str:
    """What to change after a build ran out of memory: layouts that fit the shape, or the general levers."""
    shape = spec.shape
    if shape is None:
        return "Lower build.max_batch_size / max_num_tokens / max_seq_len, or quantize."
    return planner.alternatives_text(facts, shape, spec.build)


def plan_markdown(release_plan: ReleasePlan) -> str:
    result = release_plan.plan
    assert result is not None
    m = result.per_gpu
    verdict = "fits" if result.fits else "does NOT fit"
    lines = [
        f"# Capacity plan: {release_plan.architecture} {verdict} on {result.shape}",
        "",
        f"**{result.quantization.value}**, tp={result.tp}, pp={result.pp}, KV cache {result.kv_cache_dtype.value}, "
        f"max_seq_len {result.limits.max_seq_len}, max_batch_size {result.limits.max_batch_size}",
        "",
        "| per GPU | GiB |",
        "|---|---|",
        f"| weights | {m.weights_gib:.2f} |",
        f"| activations / workspace | {m.activations_gib:.2f} |",
        f"| runtime overhead | {m.overhead_gib:.2f} |",
        f"| KV cache ({m.kv_cache_per_token_kib:.0f} KiB/token) | {m.kv_cache_gib:.2f} |",
        f"| **total** | **{m.total_gib:.2f}** of {m.memory_gib:.2f} |",
        "",
        f"Room for **{result.max_concurrent_sequences}** concurrent sequences of {result.limits.max_seq_len} tokens.",
        "",
        *[f"- {r}" for r in result.reasons],
    ]
    if release_plan.alternatives:
        lines += ["", "## What would fit", "", "```", release_plan.alternatives, "```"]
    return "\n".join(lines)
