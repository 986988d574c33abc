"""Start tritonserver on a TensorRT-LLM model repository, in the foreground (the serving image's launcher).

Copied into the serving image as /opt/trtllm_oci/launch.py, and imported by trtllm_oci.serving.launch: one
source for the argv on a workstation and in a Model Deployment. Standard library only (it runs in NVIDIA's image).

`launch_argv` mirrors ``get_cmd`` of tensorrtllm_backend's launcher
(triton-inference-server/tensorrtllm_backend:scripts/launch_triton_server.py@v0.19.0, unchanged
in NVIDIA/TensorRT-LLM:triton_backend/scripts/launch_triton_server.py except for
``--exit_timeout`` and ``--trtllm_llmapi_launch``). Unlike that script, which starts mpirun with
``subprocess.Popen`` and exits, ``main`` replaces itself with mpirun (``os.execvp``): the container's main process
is the server, so the container lives as long as Triton does and signals reach it. The Model Deployment ``cmd``
is then a short call of this file (a few hundred bytes for any world size) instead of the ~400 bytes per rank
the expanded argv takes, which breaks the service's 2048-byte limit at world size 8.

``--link NAME=TARGET`` builds a writable serving root of symlinks before the start: a model by reference is
mounted as its Object Storage objects (engines under the engine cache's prefix, configs and tokenizer under
the release's), and the repository's configs name one root.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

DEFAULT_TRITONSERVER = "/opt/tritonserver/bin/tritonserver"


def launch_argv(
    repo_dir: str | Path,
    world_size: int,
    http_port: int = 8000,
    grpc_port: int = 8001,
    metrics_port: int = 8002,
    tritonserver: str | Path = DEFAULT_TRITONSERVER,
    tensorrt_llm_model_names: Sequence[str] = ("tensorrt_llm",),
    log_file: str | Path | None = None,
    use_mpi: bool | None = None,
    oversubscribe: bool = False,
    exit_timeout_s: int | None = None,
    extra_args: Sequence[str] = (),
) -> list[str]:
    """Return the argv that starts Triton on ``world_size`` ranks (world_size = tp × pp).

    ``use_mpi=None`` means: plain ``tritonserver`` for world_size 1, ``mpirun`` otherwise;
    ``use_mpi=True`` forces the mpirun form for world_size 1 too (upstream's default).
    With mpirun, rank r gets its own ``-n 1`` app context separated by ``:``; ranks > 0 load only
    the TensorRT-LLM model(s) in explicit mode so the python models run once, on rank 0.
    ``log_file`` adds ``--log-verbose=3 --log-file=...`` on rank 0 (upstream ``--log``).
    ``extra_args`` are appended to every rank (e.g. ``--backend-directory=...``).
    """
    _validate(world_size, http_port, grpc_port, metrics_port, tensorrt_llm_model_names, exit_timeout_s)
    if use_mpi is None:
        use_mpi = world_size > 1
    if not use_mpi and world_size != 1:
        raise ValueError(
            f"world_size={world_size} needs mpirun (one tritonserver per rank); "
            "pass use_mpi=True or None, or world_size=1"
        )
    ports = [f"--grpc-port={grpc_port}", f"--http-port={http_port}", f"--metrics-port={metrics_port}"]
    argv: list[str] = ["mpirun", "--allow-run-as-root"] if use_mpi else []
    if use_mpi and oversubscribe:
        argv.append("--oversubscribe")
    for rank in range(world_size):
        if use_mpi:
            argv += ["-n", "1"]
        argv += [str(tritonserver), f"--model-repository={repo_dir}"]
        if exit_timeout_s is not None:
            argv.append(f"--exit-timeout-secs={exit_timeout_s}")
        argv += ports
        if log_file is not None and rank == 0:
            argv += ["--log-verbose=3", f"--log-file={log_file}"]
        if rank != 0:
            argv.append("--model-control-mode=explicit")
            argv += [f"--load-model={name}" for name in tensorrt_llm_model_names]
        # Upstream adds the port flags a second time after the multi-model flags; kept so the
        # argv stays byte-identical to the script's and diffs against it stay empty.
        argv += ports
        argv += [
            "--disable-auto-complete-config",
            f"--backend-config=python,shm-region-prefix-name=prefix{rank}_",
        ]
        argv += list(extra_args)
        if use_mpi:
            # Upstream ends every app context, the last one included, with ':'; OpenMPI accepts it.
            argv.append(":")
    return argv


def _validate(
    world_size: int,
    http_port: int,
    grpc_port: int,
    metrics_port: int,
    model_names: Sequence[str],
    exit_timeout_s: int | None,
) -> None:
    if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
        raise ValueError(f"world_size={world_size!r} must be an integer >= 1 (tp_size × pp_size of the engine)")
    ports = {"http_port": http_port, "grpc_port": grpc_port, "metrics_port": metrics_port}
    for name, port in ports.items():
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise ValueError(f"{name}={port!r} must be an integer port in 1..65535")
    if len(set(ports.values())) != len(ports):
        raise ValueError(f"ports must differ, got {ports}; give each endpoint its own port")
    if isinstance(model_names, str):
        raise ValueError(
            f"tensorrt_llm_model_names={model_names!r} must be a sequence of names, e.g. ('tensorrt_llm',)"
        )
    if not model_names:
        raise ValueError("tensorrt_llm_model_names is empty; ranks > 0 must load at least one TensorRT-LLM model")
    for name in model_names:
        if not name or any(c in name for c in ", \t\n/"):
            raise ValueError(
                f"tensorrt_llm model name {name!r} is not a Triton model directory name "
                "(non-empty, no commas, spaces or slashes)"
            )
    if exit_timeout_s is not None and (not isinstance(exit_timeout_s, int) or exit_timeout_s < 0):
        raise ValueError(f"exit_timeout_s={exit_timeout_s!r} must be a non-negative integer or None")


def build_serving_root(root: str | Path, links: Sequence[str]) -> None:
    """Create `root` with one symlink per NAME=TARGET; every TARGET must exist (a missing one is named).

    NAME may be a relative path (`tensorrt_llm/1/model.py`): its directories are created in the root, so one model
    directory can join files of the read-only artifact mount with files the image ships."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for item in links:
        name, sep, target = item.partition("=")
        parts = name.split("/")
        if not sep or not name or any(p in ("", ".", "..") for p in parts) or not target.startswith("/"):
            raise ValueError(f"--link {item!r} must be NAME=/absolute/target with NAME a plain relative path")
        if not Path(target).exists():
            raise FileNotFoundError(f"--link {name}: {target} does not exist in this container; is the model "
                                    "artifact mounted where the deployment says (/opt/ds/model/deployed_model), "
                                    "and does the image ship it?")
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink() or path.exists():
            if path.is_symlink() and os.readlink(path) == target:
                continue
            raise FileExistsError(f"--link {name}: {path} already exists and points elsewhere")
        path.symlink_to(target)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """`launch.py --model-repository R ...` starts Triton; `launch.py [--serving-root S --link N=T ...] -- CMD ...`
    builds the serving root and then runs CMD instead (trtllm-serve on a checkpoint by reference)."""
    argv = list(argv)
    command: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, command = argv[:cut], argv[cut + 1:]
        if not command:
            raise SystemExit("launch.py: nothing to run after --")
    parser = argparse.ArgumentParser(prog="launch.py", description="Run tritonserver (or the command after --) "
                                                                   "in the foreground.")
    parser.add_argument("--model-repository", required=not command)
    parser.add_argument("--world-size", type=int, default=1)
    parser.add_argument("--http-port", type=int, default=8000)
    parser.add_argument("--grpc-port", type=int, default=8001)
    parser.add_argument("--metrics-port", type=int, default=8002)
    parser.add_argument("--tritonserver", default=DEFAULT_TRITONSERVER)
    parser.add_argument("--tensorrt-llm-model", action="append", dest="models", default=None)
    parser.add_argument("--log-file", default=None)
    parser.add_argument("--exit-timeout-secs", type=int, default=None)
    parser.add_argument("--oversubscribe", action="store_true")
    parser.add_argument("--serving-root", default=None, help="directory to build from --link entries")
    parser.add_argument("--link", action="append", default=[], metavar="NAME=TARGET")
    parser.add_argument("--print-argv", action="store_true", help="print the server argv as JSON and exit")
    args = parser.parse_args(argv)
    if command and args.model_repository:
        parser.error("--model-repository starts Triton; give it or a command after --, not both")
    args.command = command
    return args


def server_argv(args: argparse.Namespace) -> list[str]:
    if getattr(args, "command", None):
        return list(args.command)
    return launch_argv(
        args.model_repository,
        args.world_size,
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        metrics_port=args.metrics_port,
        tritonserver=args.tritonserver,
        tensorrt_llm_model_names=tuple(args.models or ("tensorrt_llm",)),
        log_file=args.log_file,
        oversubscribe=args.oversubscribe,
        exit_timeout_s=args.exit_timeout_secs,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.link and not args.serving_root:
        print("launch.py: --link needs --serving-root", file=sys.stderr)
        return 2
    try:
        command = server_argv(args)
        if args.print_argv:
            print(json.dumps(command))
            return 0
        if args.serving_root:
            build_serving_root(args.serving_root, args.link)
    except (ValueError, OSError) as exc:
        print(f"launch.py: {exc}", file=sys.stderr)
        return 2
    sys.stdout.flush()
    os.execvp(command[0], command)  # never returns: the server is now this process
    return 127


if __name__ == "__main__":
    sys.exit(main())
