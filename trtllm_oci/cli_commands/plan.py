"""`trtllm-oci plan`: does a model fit a GPU shape, before any GPU time is spent."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from trtllm_oci.build_options import BuildLimits, KvCacheDtype, Parallelism, Quantization, QuantizationSpec
from trtllm_oci.cli_commands.arg_types import fraction, int_at_least

HELP = """\
Without --quant/--tp/--pp: list every feasible (quantization, tp, pp) for the shape (or for all shapes when
--shape is omitted), cheapest first, with the concurrent sequences each leaves room for at --max-seq-len.
With all three: one verdict with memory per GPU and the reasons. --model may be a Hugging Face repo id (only
config.json is fetched) or a directory holding at least config.json.
Exit status: 0 when planning worked (read `fits` in the output: memory decides it), 2 for bad input,
including what no memory can fix: tp×pp above the shape's GPUs, FP8 on a GPU without it, a tp that does not
divide the model's heads, pp above its layers, --max-seq-len beyond its context."""


DEFAULT_MAX_CANDIDATES = 20
# The spec fields these flags stand for, so a limits error names the flag.
FLAG_NAMES = {"build.max_batch_size": "--max-batch-size", "build.max_input_len": "--max-input-len",
              "build.max_seq_len": "--max-seq-len", "build.max_num_tokens": "--max-num-tokens"}
# How the shared checks name the spec's fields, and the flags of this command that set them.
_FIELD_PREFIXES = {"quantization.method:": "--quant", "quantization.kv_cache_dtype:": "--kv-cache-dtype",
                   "parallelism:": "--tp/--pp:", "tp=": "--tp ", "pp=": "--pp ", "max_seq_len=": "--max-seq-len "}


def _in_flags(message: str) -> str:
    """A shared check's message, starting with this command's flag instead of the spec field."""
    for field, flag in _FIELD_PREFIXES.items():
        if message.startswith(field):
            return flag + message[len(field):]
    return message


def add_plan_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plan",
        help="capacity planner: will a model fit a shape",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", required=True, help="Hugging Face repo id or a directory with config.json")
    p.add_argument("--revision", default="main", help="branch, tag or sha for a Hugging Face model (default main)")
    p.add_argument("--shape", help="OCI shape, e.g. VM.GPU.A10.2 (see trtllm_oci/data/gpu_shapes.yaml)")
    p.add_argument("--quant", choices=[q.value for q in Quantization], help="quantization")
    p.add_argument("--kv-cache-dtype", choices=[k.value for k in KvCacheDtype], default="auto")
    p.add_argument("--tp", type=int_at_least(1, 64), help="tensor parallel size (default 1 with --quant)")
    p.add_argument("--pp", type=int_at_least(1, 64), help="pipeline parallel size (default 1 with --quant)")
    defaults = BuildLimits()
    p.add_argument("--max-seq-len", type=int_at_least(2),
                   help=f"prompt + output tokens (default {defaults.max_seq_len}, or the model's context when "
                        "that is shorter)")
    p.add_argument(
        "--max-input-len",
        type=int_at_least(1),
        help=f"longest prompt (default {defaults.max_input_len}, capped below --max-seq-len)",
    )
    p.add_argument("--max-batch-size", type=int_at_least(1), default=defaults.max_batch_size,
                   help="default %(default)s")
    p.add_argument("--max-num-tokens", type=int_at_least(1), default=defaults.max_num_tokens,
                   help="default %(default)s")
    p.add_argument("--kv-cache-free-gpu-mem-fraction", type=fraction, default=0.9,
                   help="share of the memory left after weights that the KV cache takes, in (0, 1] (default %(default)s)")
    p.add_argument("--max-candidates", type=int_at_least(1), default=DEFAULT_MAX_CANDIDATES,
                   help="list at most this many candidates, cheapest first (default %(default)s)")
    p.add_argument("--json", action="store_true", help="print JSON (one object for a verdict, a list of candidates)")
    p.set_defaults(handler=run_plan)


def _limits(args: argparse.Namespace, context_tokens: int | None) -> BuildLimits:
    """The flags' limits; an unset --max-seq-len is the default capped at the model's context (a 2k-context
    model is planned at 2048, not refused for a length nobody asked for)."""
    from pydantic import ValidationError

    from trtllm_oci.errors import SpecError

    defaults = BuildLimits()
    max_seq_len = args.max_seq_len or min(defaults.max_seq_len, max(context_tokens or defaults.max_seq_len, 2))
    max_input = args.max_input_len or min(defaults.max_input_len, max_seq_len - 1)
    try:
        return BuildLimits(
            max_batch_size=args.max_batch_size,
            max_input_len=max_input,
            max_seq_len=max_seq_len,
            max_num_tokens=args.max_num_tokens,
        )
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        loc = "build." + ".".join(str(p) for p in first["loc"]) if first["loc"] else ""
        flag = FLAG_NAMES.get(loc, "--max-input-len/--max-seq-len")
        raise SpecError(f"{flag}: {first['msg'].removeprefix('Value error, ')}") from None


def run_plan(args: argparse.Namespace) -> int:
    from trtllm_oci import planner
    from trtllm_oci.build_options import check_parallelism_fits, check_quantization_supported
    from trtllm_oci.errors import InputError, SpecError
    from trtllm_oci.model_facts import load_model_facts, names_local_model
    from trtllm_oci.shapes import load_catalog

    if args.quant is None and (args.tp is not None or args.pp is not None):
        raise SpecError("give --quant together with --tp/--pp for a single verdict, or none of them for candidates")
    if args.quant is not None and not args.shape:
        raise SpecError("--shape is required for a single verdict (--quant given); e.g. --shape VM.GPU.A10.2")
    # Limits the flags fix alone are checked before config.json is fetched: a bad flag is not a Hub error.
    explicit = _limits(args, None) if args.max_seq_len else None
    catalog = load_catalog()
    shape = catalog.get(args.shape) if args.shape else None
    kv = KvCacheDtype(args.kv_cache_dtype)
    if names_local_model(args.model):
        # config.json alone: the spec, the version table and the Hub client are not needed (start-up time).
        facts = load_model_facts(Path(args.model).expanduser())
    else:
        from trtllm_oci.release.model import model_facts
        from trtllm_oci.settings import current_settings
        from trtllm_oci.spec import ModelSource

        settings = current_settings()
        facts = model_facts(ModelSource.parse(args.model, args.revision), settings, settings.hf_token_value)
    limits = explicit or _limits(args, facts.context_tokens)
    context = planner.context_problem(facts, limits)
    if context:
        raise SpecError(_in_flags(context))

    if args.quant is not None:
        assert shape is not None
        quantization = QuantizationSpec(method=Quantization(args.quant), kv_cache_dtype=kv)
        parallelism = Parallelism(tp=args.tp or 1, pp=args.pp or 1)
        # What no amount of memory fixes is bad input (exit 2), not a verdict.
        try:
            check_parallelism_fits(parallelism, shape, "--shape")
            check_quantization_supported(quantization, shape, "--shape")
        except InputError as exc:
            raise SpecError(_in_flags(str(exc))) from None
        problems = planner.layout_problems(facts, parallelism)
        if problems:
            raise SpecError("; ".join(_in_flags(p) for p in problems))
        result = planner.plan(facts, shape, quantization, parallelism, limits, args.kv_cache_free_gpu_mem_fraction)
        alternatives = [] if result.fits else planner.candidates(facts, [catalog.get(args.shape)], limits)[:5]
        if args.json:
            data = result.to_json_dict()
            data["alternatives"] = [planner.describe(p) for p in alternatives]
            print(json.dumps(data, indent=2))
        else:
            print(render_verdict(result, facts.architecture))
            if not result.fits:
                print(planner.alternatives_text(facts, catalog.get(args.shape), limits))
        return 0

    if shape is not None:
        try:
            check_quantization_supported(QuantizationSpec(kv_cache_dtype=kv), shape, "--shape")
        except InputError as exc:
            raise SpecError(_in_flags(str(exc))) from None
    found = planner.candidates(facts, [shape] if shape else None, limits, kv_cache_dtype=kv,
                               kv_cache_free_gpu_mem_fraction=args.kv_cache_free_gpu_mem_fraction)
    shown = found[:args.max_candidates]
    if args.json:
        print(json.dumps([p.to_json_dict() for p in shown], indent=2))
    elif not found:
        where = args.shape or ("any catalog shape with FP8 GPUs (--kv-cache-dtype fp8)" if kv is KvCacheDtype.FP8
                               else "any catalog shape")
        print(f"Nothing fits on {where} at --max-seq-len {limits.max_seq_len}; lower --max-seq-len, "
              "--max-batch-size or --max-num-tokens, or choose a shape with more GPU memory.")
    else:
        more = f" (the {len(shown)} cheapest; --max-candidates for more)" if len(found) > len(shown) else ""
        print(f"{len(found)} feasible layouts for {facts.architecture} at max_seq_len={limits.max_seq_len}{more}:")
        for p in shown:
            print(f"  {planner.describe(p)}")
    return 0


def render_verdict(result, architecture: str) -> str:
    m = result.per_gpu
    head = "FITS" if result.fits else "DOES NOT FIT"
    lines = [
        f"{head}: {architecture} {result.quantization.value} tp={result.tp} pp={result.pp} on {result.shape} "
        f"({result.gpu_count}× {result.gpu}, {m.memory_gib:.1f} GiB each)",
        f"  per GPU: weights {m.weights_gib:.2f} GiB, activations {m.activations_gib:.2f} GiB, runtime "
        f"{m.overhead_gib:.2f} GiB, KV cache {m.kv_cache_gib:.2f} GiB ({m.kv_cache_per_token_kib:.0f} KiB/token) "
        f"= {m.total_gib:.2f} GiB",
    ]
    lines += [f"  - {r}" for r in result.reasons]
    if result.host_arch != "amd64":
        lines.append(f"  host: {result.host_arch}; the serving image needs a linux/{result.host_arch} build")
    return "\n".join(lines)
