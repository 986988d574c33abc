"""`trtllm-oci bench`: load-test a TensorRT-LLM endpoint (Triton or OpenAI-compatible) and write tables and plots."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from trtllm_oci.bench.errors import BenchInputError
from trtllm_oci.errors import TrtllmOciError, redact_credentials

_EPILOG = """\
examples:
  # closed-loop concurrency sweep over HTTP SSE, exact 128/128 token prompts
  trtllm-oci bench --url http://localhost:8000 --model ensemble --transport http \\
      --concurrency 1,4,16 --input-len 128 --output-len 128 --num-requests 200 \\
      --tokenizer /models/llama3-8b --out results/

  # open-loop Poisson rates with a concurrency cap, SLOs and cost from the shape catalog
  trtllm-oci bench --url localhost:8001 --transport grpc --concurrency '' \\
      --request-rate 2,4,8 --max-concurrency 64 --slo-ttft-ms 1000 --slo-tpot-ms 50 \\
      --shape VM.GPU.A10.2 --weight-bytes 16.1e9 --kv-bytes-per-token 131072 --out results/

  # NVIDIA's published I/O pairs, 3 seeded repeats
  trtllm-oci bench --url http://localhost:8000 --io-pairs 128/128,128/2048,2048/128,2048/2048,1000/1000 \\
      --repeats 3 --tokenizer /models/llama3-8b --out results/

  # an OCI Model Deployment (MODEL_DEPLOY_PREDICT_ENDPOINT=/v2/models/ensemble/generate_stream)
  trtllm-oci bench --transport oci --url https://modeldeployment.<region>.oci.customer-oci.com/<md_ocid> \\
      --oci-config ~/.oci/config --concurrency 1,8 --out results/

  # trtllm-serve (or any OpenAI-compatible server): streamed chat, token counts from `usage`
  trtllm-oci bench --transport openai --url http://localhost:8000 --model <served name> --api chat \\
      --concurrency 1,4,16 --input-len 128 --output-len 128 --tokenizer /models/llama3-8b --out results/

  # a deployment running trtllm-serve (MODEL_DEPLOY_PREDICT_ENDPOINT=/v1/chat/completions), signed
  trtllm-oci bench --transport oci --api chat --model <served name> \\
      --url https://modeldeployment.<region>.oci.customer-oci.com/<md_ocid> --out results/

writes: summary.csv/.parquet (one row per load point x repeat), requests.csv/.parquet (one row
per request) and summary.md after every load point, then throughput_vs_latency.png, pareto.png.
Columns: docs/benchmark-columns.md.
"""


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of integers, e.g. 1,4,16"
        ) from exc
    if any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: every value must be >= 1")
    return values


def _float_list(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of numbers, e.g. 0.5,1,inf"
        ) from exc
    if any(not v > 0 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: every rate must be > 0 (inf = all at once)")
    return values


def _length_fields(text: str) -> tuple[str, ...]:
    from trtllm_oci.bench.openai_api import parse_length_fields

    try:
        return parse_length_fields(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _key_value(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"{text!r} must be NAME=JSON_VALUE, e.g. top_p=0.9")
    name, raw = text.split("=", 1)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return name.strip(), value


def add_bench_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "bench",
        help="benchmark a TensorRT-LLM endpoint (TTFT, TPOT, ITL, throughput, goodput, cost)",
        description=(
            "Send warm-up requests, then closed-loop concurrency sweeps and/or open-loop Poisson/gamma "
            "request rates to a Triton TensorRT-LLM ensemble or an OpenAI-compatible server (trtllm-serve), "
            "timing every streamed chunk with perf_counter_ns. Prompts have an exact token length with "
            "--tokenizer; output length is fixed with min_tokens (min_length on older containers) when the "
            "model declares it, or min_tokens/ignore_eos on OpenAI routes. Token counts come from the server "
            "(return_num_*_tokens, or the OpenAI answer's usage) when it sends them, else the tokenizer "
            "(flagged client_token_counts)."
        ),
        epilog=_EPILOG,
        formatter_class=lambda prog: argparse.RawDescriptionHelpFormatter(prog, max_help_position=34),
    )
    target = parser.add_argument_group("endpoint")
    target.add_argument(
        "--url",
        required=True,
        help="http(s)://host:8000 for http/http-generate/openai, host:8001 for grpc, the deployment URL for oci",
    )
    target.add_argument(
        "--model",
        default=None,
        help="Triton model name (default: ensemble); with OpenAI bodies the served model name "
        "(--transport openai defaults to the only model /v1/models lists)",
    )
    target.add_argument(
        "--transport",
        choices=("http", "http-generate", "grpc", "oci", "openai"),
        default="http",
        help="http = SSE /generate_stream; http-generate = non-streaming /generate (TTFT = E2E); "
        "grpc = streaming ModelStreamInfer; oci = signed /predictWithResponseStream; "
        "openai = /v1/chat/completions or /v1/completions (see --api) (default: http)",
    )
    target.add_argument(
        "--api",
        choices=("chat", "completions"),
        default=None,
        help="OpenAI route and body: chat (/v1/chat/completions, the default for --transport openai) or "
        "completions (/v1/completions); with --transport oci, OpenAI bodies for a deployment running "
        "trtllm-serve instead of the ensemble's",
    )
    target.add_argument(
        "--no-stream",
        action="store_true",
        help="for --transport openai: non-streaming requests (one JSON answer; TTFT = E2E)",
    )
    target.add_argument(
        "--openai-length-fields",
        type=_length_fields,
        default=("min_tokens", "ignore_eos"),
        metavar="FIELDS",
        help="non-OpenAI extensions that force a fixed output length on OpenAI routes (trtllm-serve and "
        "vLLM take both): comma-separated subset of min_tokens,ignore_eos, or 'none' for a strict "
        "OpenAI endpoint (default: min_tokens,ignore_eos)",
    )
    target.add_argument(
        "--request-timeout-s",
        type=float,
        default=600.0,
        help="seconds one request may take to answer completely; it is then recorded as an error, and the "
        "run stops once a whole round of requests timed out in a row (OCI's own limit is 60 s per HTTP "
        "call) (default: 600)",
    )
    target.add_argument(
        "--oci-config",
        type=Path,
        default=None,
        help="OCI config file for --transport oci (default: ~/.oci/config)",
    )
    target.add_argument("--oci-profile", default="DEFAULT", help="profile in --oci-config (default: DEFAULT)")
    target.add_argument(
        "--min-tokens-field",
        choices=("min_tokens", "min_length", "none"),
        default="min_tokens",
        help="for oci, where the model config cannot be read: the ensemble's minimum-length input "
        "(min_length before tensorrtllm_backend 0.20) (default: min_tokens)",
    )
    target.add_argument(
        "--no-server-token-counts",
        action="store_true",
        help="for oci: do not ask for return_num_input/output_tokens (older ensembles lack them)",
    )
    target.add_argument(
        "--extra-input",
        type=_key_value,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra request field sent with every request (JSON value), repeatable",
    )

    load = parser.add_argument_group("load")
    load.add_argument(
        "--concurrency",
        type=_int_list,
        default=[1],
        help="closed-loop concurrency sweep, comma-separated; '' for none (default: 1)",
    )
    load.add_argument(
        "--request-rate",
        type=_float_list,
        default=[],
        help="open-loop request rates in req/s, comma-separated (inf = all at once)",
    )
    load.add_argument(
        "--burstiness",
        type=float,
        default=1.0,
        help="gamma shape of arrival gaps: 1 = Poisson, <1 burstier, inf = constant (default: 1)",
    )
    load.add_argument(
        "--max-concurrency",
        type=int,
        default=None,
        help="cap on in-flight requests for --request-rate points (waits count as client queue time)",
    )
    load.add_argument(
        "--num-requests",
        type=int,
        default=None,
        help="measured requests per load point (default: max(100, 10 x concurrency); 200 per rate)",
    )
    load.add_argument(
        "--warmup",
        type=int,
        default=None,
        help="warm-up requests per I/O pair, not measured (default: the largest concurrency)",
    )
    load.add_argument("--repeats", type=int, default=1, help="repeats of every load point (default: 1)")
    load.add_argument("--seed", type=int, default=0, help="base seed; repeat r uses seed + r (default: 0)")

    data = parser.add_argument_group("requests")
    data.add_argument("--input-len", type=int, default=128, help="prompt length in tokens (default: 128)")
    data.add_argument(
        "--output-len",
        type=int,
        default=128,
        help="output length in tokens, forced with min_tokens = max_tokens (default: 128)",
    )
    data.add_argument(
        "--io-pairs",
        default=None,
        help="several INPUT/OUTPUT pairs, e.g. 128/128,128/2048,2048/128,2048/2048,1000/1000 "
        "(overrides --input-len/--output-len)",
    )
    data.add_argument(
        "--dataset",
        nargs="+",
        default=["random"],
        metavar=("KIND", "FILE"),
        help="'random' (default) or 'sharegpt FILE' (ShareGPT JSON; natural reply lengths unless "
        "--output-len is given explicitly with --fixed-output)",
    )
    data.add_argument(
        "--fixed-output",
        action="store_true",
        help="with sharegpt: force --output-len instead of the reference reply length",
    )
    data.add_argument(
        "--tokenizer",
        type=Path,
        default=None,
        help="local HF tokenizer dir of the served model: exact-length prompts and fallback token counts",
    )

    slo = parser.add_argument_group("SLO, roofline and cost")
    slo.add_argument("--slo-ttft-ms", type=float, default=None, help="TTFT objective for goodput, ms")
    slo.add_argument("--slo-tpot-ms", type=float, default=None, help="TPOT objective for goodput, ms")
    slo.add_argument(
        "--shape",
        default="",
        help="OCI shape name from the catalog: fills --gpu-count, --gpu-bw-gbs, --usd-per-hour",
    )
    slo.add_argument("--gpu-count", type=int, default=None, help="GPUs serving the model (TP x PP)")
    slo.add_argument("--gpu-bw-gbs", type=float, default=None, help="memory bandwidth per GPU, GB/s")
    slo.add_argument("--usd-per-hour", type=float, default=None, help="price of the whole shape, USD/hour")
    slo.add_argument(
        "--weight-bytes", type=float, default=None, help="model weight bytes read per decode step"
    )
    slo.add_argument(
        "--kv-bytes-per-token", type=float, default=None, help="KV-cache bytes per context token"
    )

    out = parser.add_argument_group("output")
    out.add_argument(
        "--out", type=Path, required=True, help="directory for summary/requests tables and plots"
    )
    out.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    out.add_argument("--quiet", action="store_true", help="no per-load-point progress lines")
    parser.set_defaults(handler=run_bench_command)
    return parser


def _oci_signer(config_path: Path | None, profile: str) -> Any:
    import oci

    path = str(config_path.expanduser()) if config_path else oci.config.DEFAULT_LOCATION
    try:
        config = oci.config.from_file(path, profile)
    except (
        oci.exceptions.ConfigFileNotFound,
        oci.exceptions.ProfileNotFound,
        oci.exceptions.InvalidConfig,
    ) as exc:
        raise BenchInputError(f"cannot read OCI config {path} profile {profile}: {exc}") from exc
    return oci.signer.Signer.from_config(config)


def _cost_inputs(args: argparse.Namespace):
    from trtllm_oci.bench.metrics import CostInputs

    gpu_count, bw, price = args.gpu_count, args.gpu_bw_gbs, args.usd_per_hour
    if args.shape:
        from trtllm_oci.shapes import get_shape

        shape = get_shape(args.shape)
        gpu_count = gpu_count if gpu_count is not None else shape.gpu_count
        bw = bw if bw is not None else shape.gpu.memory_bandwidth_gbs
        price = price if price is not None else shape.price_per_hour_usd
    return CostInputs(
        gpu_count=gpu_count,
        gpu_bw_gbs=bw,
        usd_per_hour=price,
        weight_bytes=args.weight_bytes,
        kv_bytes_per_token=args.kv_bytes_per_token,
    )


def config_from_args(args: argparse.Namespace):
    from trtllm_oci.bench.metrics import Slo
    from trtllm_oci.bench.payload import ModelCapabilities
    from trtllm_oci.bench.prompts import parse_io_pairs
    from trtllm_oci.bench.runner import BenchmarkConfig
    from trtllm_oci.bench.tokens import load_tokenizer

    kind, *rest = args.dataset
    if kind not in ("random", "sharegpt") or (kind == "sharegpt") != (len(rest) == 1) or len(rest) > 1:
        raise BenchInputError(f"--dataset {' '.join(args.dataset)!r}: use 'random' or 'sharegpt FILE'")
    if rest and not Path(rest[0]).is_file():
        raise BenchInputError(f"--dataset sharegpt {rest[0]}: file not found")
    if args.io_pairs:
        io_pairs = parse_io_pairs(args.io_pairs)
    elif kind == "sharegpt" and not args.fixed_output:
        io_pairs = []
    else:
        if args.input_len < 1 or args.output_len < 1:
            raise BenchInputError(
                f"--input-len {args.input_len} / --output-len {args.output_len} must be >= 1"
            )
        io_pairs = [(args.input_len, args.output_len)]
    if args.max_concurrency is not None and args.max_concurrency < 1:
        raise BenchInputError(f"--max-concurrency {args.max_concurrency} must be >= 1")
    signer = caps = None
    if args.transport == "oci":
        signer = _oci_signer(args.oci_config, args.oci_profile)
        if args.api is None:
            caps = ModelCapabilities.assumed_ensemble(args.min_tokens_field, not args.no_server_token_counts)
    return BenchmarkConfig(
        url=args.url,
        model=args.model,
        transport=args.transport,
        concurrencies=args.concurrency,
        request_rates=args.request_rate,
        burstiness=args.burstiness,
        max_concurrency=args.max_concurrency,
        io_pairs=io_pairs,
        num_requests=args.num_requests,
        warmup=args.warmup,
        repeats=args.repeats,
        seed=args.seed,
        tokenizer=load_tokenizer(args.tokenizer) if args.tokenizer else None,
        dataset=kind,
        dataset_path=rest[0] if rest else None,
        slo=Slo(args.slo_ttft_ms, args.slo_tpot_ms),
        cost=_cost_inputs(args),
        shape=args.shape,
        extra_inputs=dict(args.extra_input),
        request_timeout_s=args.request_timeout_s,
        signer=signer,
        caps=caps,
        api=args.api,
        streaming=not args.no_stream,
        openai_length_fields=args.openai_length_fields,
    )


def _progress(row: dict[str, Any]) -> None:
    where = (
        f"c={row['concurrency']:g}" if row["load_mode"] == "concurrency" else f"rate={row['target_rps']:g}"
    )
    print(
        f"[bench] {row['transport']} {where} rep={row['repeat']}: ok={row['n_ok']} err={row['n_err']} "
        f"req/s={row['req_s']:.2f} out tok/s={row['out_tok_s']:.1f} TTFT p50={row['ttft_ms_p50']:.1f} ms "
        f"TPOT p50={row['tpot_ms_p50']:.2f} ms{(' flags=' + row['flags']) if row['flags'] else ''}",
        file=sys.stderr,
        flush=True,
    )


def run_bench_command(args: argparse.Namespace) -> int:
    from trtllm_oci.bench.results import ResultWriter, ensure_writable_dir
    from trtllm_oci.bench.runner import run_benchmark

    out = ensure_writable_dir(args.out, "--out")
    config = config_from_args(args)
    writer = ResultWriter(out)
    result = run_benchmark(config, progress=None if args.quiet else _progress, on_point=writer.write_tables)
    if result.summary.empty:
        print(f"trtllm-oci bench: error: {redact_credentials(result.stopped or 'no load point was measured')}",
              file=sys.stderr)
        return 1
    paths = writer.write_tables(result)
    if not args.no_plots:
        writer.write_plots(result)
    print(
        f"wrote {paths['summary_csv']} ({len(result.summary)} load points, {len(result.requests)} requests)"
    )
    if result.stopped:
        print(f"trtllm-oci bench: error: {redact_credentials(result.stopped)}", file=sys.stderr)
        return 1
    failed = result.summary["n_ok"].sum() == 0
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    """Standalone entry point (`python -m trtllm_oci.bench.cli ...`); the main CLI wires add_bench_parser."""
    parser = argparse.ArgumentParser(prog="trtllm-oci")
    add_bench_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["bench", *(sys.argv[1:] if argv is None else argv)])
    try:
        return args.handler(args)
    except (TrtllmOciError, ValueError) as exc:
        print(f"trtllm-oci bench: error: {redact_credentials(str(exc))}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
