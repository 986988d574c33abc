"""Where an engine build runs: the build host's runner, GPUs and TensorRT-LLM checkout, and the facts read
off it (GPU architecture, the serving image's digest)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from trtllm_oci.cache.key import UNRESOLVED_DIGEST_PREFIX
from trtllm_oci.errors import InputError, ServiceError


class BuildHost(BaseModel):
    """Where engine builds run. Not part of a release: the same release builds on any suitable GPU host."""

    model_config = ConfigDict(extra="forbid")

    runner: Literal["docker", "local"] = Field(
        default="docker", description="docker: steps run in the version's TRT-LLM image; local: tensorrt_llm on this host"
    )
    docker_host: str | None = Field(default=None, description="DOCKER_HOST-style URL; default: the environment's")
    gpus: Literal["all"] | list[str] = Field(default="all", description="'all' or device ids, e.g. ['0','1']")
    trtllm_src_dir: Path | None = Field(
        default=None,
        description="TensorRT-LLM checkout at the version's source tag (its examples/ scripts); "
        "default $TRTLLM_OCI_TRTLLM_SRC, else the version's verified source archive or release image",
    )
    gpu_arch: str | None = Field(default=None, description="e.g. sm90; detected with nvidia-smi when omitted")
    image_digest: str | None = Field(default=None, description="sha256:...; read from the Docker engine when omitted")
    user: str | None = Field(default=None, description="uid:gid for the build container (default: the image's)")
    workers: int = Field(default=1, ge=1, description="trtllm-build --workers (parallel rank builds)")
    hf_home: Path | None = Field(
        default=None,
        description="Hugging Face cache on the build host, mounted as the container's HF_HOME with the Hub "
        "offline, so calibration reads cnn_dailymail from it instead of downloading it",
    )


def detect_gpu_arch() -> str | None:
    """sm<major><minor> of GPU 0 from nvidia-smi, or None on a machine without NVIDIA GPUs."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "--query-gpu=compute_cap", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=30, check=True).stdout.split()
    except (subprocess.SubprocessError, OSError):
        return None
    return f"sm{out[0].replace('.', '')}" if out else None


# platform.machine() and Docker's Architecture spell them the kernel's way; images and shapes the OCI way.
_OCI_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def build_host_arch(host: BuildHost) -> str:
    """The CPU platform the engines are built on: this machine's, or a remote Docker engine's (`docker info`)."""
    import platform

    machine = platform.machine()
    if host.runner == "docker" and host.docker_host:
        import docker
        from docker.errors import DockerException

        try:
            client = docker.DockerClient(base_url=host.docker_host)
            try:
                machine = client.info().get("Architecture") or machine
            finally:
                client.close()
        except DockerException:
            pass  # the build itself reports an unreachable engine; the key then names this machine's platform
    return _OCI_ARCH.get(machine.lower(), machine.lower())


def unresolved_digest(image: str) -> str:
    """A labelled stand-in for a digest in dry runs without the image; a real build never keys on it."""
    return UNRESOLVED_DIGEST_PREFIX + image


def resolve_image_digest(image: str, docker_host: str | None, pull: bool = True) -> str:
    """The content digest of the local copy of `image` (pulling it first if absent and `pull`)."""
    import docker
    from docker.errors import DockerException, ImageNotFound

    try:
        client = docker.DockerClient(base_url=docker_host) if docker_host else docker.from_env()
    except DockerException as exc:
        raise ServiceError(
            f"cannot reach the Docker engine to resolve the digest of {image} ({exc}); start Docker, set "
            f"DOCKER_HOST, or pass the digest with --image-digest (build_host.image_digest in a flow)"
        ) from None
    try:
        try:
            found = client.images.get(image)
        except ImageNotFound:
            if not pull:
                raise InputError(f"{image} is not on the Docker engine; pull it or pass its digest") from None
            found = client.images.pull(image)
        repo_digests = found.attrs.get("RepoDigests") or []
        return repo_digests[0].split("@", 1)[1] if repo_digests else found.id
    finally:
        client.close()
