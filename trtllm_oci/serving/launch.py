"""The tritonserver command line for a TensorRT-LLM model repository, and the short command that runs it.

The argv itself is built by the serving image's launcher, `trtllm_oci/image/serving_context/trtllm_oci_launch.py`
(one source for local serving and the image). `deploy_cmd` is what a Model Deployment runs: a call of that
launcher inside the image, a few hundred bytes for any world size (Data Science's cmd + entrypoint must stay under
2048 bytes: OcirModelDeploymentEnvironmentConfigurationDetails.cmd, oci 2.189.0).
"""

from __future__ import annotations

from collections.abc import Sequence

from trtllm_oci.image.serving_context.trtllm_oci_launch import (
    DEFAULT_TRITONSERVER,
    build_serving_root,
    launch_argv,
    main,
    parse_args,
    server_argv,
)

# Where the Dockerfile puts the launcher (image/serving_context/Dockerfile.serving).
IMAGE_LAUNCHER = "/opt/trtllm_oci/launch.py"
IMAGE_PYTHON = "python3"

__all__ = ["DEFAULT_TRITONSERVER", "IMAGE_LAUNCHER", "build_serving_root", "deploy_cmd", "launch_argv", "linked_cmd",
           "main", "parse_args", "server_argv"]


def deploy_cmd(
    repo_dir: str,
    world_size: int,
    *,
    http_port: int = 8000,
    grpc_port: int = 8001,
    metrics_port: int = 8002,
    links: dict[str, str] | None = None,
    serving_root: str | None = None,
    tensorrt_llm_model_names: Sequence[str] = ("tensorrt_llm",),
) -> list[str]:
    """`cmd` of a Model Deployment: the image's launcher with the options that differ from its defaults.

    `links` (name -> absolute path in the container) with `serving_root` builds the root the repository's configs
    name before Triton starts (model by reference: engines and configs live under different object prefixes).
    """
    launch_argv(repo_dir, world_size, http_port=http_port, grpc_port=grpc_port, metrics_port=metrics_port,
                tensorrt_llm_model_names=tuple(tensorrt_llm_model_names))  # validates the same way the image will
    if links and not serving_root:
        raise ValueError("links need a serving_root to create them in")
    cmd = [IMAGE_PYTHON, IMAGE_LAUNCHER, "--model-repository", repo_dir, "--world-size", str(world_size)]
    for flag, value, default in (("--http-port", http_port, 8000), ("--grpc-port", grpc_port, 8001),
                                 ("--metrics-port", metrics_port, 8002)):
        if value != default:
            cmd += [flag, str(value)]
    if tuple(tensorrt_llm_model_names) != ("tensorrt_llm",):
        for name in tensorrt_llm_model_names:
            cmd += ["--tensorrt-llm-model", name]
    if serving_root:
        cmd += ["--serving-root", serving_root]
        for name, target in sorted((links or {}).items()):
            cmd += ["--link", f"{name}={target}"]
    return cmd


def linked_cmd(command: Sequence[str], *, links: dict[str, str], serving_root: str) -> list[str]:
    """`cmd` of a Model Deployment that runs `command` (e.g. trtllm-serve) after the image's launcher has linked
    `serving_root` together (a checkpoint by reference: its objects and the release's options live under different
    prefixes of the mount, and trtllm-serve names the model after its directory)."""
    if not command:
        raise ValueError("linked_cmd needs a command to run")
    cmd = [IMAGE_PYTHON, IMAGE_LAUNCHER, "--serving-root", serving_root]
    for name, target in sorted(links.items()):
        cmd += ["--link", f"{name}={target}"]
    return [*cmd, "--", *command]
