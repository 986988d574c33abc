"""`trtllm-oci demo`: the whole release on this machine, no GPU and no network needed."""

from __future__ import annotations

import argparse

HELP = """\
Creates a tiny Llama-architecture model (random weights, tokenizer trained on a small text) unless --model
is given, runs the `release` flow on the local target with Prefect's embedded API, serves the release on this
machine, benchmarks it, and writes summary.csv, a PNG plot and the served repository (--out/repository) to
--out. Every process it starts is stopped before it returns; a second run reuses the cached artifact.
--backend pytorch (default): TensorRT-LLM's LLM-API path; the checkpoint is served by the CPU OpenAI smoke
server (transformers on CPU with trtllm-serve's routes), NOT TensorRT-LLM. --backend tensorrt: the engine
path's Triton ensemble, served by a local Triton (CPU) with the CPU reference backend in place of engines,
NOT TensorRT-LLM either. `trtllm-oci serve --out/repository` serves the result again. The embedded API keeps
its state in $TRTLLM_OCI_HOME/prefect, not in ~/.prefect, unless PREFECT_API_URL names a server (or
PREFECT_HOME a home) of your own."""


def add_demo_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the whole pipeline locally on a tiny model (no GPU)", description=HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="a Hugging Face Llama-family model directory (default: the tiny demo model)")
    p.add_argument("--out", default="out/demo", help="output directory (default %(default)s)")
    p.add_argument("--backend", choices=["pytorch", "tensorrt"], default="pytorch",
                   help="pytorch (default): the LLM-API path on the CPU OpenAI smoke server; tensorrt: the Triton "
                        "ensemble of the engine path with the CPU reference backend in place of engines")
    p.add_argument("--quant", choices=["none", "fp8"], default="none",
                   help="pytorch backend: fp8 quantizes the model with ModelOpt on this CPU first (default none)")
    p.set_defaults(handler=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    # An ephemeral Prefect API on 2 cores can take 20-30 s to start with a fresh database.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # Its telemetry write races the first flow's writes on the ephemeral SQLite database ("database is locked").
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from trtllm_oci.cli_commands.prefect_env import use_own_prefect_state
    from trtllm_oci.release.demo import demo_calibration_dir, demo_model_dir, demo_spec, print_summary

    use_own_prefect_state()
    from trtllm_oci.settings import current_settings

    out = Path(args.out).expanduser().resolve()
    model_dir = Path(args.model).expanduser().resolve() if args.model else demo_model_dir(current_settings())
    settings = current_settings()
    calibration = demo_calibration_dir(settings) if args.quant != "none" else None
    if args.quant != "none" and args.backend != "pytorch":
        from trtllm_oci.errors import InputError

        raise InputError("--quant applies to --backend pytorch (ModelOpt makes the checkpoint it serves)")
    spec = demo_spec(model_dir, args.backend, args.quant, calibration)
    print(f"release {spec.release_id}: model {model_dir} → {out}", flush=True)

    from trtllm_oci.flows.release import release

    report = release(spec, out_dir=str(out))
    print_summary(report, out)
    return 0
