"""Load a ModelOpt FP8 Hugging Face checkpoint as plain bf16/fp32 weights (for CPU smoke serving).

ModelOpt's FP8 export stores each quantized linear weight as `float8_e4m3fn` with a `weight_scale`
(per tensor, or per output channel) and an `input_scale` for the activations; with an FP8 KV cache it
adds `k_scale`/`v_scale` on k_proj/v_proj. TensorRT-LLM runs these in FP8 on the GPU. transformers
cannot run them on CPU, and `from_pretrained` on such a directory does not apply `weight_scale` (it casts
the raw FP8 codes and reports the scales as unexpected keys): so this module dequantizes explicitly,
`weight = fp8_codes.to(dtype) * weight_scale`, and drops the activation and KV scales. The served model
then computes in `dtype`, not in FP8: numerically close to what the FP8 GPU kernels compute, not equal.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from trtllm_oci.checkpoint.quant_config import CheckpointQuantError, CheckpointQuantization

WEIGHT_SCALE_SUFFIX = ".weight_scale"
# Calibration scales of activations and of the KV cache: needed by FP8 kernels, meaningless after dequantizing.
DROPPED_SUFFIXES = (".input_scale", ".k_scale", ".v_scale", ".output_scale")
DEQUANTIZABLE_ALGOS = ("FP8", "FP8_PER_CHANNEL_PER_TOKEN")


class Fp8DequantError(CheckpointQuantError):
    """The checkpoint's tensors are not the ModelOpt FP8 layout this loader understands."""


def weight_files(checkpoint_dir: Path) -> list[Path]:
    """The safetensors files of a checkpoint: the index's shards if there is an index, else *.safetensors."""
    index = checkpoint_dir / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        return [checkpoint_dir / shard for shard in shards]
    files = sorted(checkpoint_dir.glob("*.safetensors"))
    if not files:
        raise Fp8DequantError(f"{checkpoint_dir} has no *.safetensors weights to load")
    return files


def dequantized_state_dict(checkpoint_dir: Path, quantization: CheckpointQuantization, dtype: Any) -> dict[str, Any]:
    """All tensors of the checkpoint in `dtype`, FP8 weights multiplied by their scales, scales dropped."""
    import torch
    from safetensors.torch import load_file

    if quantization.quant_algo not in DEQUANTIZABLE_ALGOS:
        raise Fp8DequantError(
            f"{checkpoint_dir} is {quantization.quant_algo}; the CPU smoke path dequantizes only "
            f"{', '.join(DEQUANTIZABLE_ALGOS)} checkpoints (or serves unquantized ones)"
        )
    raw: dict[str, Any] = {}
    for path in weight_files(checkpoint_dir):
        raw.update(load_file(str(path), device="cpu"))
    state: dict[str, Any] = {}
    for name, tensor in raw.items():
        if name.endswith(WEIGHT_SCALE_SUFFIX) or name.endswith(DROPPED_SUFFIXES):
            continue
        if tensor.dtype == torch.float8_e4m3fn:
            scale_name = name.removesuffix(".weight") + WEIGHT_SCALE_SUFFIX
            if not name.endswith(".weight") or scale_name not in raw:
                raise Fp8DequantError(f"{name} is float8_e4m3fn but {scale_name} is missing; not a ModelOpt FP8 export")
            state[name] = _scaled(tensor, raw[scale_name], name).to(dtype)
        elif tensor.is_floating_point():
            state[name] = tensor.to(dtype)
        else:
            state[name] = tensor
    return state


def _scaled(codes: Any, scale: Any, name: str) -> Any:
    import torch

    weight = codes.to(torch.float32)
    scale = scale.to(torch.float32)
    if scale.numel() == 1:
        return weight * scale.reshape(())
    if scale.numel() == weight.shape[0]:
        return weight * scale.reshape(-1, 1)
    raise Fp8DequantError(
        f"{name}: weight_scale of shape {tuple(scale.shape)} for a weight of shape {tuple(codes.shape)} is "
        "neither per-tensor nor per-output-channel (block-scaled FP8 is not dequantized here)"
    )
