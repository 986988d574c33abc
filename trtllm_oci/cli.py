"""`trtllm-oci`: the command line. Each subcommand lives in its own module and imports its heavy
dependencies only when it runs. Only the subcommand being run registers its flags (which may read the
version table or the quantization enum); the others appear by name and one-line help, so `--help` imports
nothing but argparse and `plan` answers in well under a second."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import NamedTuple


class Subcommand(NamedTuple):
    name: str
    module: str
    function: str  # registers the subcommand's parser on the subparsers object
    help: str  # the same one-line help the module's parser gives (tests/foundation compare them)


SUBCOMMANDS: list[Subcommand] = [
    Subcommand("plan", "trtllm_oci.cli_commands.plan", "add_plan_parser",
               "capacity planner: will a model fit a shape"),
    Subcommand("build", "trtllm_oci.cli_commands.build", "add_build_parser",
               "build TensorRT-LLM engines or prepare the checkpoint (--dry-run: the plan)"),
    Subcommand("repo", "trtllm_oci.repo.cli", "add_repo_parser", "Triton inflight_batcher_llm model repository"),
    Subcommand("serve", "trtllm_oci.cli_commands.serve", "add_serve_parser",
               "serve an assembled repository (Triton, or the OpenAI server of a pytorch release) until interrupted"),
    Subcommand("deploy", "trtllm_oci.cli_commands.deploy", "add_deploy_parser",
               "deploy a release on OCI Data Science (BYOC), or print the requests with --dry-run"),
    Subcommand("bench", "trtllm_oci.bench.cli", "add_bench_parser",
               "benchmark a TensorRT-LLM endpoint (TTFT, TPOT, ITL, throughput, goodput, cost)"),
    Subcommand("demo", "trtllm_oci.cli_commands.demo", "add_demo_parser",
               "run the whole pipeline locally on a tiny model (no GPU)"),
]

# What a process killed by SIGPIPE reports (128 + 13), as `yes | head -1` does for `yes`.
EXIT_BROKEN_PIPE = 141


def _chosen(argv: list[str]) -> str | None:
    """The subcommand named on the command line (the top-level parser has no options taking a value)."""
    names = {s.name for s in SUBCOMMANDS}
    for arg in argv:
        if not arg.startswith("-"):
            return arg if arg in names else None
    return None


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; with `argv`, only the subcommand it names is registered in full (None: all of them)."""
    parser = argparse.ArgumentParser(
        prog="trtllm-oci",
        description=(
            "Take a Hugging Face LLM to a benchmarked TensorRT-LLM endpoint: plan capacity, build engines, "
            "assemble the Triton model repository, push the serving image to OCIR, deploy on OCI Data Science, "
            "and benchmark. Run `trtllm-oci demo` for the whole pipeline on this machine (no GPU needed)."
        ),
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chosen = _chosen(argv) if argv is not None else None
    for command in SUBCOMMANDS:
        if argv is None or command.name == chosen:
            getattr(importlib.import_module(command.module), command.function)(sub)
        else:
            sub.add_parser(command.name, help=command.help)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    from trtllm_oci.errors import TrtllmOciError, redact_credentials
    from trtllm_oci.log_redaction import install_redaction

    # Domain warnings (Hub retries quoting the request URL) print through logging's last-resort handler here,
    # or Prefect's console handler once a subcommand imports Prefect (tasks/common.py installs it there again).
    install_redaction()

    try:
        return int(args.handler(args) or 0)
    except TrtllmOciError as exc:
        print(f"trtllm-oci {args.command}: error: {redact_credentials(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"trtllm-oci {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`trtllm-oci plan ... | head`): stop quietly. Python flushes stdout again at
        # exit, so point it at /dev/null first (docs.python.org/3/library/signal.html, "Note on SIGPIPE").
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


if __name__ == "__main__":
    sys.exit(main())
