"""`trtllm-oci`: the command line. Each subcommand lives in its own module and imports its heavy
dependencies only when it runs, so `trtllm-oci plan` answers in well under a second."""

from __future__ import annotations

import argparse
import importlib
import sys

from trtllm_oci.errors import TrtllmOciError

# (module, function) pairs that register one subcommand each on the subparsers object.
SUBCOMMANDS: list[tuple[str, str]] = [
    ("trtllm_oci.cli_commands.plan", "add_plan_parser"),
    ("trtllm_oci.cli_commands.build", "add_build_parser"),
    ("trtllm_oci.repo.cli", "add_repo_parser"),
    ("trtllm_oci.cli_commands.serve", "add_serve_parser"),
    ("trtllm_oci.cli_commands.deploy", "add_deploy_parser"),
    ("trtllm_oci.bench.cli", "add_bench_parser"),
    ("trtllm_oci.cli_commands.demo", "add_demo_parser"),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trtllm-oci",
        description=(
            "Take a Hugging Face LLM to a benchmarked TensorRT-LLM endpoint: plan capacity, build engines, "
            "assemble the Triton model repository, push the serving image to OCIR, deploy on OCI Data Science, "
            "and benchmark. Run `trtllm-oci demo` for the whole pipeline on this machine (no GPU needed)."
        ),
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module, function in SUBCOMMANDS:
        getattr(importlib.import_module(module), function)(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except TrtllmOciError as exc:
        print(f"trtllm-oci {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"trtllm-oci {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
