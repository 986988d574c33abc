"""`trtllm-oci serve R`: serve an assembled model repository with Triton until interrupted."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from trtllm_oci.cli_commands.arg_types import int_at_least, positive_number


def add_serve_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="serve an assembled repository with Triton until interrupted",
        description="Start Triton on the repository written by `trtllm-oci repo assemble` (its model_repository/ "
        "directory), wait until /v2/health/ready, stream its log, and stop cleanly on Ctrl-C or SIGTERM. "
        "If a model fails to load, the first load error is reported in plain words. A port already in use is "
        "reported before Triton starts; if tritonserver exits while serving, serve exits with status 2 within a "
        "second, naming its exit status and first error.",
    )
    p.add_argument("repository", help="repository directory (the --out of `repo assemble`) or its model_repository/")
    p.add_argument("--http-port", type=int_at_least(1, 65535), default=8000)
    p.add_argument("--grpc-port", type=int_at_least(1, 65535), default=8001)
    p.add_argument("--metrics-port", type=int_at_least(1, 65535), default=8002)
    p.add_argument("--ready-timeout", type=positive_number, default=600.0,
                   help="seconds to wait for readiness (default %(default)s)")
    p.add_argument("--quiet", action="store_true", help="do not print Triton's log lines")
    p.set_defaults(handler=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    from pathlib import Path

    from trtllm_oci.errors import InputError
    from trtllm_oci.repo.layout import MODEL_REPOSITORY_DIR
    from trtllm_oci.serving.local import LocalTriton

    root = Path(args.repository)
    model_repository = root / MODEL_REPOSITORY_DIR if (root / MODEL_REPOSITORY_DIR).is_dir() else root
    if not model_repository.is_dir():
        raise InputError(f"{root} is not a directory; pass the --out directory of `trtllm-oci repo assemble`")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    sink = None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    server = LocalTriton(model_repository, http_port=args.http_port, grpc_port=args.grpc_port,
                         metrics_port=args.metrics_port, ready_timeout_s=args.ready_timeout, log_sink=sink)
    try:
        with server:
            print(f"serving {model_repository}: HTTP {server.http_url}  gRPC {server.grpc_url}  "
                  f"metrics {server.metrics_url}  (Ctrl-C to stop)", flush=True)
            while not stop.wait(0.5):
                if server.exit_code is not None:
                    raise server.exited_error()
    except KeyboardInterrupt:
        pass
    print("stopped", flush=True)
    return 0
