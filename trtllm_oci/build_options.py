"""What a release asks of its artifact: quantization, parallelism and the build-time limits.

These value types are shared by the spec (which a user writes), the planner, the builders and the backends,
so they live below all of them; the spec composes them.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator

from trtllm_oci.errors import InputError
from trtllm_oci.shapes import Shape, load_catalog


class Quantization(StrEnum):
    NONE = "none"
    FP8 = "fp8"
    INT8_SQ = "int8_sq"
    INT4_AWQ = "int4_awq"
    W4A8_AWQ = "w4a8_awq"
    INT8_WO = "int8_wo"
    INT4_WO = "int4_wo"

    @property
    def needs_fp8_hardware(self) -> bool:
        # w4a8_awq runs its activations in FP8 (ModelOpt W4A8_AWQ), so it needs Ada/Hopper like fp8.
        return self in (Quantization.FP8, Quantization.W4A8_AWQ)


class KvCacheDtype(StrEnum):
    AUTO = "auto"
    FP8 = "fp8"
    INT8 = "int8"


# Far above any model's context (the longest in common use are 1-10 M tokens); it only keeps a typo such as an
# extra zero group from reaching the planner's arithmetic as a 10^30-token engine.
MAX_SEQUENCE_TOKENS = 1 << 24


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class QuantizationSpec(_Strict):
    method: Quantization = Field(default=Quantization.NONE, description="Weight (and activation) quantization")
    kv_cache_dtype: KvCacheDtype = Field(default=KvCacheDtype.AUTO, description="auto = the model's dtype")
    calib_size: StrictInt = Field(default=512, ge=1, le=100_000, description="Calibration samples for quantize.py")


class Parallelism(_Strict):
    tp: StrictInt = Field(default=1, ge=1, le=64, description="Tensor parallel size")
    pp: StrictInt = Field(default=1, ge=1, le=64, description="Pipeline parallel size")

    @property
    def world_size(self) -> int:
        return self.tp * self.pp


class BuildLimits(_Strict):
    """trtllm-build's shape limits; they size the engine's activation memory and its maximum requests."""

    max_batch_size: StrictInt = Field(default=64, ge=1, le=4096)
    max_input_len: StrictInt = Field(default=2048, ge=1, le=MAX_SEQUENCE_TOKENS)
    max_seq_len: StrictInt = Field(default=4096, ge=2, le=MAX_SEQUENCE_TOKENS)
    max_num_tokens: StrictInt = Field(default=8192, ge=1, le=MAX_SEQUENCE_TOKENS)

    @model_validator(mode="after")
    def _consistent(self) -> BuildLimits:
        if self.max_input_len >= self.max_seq_len:
            raise InputError(
                f"build.max_input_len ({self.max_input_len}) must be below build.max_seq_len "
                f"({self.max_seq_len}), which counts prompt plus generated tokens; raise max_seq_len"
            )
        return self


def check_parallelism_fits(parallelism: Parallelism, shape: Shape, field: str = "target.shape") -> None:
    if parallelism.world_size > shape.gpu_count:
        bigger = sorted(
            (s for s in load_catalog().shapes.values() if s.gpu_count >= parallelism.world_size),
            key=lambda s: s.price_per_hour_usd,
        )
        raise InputError(
            f"parallelism: tp×pp = {parallelism.tp}×{parallelism.pp} = {parallelism.world_size} is larger than the "
            f"{shape.gpu_count} GPU(s) of {shape.name} ({field}); choose tp×pp ≤ {shape.gpu_count} or a shape "
            f"with ≥ {parallelism.world_size} GPUs: {', '.join(s.name for s in bigger) or 'none in the catalog'}"
        )


def check_quantization_supported(quant: QuantizationSpec, shape: Shape, field: str = "target.shape") -> None:
    gpu = shape.gpu
    if gpu.supports_fp8:
        return
    if quant.method.needs_fp8_hardware:
        raise InputError(
            f"quantization.method: {quant.method.value!r} needs FP8 support (compute capability ≥ 8.9), but "
            f"{shape.name} ({field}) has {gpu.name} GPUs (SM {gpu.compute_capability}); choose one of "
            f"int8_sq, int4_awq, int8_wo, int4_wo, none, or an L40S/H100/H200 shape"
        )
    if quant.kv_cache_dtype is KvCacheDtype.FP8:
        raise InputError(
            f"quantization.kv_cache_dtype: 'fp8' needs FP8 support (compute capability ≥ 8.9), but {shape.name} "
            f"({field}) has {gpu.name} GPUs (SM {gpu.compute_capability}); use 'int8' or 'auto'"
        )


class BuildRequest(BaseModel):
    """What to prepare for one release, independent of where it is served: the builders' and the backends'
    input (the release layer makes it from the spec)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model_commit_sha: str = Field(min_length=1, description="Hub commit sha, or local-<hash> for a local directory")
    trtllm_version: str
    quantization: QuantizationSpec = Field(default_factory=QuantizationSpec)
    parallelism: Parallelism = Field(default_factory=Parallelism)
    limits: BuildLimits = Field(default_factory=BuildLimits)
