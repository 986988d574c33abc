"""`trtllm-oci serve R`: serve an assembled repository (Triton, or an OpenAI server) until interrupted."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from trtllm_oci.cli_commands.arg_types import int_at_least, positive_number


def add_serve_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="serve an assembled repository (Triton, or the OpenAI server of a pytorch release) until interrupted",
        description="Serve a repository the way it was made for, until Ctrl-C or SIGTERM. A Triton repository "
        "(from `trtllm-oci repo assemble`, or a release of the tensorrt/reference backend): tritonserver on its "
        "model_repository/, ready at /v2/health/ready; a model that fails to load is reported in plain words. "
        "A pytorch release with the OpenAI frontend (its serving.json says so): trtllm-serve where TensorRT-LLM "
        "is installed, else the CPU OpenAI smoke server (not TensorRT-LLM), on --http-port with /v1/... routes; "
        "it says which it started. A port already in use is reported before the server starts; if tritonserver "
        "exits while serving, serve exits with status 2 within a second, naming its exit status and first error.",
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
    from trtllm_oci.backends.base import read_serving_config

    config = read_serving_config(root) if root.is_dir() else None
    if config is not None and config.frontend == "openai":
        return _serve_openai(config, args)
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


def _serve_openai(config, args: argparse.Namespace) -> int:
    """An OpenAI-frontend release: trtllm-serve where TensorRT-LLM is installed, else the CPU OpenAI smoke server."""
    from trtllm_oci.serving.local import check_ports_free
    from trtllm_oci.serving.openai_server import OpenAIServerSpec, serve_openai

    check_ports_free({"HTTP": args.http_port})
    extra = ("--extra_llm_api_options", str(config.options_file)) if config.options_file else ()
    spec = OpenAIServerSpec(checkpoint_dir=config.checkpoint_dir, served_model_name=config.served_model,
                            port=args.http_port, trtllm_serve_args=extra, startup_timeout_s=args.ready_timeout)
    sink = None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        with serve_openai(spec, on_log=sink) as server:
            print(f"serving {config.served_model!r} from {config.checkpoint_dir} with {server.choice.label} "
                  f"({server.choice.reason}): {server.base_url}/v1  (Ctrl-C to stop)", flush=True)
            while not stop.wait(0.5):
                server.check_alive()
    except KeyboardInterrupt:
        pass
    print("stopped", flush=True)
    return 0
