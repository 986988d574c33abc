"""`trtllm-oci plan`: does a model fit a GPU shape, before any GPU time is spent."""

from __future__ import annotations

import argparse
import json

from trtllm_oci.build_options import BuildLimits, KvCacheDtype, Parallelism, Quantization, QuantizationSpec

HELP = """\
Without --quant/--tp/--pp: list every feasible (quantization, tp, pp) for the shape (or for all shapes when
--shape is omitted), cheapest first, with the concurrent sequences each leaves room for at --max-seq-len.
With all three: one verdict with memory per GPU and the reasons. --model may be a Hugging Face repo id (only
config.json is fetched) or a directory holding at least config.json.
Exit status: 0 when planning worked (read `fits` in the output), 2 for bad input."""


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
    p.add_argument("--tp", type=int, help="tensor parallel size")
    p.add_argument("--pp", type=int, help="pipeline parallel size")
    defaults = BuildLimits()
    p.add_argument("--max-seq-len", type=int, default=defaults.max_seq_len, help="prompt + output tokens (default %(default)s)")
    p.add_argument(
        "--max-input-len",
        type=int,
        help=f"longest prompt (default {defaults.max_input_len}, capped below --max-seq-len)",
    )
    p.add_argument("--max-batch-size", type=int, default=defaults.max_batch_size, help="default %(default)s")
    p.add_argument("--max-num-tokens", type=int, default=defaults.max_num_tokens, help="default %(default)s")
    p.add_argument("--kv-cache-free-gpu-mem-fraction", type=float, default=0.9, help="default %(default)s")
    p.add_argument("--json", action="store_true", help="print JSON (one object for a verdict, a list of candidates)")
    p.set_defaults(handler=run_plan)


def _limits(args: argparse.Namespace) -> BuildLimits:
    from trtllm_oci.errors import SpecError

    max_input = args.max_input_len or min(BuildLimits().max_input_len, args.max_seq_len - 1)
    try:
        return BuildLimits(
            max_batch_size=args.max_batch_size,
            max_input_len=max_input,
            max_seq_len=args.max_seq_len,
            max_num_tokens=args.max_num_tokens,
        )
    except ValueError as exc:
        raise SpecError(str(exc).split("\n", 1)[-1].strip()) from None


def run_plan(args: argparse.Namespace) -> int:
    from trtllm_oci import planner
    from trtllm_oci.errors import SpecError
    from trtllm_oci.release.model import model_facts
    from trtllm_oci.settings import current_settings
    from trtllm_oci.shapes import load_catalog
    from trtllm_oci.spec import ModelSource

    if args.quant is None and (args.tp is not None or args.pp is not None):
        raise SpecError("give --quant together with --tp/--pp for a single verdict, or none of them for candidates")
    catalog = load_catalog()
    settings = current_settings()
    facts = model_facts(ModelSource.parse(args.model, args.revision), settings, settings.hf_token_value)
    limits = _limits(args)
    kv = KvCacheDtype(args.kv_cache_dtype)

    if args.quant is not None:
        if not args.shape:
            raise SpecError("--shape is required for a single verdict (--quant given); e.g. --shape VM.GPU.A10.2")
        result = planner.plan(
            facts,
            catalog.get(args.shape),
            QuantizationSpec(method=Quantization(args.quant), kv_cache_dtype=kv),
            Parallelism(tp=args.tp or 1, pp=args.pp or 1),
            limits,
            args.kv_cache_free_gpu_mem_fraction,
        )
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

    shapes = [catalog.get(args.shape)] if args.shape else None
    found = planner.candidates(facts, shapes, limits, kv_cache_dtype=kv,
                               kv_cache_free_gpu_mem_fraction=args.kv_cache_free_gpu_mem_fraction)
    if args.json:
        print(json.dumps([p.to_json_dict() for p in found], indent=2))
    elif not found:
        where = args.shape or "any catalog shape"
        print(f"Nothing fits on {where} at max_seq_len={limits.max_seq_len}; lower the build limits.")
    else:
        print(f"{len(found)} feasible layouts for {facts.architecture} at max_seq_len={limits.max_seq_len}:")
        for p in found:
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
    return "\n".join(lines)
