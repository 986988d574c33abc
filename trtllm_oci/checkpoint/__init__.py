"""Hugging Face checkpoints for TensorRT-LLM's PyTorch backend: recognise a pre-quantized one, or make one.

`quant_config` reads a checkpoint's quantization as TensorRT-LLM reads it; `modelopt_ptq` quantizes an
unquantized checkpoint with NVIDIA ModelOpt and exports a Hugging Face checkpoint. No Prefect here.
"""
