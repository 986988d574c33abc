"""Data Science model-deployment limits, checked before any API call.

Limits are quoted from the SDK model docstrings
(oci/data_science/models/ocir_model_deployment_environment_configuration_details.py@2.189.0) and the BYOC docs
(https://docs.oracle.com/en-us/iaas/data-science/using/mod-dep-byoc.htm,
https://docs.oracle.com/en-us/iaas/data-science/using/mod-dep-byoc-variables.htm).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence

from trtllm_oci.cloud.errors import DeploymentLimitError

CMD_ENTRYPOINT_MAX_BYTES = 2048  # "combined size of CMD and ENTRYPOINT must be less than 2048 bytes"
ENV_MAX_BYTES = 2048  # "The size of envVars must be less than 2048 bytes"
ENV_KEY_MAX_CHARS = 32  # "Key should be under 32 characters"
PORT_MIN, PORT_MAX = 1024, 65535
FORBIDDEN_PORTS = frozenset({24224, 8446, 8447})
RESERVED_ENV_KEYS = frozenset({"MODEL_DEPLOYMENT_OCID", "TENANCY_OCID", "CONTAINER_CUSTOM_IMAGE"})
DEPLOYMENT_TIMEOUT_MAX_MINUTES = 240  # DEPLOYMENT_TIMEOUT_IN_MINUTES maximum (oci-data-science-ai-samples llama2 README)
# STORAGE_SIZE_IN_GB sizes the instance boot volume; OCI boot volumes are 50 GB .. 32 TB
# (https://docs.oracle.com/en-us/iaas/Content/Block/Concepts/bootvolumes.htm).
STORAGE_MIN_GB, STORAGE_MAX_GB = 50, 32768
STORAGE_HEADROOM_FRACTION = 0.25  # unzip scratch, container layers' extraction, logs
STORAGE_HEADROOM_MIN_GB = 20
# Model deployments sit behind a flexible load balancer: 10 Mbps minimum (the ADS default) up to the
# flexible-LB maximum of 8000 Mbps (https://docs.oracle.com/en-us/iaas/Content/Balance/Reference/lbflexibleshapes.htm).
BANDWIDTH_MIN_MBPS, BANDWIDTH_MAX_MBPS = 10, 8000

_ENV_KEY_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_OCIR_IMAGE_RE = re.compile(r"^[a-z0-9-]+\.ocir\.io/[^/\s]+/[^\s:@]+(:[\w][\w.-]{0,127})?(@sha256:[0-9a-f]{64})?$")


def _json_bytes(value) -> int:
    """Size as the service sees it on the wire (compact JSON); conservative against per-string sums."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def check_cmd_entrypoint(cmd: Sequence[str], entrypoint: Sequence[str] | None) -> None:
    if not cmd and not entrypoint:
        raise DeploymentLimitError("cmd is empty: pass the Triton launch argv (e.g. launch_argv(...)) as cmd.")
    for name, argv in (("cmd", cmd), ("entrypoint", entrypoint or [])):
        bad = [a for a in argv if not isinstance(a, str)]
        if bad:
            raise DeploymentLimitError(f"{name} must be a list of strings; got non-string items {bad!r}.")
    size = _json_bytes(list(cmd)) + (_json_bytes(list(entrypoint)) if entrypoint else 0)
    if size >= CMD_ENTRYPOINT_MAX_BYTES:
        raise DeploymentLimitError(
            f"cmd + entrypoint are {size} bytes; Data Science needs them under {CMD_ENTRYPOINT_MAX_BYTES}. "
            "Move long options into a launch script inside the image or the model artifact and call that."
        )


def check_port(name: str, port: int) -> None:
    if not isinstance(port, int) or isinstance(port, bool):
        raise DeploymentLimitError(f"{name} must be an integer port; got {port!r}.")
    if not PORT_MIN <= port <= PORT_MAX or port in FORBIDDEN_PORTS:
        raise DeploymentLimitError(
            f"{name}={port} is not allowed: use a port in {PORT_MIN}-{PORT_MAX} other than "
            f"{', '.join(map(str, sorted(FORBIDDEN_PORTS)))} (e.g. 8080)."
        )


def check_env(env: Mapping[str, str]) -> None:
    for key, value in env.items():
        if not isinstance(key, str) or not _ENV_KEY_RE.match(key) or len(key) < 2 or key.endswith("_"):
            raise DeploymentLimitError(
                f"environment variable name {key!r} is invalid: it must start with a letter, contain only "
                "letters, digits and '_', have at least 2 characters and not end with '_'."
            )
        if len(key) >= ENV_KEY_MAX_CHARS:
            raise DeploymentLimitError(
                f"environment variable name {key!r} has {len(key)} characters; it must be under {ENV_KEY_MAX_CHARS}."
            )
        if key in RESERVED_ENV_KEYS:
            raise DeploymentLimitError(
                f"environment variable {key!r} is reserved by Data Science (it injects it); remove it."
            )
        if not isinstance(value, str):
            raise DeploymentLimitError(f"environment variable {key!r} must be a string; got {value!r}.")
    size = _json_bytes(dict(env))
    if size >= ENV_MAX_BYTES:
        raise DeploymentLimitError(
            f"environment variables are {size} bytes; Data Science needs them under {ENV_MAX_BYTES}. "
            "Move bulky settings into the model artifact."
        )


def check_image(image: str, image_digest: str) -> None:
    if not _OCIR_IMAGE_RE.match(image or ""):
        raise DeploymentLimitError(
            f"image {image!r} is not an OCIR image reference; BYOC pulls from "
            "'<region-key>.ocir.io/<namespace>/<repo>:<tag>' (e.g. iad.ocir.io/mytenancy/trtllm-serve:1.0)."
        )
    if not _DIGEST_RE.match(image_digest or ""):
        raise DeploymentLimitError(
            f"image_digest {image_digest!r} is not 'sha256:<64 hex>'; take it from the push result "
            "(docker inspect --format '{{index .RepoDigests 0}}')."
        )


def check_deployment_timeout(minutes: int) -> None:
    if not 1 <= minutes <= DEPLOYMENT_TIMEOUT_MAX_MINUTES:
        raise DeploymentLimitError(
            f"deployment_timeout_minutes={minutes} is out of range; Data Science accepts 1-"
            f"{DEPLOYMENT_TIMEOUT_MAX_MINUTES} (DEPLOYMENT_TIMEOUT_IN_MINUTES)."
        )


def check_scaling(instance_count: int, bandwidth_mbps: int) -> None:
    if instance_count < 1:
        raise DeploymentLimitError(f"instance_count={instance_count} must be at least 1.")
    if not BANDWIDTH_MIN_MBPS <= bandwidth_mbps <= BANDWIDTH_MAX_MBPS:
        raise DeploymentLimitError(
            f"bandwidth_mbps={bandwidth_mbps} is out of range {BANDWIDTH_MIN_MBPS}-{BANDWIDTH_MAX_MBPS}."
        )


def storage_size_gb(image_size_bytes: int, artifact_size_bytes: int) -> int:
    """Boot volume (GB) for the image plus the unzipped artifact, with headroom, rounded up and bounded."""
    if image_size_bytes < 0 or artifact_size_bytes < 0:
        raise DeploymentLimitError(
            f"image_size_bytes={image_size_bytes} and artifact_size_bytes={artifact_size_bytes} must be >= 0."
        )
    payload_gb = (image_size_bytes + artifact_size_bytes) / 1e9
    needed = payload_gb + max(payload_gb * STORAGE_HEADROOM_FRACTION, STORAGE_HEADROOM_MIN_GB)
    size = max(STORAGE_MIN_GB, math.ceil(needed))
    if size > STORAGE_MAX_GB:
        raise DeploymentLimitError(
            f"image ({image_size_bytes / 1e9:.1f} GB) + unzipped artifact ({artifact_size_bytes / 1e9:.1f} GB) need "
            f"{size} GB of storage, above the {STORAGE_MAX_GB} GB boot-volume maximum; shrink the artifact "
            "(fewer engines, a smaller quantisation) or the image."
        )
    return size


# /dev/shm for the container. Oracle's BYOC samples set SHM_SIZE to 5g for one GPU (oracle-samples/oci-data-science-
# ai-samples model-deployment/containers/nim/README.md, VM.GPU.A10.1) and 10g for tensor parallel 8 (LLM/deploy-
# llama3.1.md, vLLM TP8); NCCL between ranks and Triton's python backend both use /dev/shm. In between: linear.
SHM_GB_ONE_GPU, SHM_GB_EIGHT_GPUS = 5, 10


def shm_size_gb(world_size: int) -> int:
    if world_size < 1:
        raise DeploymentLimitError(f"world_size={world_size} must be at least 1 (tp x pp).")
    slope = (SHM_GB_EIGHT_GPUS - SHM_GB_ONE_GPU) / 7
    return math.ceil(SHM_GB_ONE_GPU + slope * (world_size - 1))


def check_shape_offered(shape: str, offered: Iterable[str], compartment_id: str) -> None:
    names = sorted(set(offered))
    if shape not in names:
        raise DeploymentLimitError(
            f"shape {shape!r} is not offered for model deployments in compartment {compartment_id}; "
            f"offered: {', '.join(names) or 'none'}. Pick one of those or request a service-limit increase."
        )
