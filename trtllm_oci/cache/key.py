"""The engine cache key: the sha256 of a canonical JSON of everything that changes an artifact's bytes."""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from trtllm_oci.errors import InputError

CACHE_KEY_SCHEMA = 1
UNRESOLVED_DIGEST_PREFIX = "unresolved:"
CPU_REFERENCE_ARCH = "cpu"  # the CPU reference backend's artifact runs on no GPU
# A checkpoint served as it is was made by no image and runs on any GPU its quantization allows.
NO_IMAGE = "none"
ANY_GPU_ARCH = "any"

BuildOptionValue = bool | int | float | str | None | list[Any] | dict[str, Any]


class EngineCacheKey(BaseModel):
    """Everything that determines the engine bytes. Changing ANY field changes `cache_key()`.

    `build_options` holds the trtllm-build limits and flags exactly as passed (e.g. max_batch_size,
    max_seq_len, max_num_tokens, gemm_plugin, use_paged_context_fmha); an option left out and an
    option set to its default give different keys, so pass the same (complete) dict every time.
    `image_digest` must be a content digest, not a tag: a tag can move to a different TRT-LLM build.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    model_commit_sha: str = Field(min_length=1)
    quantization: str = Field(min_length=1, description='e.g. "none", "fp8", "int4_awq", "w4a8_awq"')
    kv_cache_dtype: str = Field(min_length=1, description='e.g. "auto", "fp8", "int8"')
    tp: int = Field(ge=1)
    pp: int = Field(ge=1)
    build_options: dict[str, BuildOptionValue] = Field(default_factory=dict)
    trtllm_version: str = Field(min_length=1)
    image_digest: str
    gpu_arch: str
    # TensorRT engines are not portable across platforms (TensorRT support matrix, "Engine Portability"): Linux
    # x86-64 and Linux SBSA (Grace) are separate ones. Left out of the key for amd64, so keys made before it stay.
    host_arch: str = "amd64"

    @field_validator("image_digest")
    @classmethod
    def _digest(cls, v: str) -> str:
        # "unresolved:<image ref>" is only for dry runs on machines without the image; a build resolves the digest.
        if not (re.fullmatch(r"sha256:[0-9a-f]{64}", v) or v.startswith(UNRESOLVED_DIGEST_PREFIX) or v == NO_IMAGE):
            raise InputError(f"image_digest {v!r} is not a content digest; pass 'sha256:<64 hex>' "
                             "(docker inspect --format '{{index .RepoDigests 0}}'), not a tag.")
        return v

    @field_validator("gpu_arch")
    @classmethod
    def _arch(cls, v: str) -> str:
        if v not in (CPU_REFERENCE_ARCH, ANY_GPU_ARCH) and not re.fullmatch(r"sm\d{2,3}[a-z]?", v):
            raise InputError(f"gpu_arch {v!r} must look like 'sm90' (H100/H200), 'sm80' (A100), 'sm89' (L40S) "
                             "or 'sm100' (B200): engines are only valid on the compute capability they were built for.")
        return v

    @property
    def world_size(self) -> int:
        return self.tp * self.pp


def _canonical(value: Any, where: str) -> Any:
    """JSON-safe value with one spelling per meaning: 2.0 -> 2, other floats -> their shortest repr string."""
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InputError(f"{where} is {value!r}; non-finite numbers cannot be part of a cache key.")
        return int(value) if value.is_integer() else f"float:{value!r}"
    if isinstance(value, dict):
        return {str(k): _canonical(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise InputError(f"{where} has unsupported type {type(value).__name__}; use JSON scalars, lists or dicts.")


def canonical_key_json(inputs: EngineCacheKey) -> str:
    """Sorted keys, no whitespace, ASCII, floats normalised (see `_canonical`), plus the key schema version."""
    fields = inputs.model_dump(mode="python", exclude={"host_arch"} if inputs.host_arch == "amd64" else None)
    payload = _canonical({"schema": CACHE_KEY_SCHEMA, **fields}, "inputs")
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def cache_key(inputs: EngineCacheKey) -> str:
    """sha256 hex of `canonical_key_json(inputs)`."""
    return hashlib.sha256(canonical_key_json(inputs).encode("ascii")).hexdigest()


