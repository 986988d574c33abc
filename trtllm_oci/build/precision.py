"""The engine dtype: `auto` resolved from the checkpoint as upstream does, and what the GPU can run.

`auto` is upstream's default for convert_checkpoint.py and quantize.py --dtype: "the data type is
automatically inferred from the source model; however, if the source dtype is float32, it is converted to
float16" (NVIDIA/TensorRT-LLM examples/models/core/*/convert_checkpoint.py --dtype help;
tensorrt_llm/models/convert_utils.py infer_dtype, which quantize_by_modelopt.py also calls). It is resolved
here, before the argv is written, because the 0.5-0.9 scripts and every trtllm-build plugin flag take a
concrete dtype: the resolved value is what the plan shows and what the cache key covers.
"""

from __future__ import annotations

from typing import Literal

from trtllm_oci.errors import InputError
from trtllm_oci.shapes import BF16_MIN_COMPUTE_CAPABILITY, FP8_MIN_COMPUTE_CAPABILITY

RequestedDtype = Literal["auto", "float16", "bfloat16", "float32"]
ENGINE_DTYPES = ("float16", "bfloat16", "float32")
_MIN_SM = {"bfloat16": BF16_MIN_COMPUTE_CAPABILITY, "fp8": FP8_MIN_COMPUTE_CAPABILITY}


class UnsupportedPrecisionError(InputError):
    """A dtype the checkpoint or the GPU cannot take."""


def resolve_dtype(requested: str, checkpoint_dtype: str | None) -> str:
    """The concrete engine dtype for `requested` ("auto" or one of ENGINE_DTYPES)."""
    if requested != "auto":
        if requested not in ENGINE_DTYPES:
            raise UnsupportedPrecisionError(
                f"dtype {requested!r} is not an engine dtype; use auto (the checkpoint's) or one of {ENGINE_DTYPES}"
            )
        return requested
    source = (checkpoint_dtype or "").removeprefix("torch.")
    if source in ("float16", "bfloat16"):
        return source
    if source in ("float32", ""):
        return "float16"  # upstream's auto: a float32 (or unnamed) source becomes float16
    raise UnsupportedPrecisionError(
        f"the checkpoint's torch_dtype is {checkpoint_dtype!r}, which dtype=auto cannot map to an engine dtype "
        f"({ENGINE_DTYPES}); pass an explicit dtype"
    )


def check_precision_on_gpu(
    dtype: str,
    *,
    fp8_weights: bool,
    kv_cache_dtype: str,
    compute_capability: tuple[int, int],
    gpu_label: str,
) -> None:
    """Refuse, before any build, a precision the GPU has no kernels for (bf16 below SM 8.0, fp8 below 8.9)."""
    wanted = []
    if dtype == "bfloat16":
        wanted.append(("bfloat16", "dtype 'bfloat16'", "dtype float16"))
    if fp8_weights:
        wanted.append(("fp8", "an FP8 quantization", "int8_sq, int4_awq, int8_wo, int4_wo or none"))
    if kv_cache_dtype == "fp8":
        wanted.append(("fp8", "kv_cache_dtype 'fp8'", "kv_cache_dtype int8 or auto"))
    sm = ".".join(map(str, compute_capability))
    for precision, what, alternative in wanted:
        need = _MIN_SM[precision]
        if compute_capability < need:
            raise UnsupportedPrecisionError(
                f"{what} needs a GPU of compute capability >= {need[0]}.{need[1]}, but {gpu_label} is SM {sm}; "
                f"use {alternative}, or a newer GPU"
            )


def parse_gpu_arch(gpu_arch: str) -> tuple[int, int]:
    """"sm90" -> (9, 0); "sm100" -> (10, 0)."""
    digits = gpu_arch.removeprefix("sm")
    if not digits.isdigit() or len(digits) < 2:
        raise UnsupportedPrecisionError(f"GPU architecture {gpu_arch!r} is not of the form sm<major><minor>, e.g. sm90")
    return int(digits[:-1]), int(digits[-1])
