"""Parameters of a Python-backend model's config.pbtxt, and the tokenizer its ``tokenizer_dir`` names.

Shared by all the Python-backend models of this directory. A ``*.py`` file at this level is a module the
models share: the assembler copies it into every Python model's ``<model>/1/`` next to ``model.py``
(``python_model_files`` in trtllm_oci/repo/assemble.py), and the Python backend's stub puts that directory
on ``sys.path`` before it imports ``model.py`` (triton-inference-server/python_backend:src/pb_stub.cc,
``Stub::Initialize``), so a model imports it by its bare name.
"""

from __future__ import annotations

import triton_python_backend_utils as pb_utils

_TRUE_WORDS = ("1", "true", "t", "yes", "y", "on")


def string_parameter(model_config: dict, key: str) -> str | None:
    """``parameters[key].string_value``; None when it is absent, empty or an unfilled ``${...}`` placeholder."""
    value = model_config.get("parameters", {}).get(key, {}).get("string_value")
    # Upstream's Python models treat an unfilled ${...} template placeholder as "not set"
    # (triton-inference-server/tensorrtllm_backend:all_models/inflight_batcher_llm/tensorrt_llm_bls/1/model.py
    # and tensorrt_llm/1/model.py @v0.19.0).
    if value is None or value == "" or value.startswith("${"):
        return None
    return value


def bool_parameter(model_config: dict, key: str, default: bool) -> bool:
    """The parameter read as a boolean (1/true/t/yes/y/on, any case); ``default`` when it is not set."""
    value = string_parameter(model_config, key)
    if value is None:
        return default
    return value.strip().lower() in _TRUE_WORDS


def load_tokenizer(model_config: dict):
    """``(tokenizer_dir, tokenizer)``: the Hugging Face tokenizer of the required ``tokenizer_dir`` parameter."""
    from transformers import AutoTokenizer

    tokenizer_dir = string_parameter(model_config, "tokenizer_dir")
    if tokenizer_dir is None:
        raise pb_utils.TritonModelException(
            "parameter 'tokenizer_dir' is not set; point it at a Hugging Face tokenizer directory"
        )
    return tokenizer_dir, AutoTokenizer.from_pretrained(tokenizer_dir, legacy=False, padding_side="left")
