"""What a release asks of its artifact: quantization, parallelism and the build-time limits.

These value types are shared by the spec (which a user writes), the planner, the builders and the backends,
so they live below all of them; the spec composes them.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator, model_validator

from trtllm_oci.errors import InputError
from trtllm_oci.shapes import BF16_MIN_COMPUTE_CAPABILITY, Shape, load_catalog, price_order


class Quantization(StrEnum):
    NONE = "none"
    FP8 = "fp8"
    INT8_SQ = "int8_sq"
    INT4_AWQ = "int4_awq"
    W4A8_AWQ = "w4a8_awq"
    INT8_WO = "int8_wo"
    INT4_WO = "int4_wo"
    NVFP4 = "nvfp4"

    @property
    def needs_fp8_hardware(self) -> bool:
        # w4a8_awq runs its activations in FP8 (ModelOpt W4A8_AWQ), so it needs Ada/Hopper like fp8.
        return self in (Quantization.FP8, Quantization.W4A8_AWQ, Quantization.NVFP4)

    @property
    def needs_blackwell(self) -> bool:
        # NVFP4 tensor cores exist from compute capability 10.0 (B200/GB200) on.
        return self is Quantization.NVFP4


# What ModelOpt post-training quantization makes for the PyTorch backend; the rest are engine-path formats.
PYTORCH_QUANTIZATIONS = (Quantization.NONE, Quantization.FP8, Quantization.NVFP4, Quantization.INT4_AWQ,
                         Quantization.W4A8_AWQ)


class KvCacheDtype(StrEnum):
    AUTO = "auto"
    FP8 = "fp8"
    INT8 = "int8"


# Far above any model's context (the longest in common use are 1-10 M tokens); it only keeps a typo such as an
# extra zero group from reaching the planner's arithmetic as a 10^30-token engine.
MAX_SEQUENCE_TOKENS = 1 << 24


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


_HF_ID_RE = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")


_COMMIT_SHA_RE = re.compile(r"^[0-9a-f]{40}$")


class CalibrationDataset(_Strict):
    """The calibration set quantize.py reads instead of downloading cnn_dailymail at build time.

    A local directory is mounted into the build container as is; a Hub dataset is pinned to a commit and
    fetched by the download stage. Upstream's loader (tensorrt_llm/quantization/quantize_by_modelopt.py
    get_calib_dataloader) reads a directory with `datasets.load_dataset(dir, split="train")` and its `text`
    column, or, when the name contains "cnn_dailymail", config 3.0.0 and its `article` column.
    """

    local_dir: Path | None = Field(default=None, description="A datasets-loadable directory on the build host")
    hf_dataset: str | None = Field(default=None, description="Hugging Face dataset repo id, e.g. abisee/cnn_dailymail")
    revision: str | None = Field(default=None, description="Commit sha (40 hex) of hf_dataset")

    @field_validator("hf_dataset")
    @classmethod
    def _dataset_id_form(cls, value: str | None) -> str | None:
        if value is not None and not _HF_ID_RE.match(value):
            raise ValueError(f"{value!r} is not a Hugging Face dataset id; use the form '<org>/<name>'")
        return value

    @model_validator(mode="after")
    def _one_pinned_source(self) -> CalibrationDataset:
        if (self.local_dir is None) == (self.hf_dataset is None):
            raise ValueError("set exactly one of calib_dataset.local_dir or calib_dataset.hf_dataset")
        if self.hf_dataset is not None and not (self.revision and _COMMIT_SHA_RE.match(self.revision)):
            raise ValueError(
                f"calib_dataset.revision must pin {self.hf_dataset} to a commit sha (40 hex characters), got "
                f"{self.revision!r}; a branch could change the calibration and so the engine under the same key"
            )
        if self.local_dir is not None and self.revision is not None:
            raise ValueError("calib_dataset.revision applies to hf_dataset only; drop it for a local_dir")
        return self

    @property
    def mount_name(self) -> str:
        """The directory name inside the build container; it keeps "cnn_dailymail" where the source has it,
        because upstream's loader picks the 3.0.0 config and `article` column by that name."""
        name = self.hf_dataset.split("/")[-1] if self.hf_dataset else Path(str(self.local_dir)).name
        return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "calibration"


class QuantizationSpec(_Strict):
    method: Quantization = Field(default=Quantization.NONE, description="Weight (and activation) quantization")
    kv_cache_dtype: KvCacheDtype = Field(default=KvCacheDtype.AUTO, description="auto = the model's dtype")
    dtype: Literal["auto", "float16", "bfloat16", "float32"] = Field(
        default="auto",
        description="Weights/activations dtype of the non-quantized parts; auto = the checkpoint's torch_dtype "
        "(float32 becomes float16), as convert_checkpoint.py/quantize.py --dtype auto",
    )
    calib_size: StrictInt = Field(default=512, ge=1, le=100_000, description="Calibration samples")
    calib_dataset: CalibrationDataset | None = Field(
        default=None, description="Calibration set (engines: quantize.py; pytorch: ModelOpt PTQ); engines without "
        "one let quantize.py download cnn_dailymail"
    )


class Parallelism(_Strict):
    tp: StrictInt = Field(default=1, ge=1, le=64, description="Tensor parallel size")
    pp: StrictInt = Field(default=1, ge=1, le=64, description="Pipeline parallel size")
    ep: StrictInt | None = Field(default=None, ge=1, le=64,
                           description="pytorch backend, MoE models: expert parallel size (divides tp); default none")

    @model_validator(mode="after")
    def _ep_divides_tp(self) -> Parallelism:
        # MoE ranks split the tensor-parallel group: moe_tp_size * moe_ep_size == tp_size (TensorRT-LLM Mapping).
        if self.ep is not None and self.tp % self.ep:
            raise InputError(f"parallelism.ep={self.ep} must divide parallelism.tp={self.tp}; use one of "
                             f"{[d for d in range(1, self.tp + 1) if self.tp % d == 0]}")
        return self

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
            key=lambda s: price_order(s.price_per_hour_usd),
        )
        raise InputError(
            f"parallelism: tp×pp = {parallelism.tp}×{parallelism.pp} = {parallelism.world_size} is larger than the "
            f"{shape.gpu_count} GPU(s) of {shape.name} ({field}); choose tp×pp ≤ {shape.gpu_count} or a shape "
            f"with ≥ {parallelism.world_size} GPUs: {', '.join(s.name for s in bigger) or 'none in the catalog'}"
        )


def check_quantization_supported(quant: QuantizationSpec, shape: Shape, field: str = "target.shape") -> None:
    gpu = shape.gpu
    if quant.dtype == "bfloat16" and gpu.sm < BF16_MIN_COMPUTE_CAPABILITY:
        raise InputError(
            f"quantization.dtype: 'bfloat16' needs compute capability ≥ 8.0 (Ampere), but {shape.name} ({field}) "
            f"has {gpu.name} GPUs (SM {gpu.compute_capability}); use 'float16', or an A10/A100/L40S/H100/H200 shape"
        )
    major = int(gpu.compute_capability.split(".")[0])
    if quant.method.needs_blackwell and major < 10:
        raise InputError(
            f"quantization.method: 'nvfp4' needs Blackwell GPUs (compute capability ≥ 10.0), but {shape.name} "
            f"({field}) has {gpu.name} GPUs (SM {gpu.compute_capability}); use 'fp8' on Hopper/Ada, or a "
            f"B200/GB200 shape")
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

    # Its validator is built on first use: `trtllm-oci plan` imports this module but never makes a request.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    model_commit_sha: str = Field(min_length=1, description="Hub commit sha, or local-<hash> for a local directory")
    trtllm_version: str
    quantization: QuantizationSpec = Field(default_factory=QuantizationSpec)
    parallelism: Parallelism = Field(default_factory=Parallelism)
    limits: BuildLimits = Field(default_factory=BuildLimits)
    calibration_dir: Path | None = Field(
        default=None, description="Calibration samples on this host (.txt/.jsonl/.parquet), already downloaded")
    host_arch: Literal["amd64", "arm64"] | None = Field(
        default=None, description="CPU platform of the host that serves the engines (the target shape's; None: the "
        "build host's own). TensorRT engines are not portable across platforms")
