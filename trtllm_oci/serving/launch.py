"""The tritonserver command line for a TensorRT-LLM model repository.

Mirrors ``get_cmd`` of tensorrtllm_backend's launcher
(triton-inference-server/tensorrtllm_backend:scripts/launch_triton_server.py@v0.19.0, unchanged
in NVIDIA/TensorRT-LLM:triton_backend/scripts/launch_triton_server.py except for
``--exit_timeout`` and ``--trtllm_llmapi_launch``), so an image can run the argv directly
instead of shipping and shelling out to the script.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from trtllm_oci.errors import InputError

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
        raise InputError(
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
        raise InputError(f"world_size={world_size!r} must be an integer >= 1 (tp_size × pp_size of the engine)")
    ports = {"http_port": http_port, "grpc_port": grpc_port, "metrics_port": metrics_port}
    for name, port in ports.items():
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise InputError(f"{name}={port!r} must be an integer port in 1..65535")
    if len(set(ports.values())) != len(ports):
        raise InputError(f"ports must differ, got {ports}; give each endpoint its own port")
    if isinstance(model_names, str):
        raise InputError(
            f"tensorrt_llm_model_names={model_names!r} must be a sequence of names, e.g. ('tensorrt_llm',)"
        )
    if not model_names:
        raise InputError("tensorrt_llm_model_names is empty; ranks > 0 must load at least one TensorRT-LLM model")
    for name in model_names:
        if not name or any(c in name for c in ", \t\n/"):
            raise InputError(
                f"tensorrt_llm model name {name!r} is not a Triton model directory name "
                "(non-empty, no commas, spaces or slashes)"
            )
    if exit_timeout_s is not None and (not isinstance(exit_timeout_s, int) or exit_timeout_s < 0):
        raise InputError(f"exit_timeout_s={exit_timeout_s!r} must be a non-negative integer or None")
