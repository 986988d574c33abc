"""Fake engine dirs (both config.json layouts, small rank files) and a tokenizer dir for repository tests.

The engine files are bytes, not TensorRT plans: everything under test reads only config.json and file names.
"""

from __future__ import annotations

import json
from pathlib import Path


def write_trtllm_build_engine(
    root: Path,
    *,
    version: str = "1.2.1",
    tp: int = 1,
    pp: int = 1,
    cp: int = 1,
    max_batch_size: int = 64,
    max_input_len: int = 1024,
    max_seq_len: int = 2048,
    ranks: int | None = None,
    world_size: int | None = None,
    dtype: str = "float16",
    quant_algo: str | None = None,
) -> Path:
    """Layout of TL:tensorrt_llm/builder.py EngineConfig.to_dict plus rank{R}.engine files."""
    root.mkdir(parents=True, exist_ok=True)
    config = {
        "version": version,
        "pretrained_config": {
            "architecture": "LlamaForCausalLM",
            "dtype": dtype,
            **({"quantization": {"quant_algo": quant_algo}} if quant_algo else {}),
            "mapping": {
                "world_size": tp * pp * cp if world_size is None else world_size,
                "tp_size": tp,
                "pp_size": pp,
                # Mapping.to_dict writes cp_size only in releases with context parallelism; keep cp=1 configs
                # in the older shape.
                **({"cp_size": cp} if cp > 1 else {}),
            },
        },
        "build_config": {
            "max_batch_size": max_batch_size,
            "max_input_len": max_input_len,
            "max_seq_len": max_seq_len,
            "max_beam_width": 1,
            "plugin_config": {"paged_kv_cache": True},
        },
    }
    (root / "config.json").write_text(json.dumps(config))
    for rank in range(tp * pp * cp if ranks is None else ranks):
        (root / f"rank{rank}.engine").write_bytes(bytes([rank]) * 4096)
    return root


def write_legacy_engine(
    root: Path,
    *,
    name: str = "llama",
    precision: str = "float16",
    tp: int = 2,
    pp: int = 1,
    max_batch_size: int = 8,
    max_input_len: int = 512,
    max_output_len: int = 256,
    ranks: int | None = None,
) -> Path:
    """Layout read by TL:cpp/tensorrt_llm/runtime/gptJsonConfig.cpp (0.5 era): builder_config + plugin_config,
    engine files {name}_{precision}_tp{T}[_pp{P}]_rank{R}.engine."""
    root.mkdir(parents=True, exist_ok=True)
    config = {
        "builder_config": {
            "name": name,
            "precision": precision,
            "tensor_parallel": tp,
            "pipeline_parallel": pp,
            "num_heads": 32,
            "hidden_size": 4096,
            "vocab_size": 32000,
            "num_layers": 32,
            "max_batch_size": max_batch_size,
            "max_input_len": max_input_len,
            "max_output_len": max_output_len,
        },
        "plugin_config": {
            "paged_kv_cache": True,
            "tokens_per_block": 64,
            "gpt_attention_plugin": "float16",
            "remove_input_padding": True,
        },
    }
    (root / "config.json").write_text(json.dumps(config))
    pp_part = f"_pp{pp}" if pp > 1 else ""
    for rank in range(tp * pp if ranks is None else ranks):
        (root / f"{name}_{precision}_tp{tp}{pp_part}_rank{rank}.engine").write_bytes(b"E" * 2048)
    return root


def write_tokenizer_dir(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "tokenizer.json").write_text(json.dumps({"version": "1.0", "model": {"type": "BPE"}}))
    (root / "tokenizer_config.json").write_text(json.dumps({"eos_token": "</s>"}))
    (root / "model.safetensors").write_bytes(b"\0" * 1024)  # weights: must not be linked into tokenizer/
    return root
