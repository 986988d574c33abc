"""Model facts from real Hugging Face config.json files (tests/data/hf_configs, see SOURCES.md).

Counts are checked two ways: against the numbers the publishers state, and exactly against the modules
transformers builds from the same config (on the meta device, so no weights are allocated).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pydantic
import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM, FalconConfig

from trtllm_oci.model_facts import (
    SUPPORTED_ARCHITECTURES,
    ModelConfigError,
    ModelFacts,
    UnsupportedArchitectureError,
    facts_from_config,
    load_model_facts,
)

HF_CONFIGS = Path(__file__).parent / "data" / "hf_configs"
ALL_CONFIG_NAMES = sorted(p.stem for p in HF_CONFIGS.glob("*.json"))


def read_config(name: str) -> dict:
    return json.loads((HF_CONFIGS / f"{name}.json").read_text())


def facts(name: str) -> ModelFacts:
    return load_model_facts(HF_CONFIGS / f"{name}.json")


def meta_model(config: dict | FalconConfig) -> torch.nn.Module:
    if isinstance(config, dict):
        config = AutoConfig.for_model(
            config["model_type"], **{k: v for k, v in config.items() if k != "model_type"}
        )
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config)


def first_decoder_layer(model: torch.nn.Module) -> torch.nn.Module:
    layers = next(m for m in model.modules() if isinstance(m, torch.nn.ModuleList))
    return layers[0]


def numel(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# Publisher-stated sizes: Llama 2 paper / model cards (HF shows 6.74B, 13B, 69B), Mixtral announcement
# (46.7B total, 12.9B per token), Mistral 7B and Falcon model cards (7.24B, 6.92B, 41.8B), Qwen2 report
# (7.6B), Llama 3.3 model card (70.6B).
PUBLISHED = [
    # name, family, total, active, layers, heads, kv_heads, head_dim
    ("llama-2-7b-hf", "llama", 6.74e9, 6.74e9, 32, 32, 32, 128),
    ("llama-2-13b-hf", "llama", 13.0e9, 13.0e9, 40, 40, 40, 128),
    ("llama-2-70b-hf", "llama", 69.0e9, 69.0e9, 80, 64, 8, 128),
    ("llama-3.3-70b-instruct", "llama", 70.6e9, 70.6e9, 80, 64, 8, 128),
    ("mistral-7b-v0.1", "mistral", 7.24e9, 7.24e9, 32, 32, 8, 128),
    ("mixtral-8x7b-v0.1", "mixtral", 46.7e9, 12.9e9, 32, 32, 8, 128),
    ("qwen2-7b", "qwen2", 7.6e9, 7.6e9, 28, 28, 4, 128),
    ("falcon-7b", "falcon", 6.9e9, 6.9e9, 32, 71, 1, 64),
    ("falcon-40b", "falcon", 41.8e9, 41.8e9, 60, 128, 8, 64),
    ("falcon-40b-rw", "falcon", 41.8e9, 41.8e9, 60, 128, 8, 64),
]


def test_every_data_file_is_covered():
    assert sorted(row[0] for row in PUBLISHED) == ALL_CONFIG_NAMES


@pytest.mark.parametrize(
    ("name", "family", "total", "active", "layers", "heads", "kv_heads", "head_dim"), PUBLISHED
)
def test_matches_published_sizes(name, family, total, active, layers, heads, kv_heads, head_dim):
    got = facts(name)
    assert got.family == family
    assert got.total_params == pytest.approx(total, rel=0.02)
    assert got.active_params == pytest.approx(active, rel=0.02)
    assert (got.num_layers, got.num_attention_heads, got.num_kv_heads, got.head_dim) == (
        layers,
        heads,
        kv_heads,
        head_dim,
    )


# RW-form configs have no transformers class; these are the FalconConfig fields the same checkpoints were
# converted to when Falcon moved into transformers (RW n_head/n_layer/n_head_kv -> Falcon names).
RW_AS_FALCON = {
    "falcon-7b": FalconConfig(
        hidden_size=4544,
        num_attention_heads=71,
        num_hidden_layers=32,
        vocab_size=65024,
        multi_query=True,
        new_decoder_architecture=False,
        parallel_attn=True,
        bias=False,
    ),
    "falcon-40b-rw": FalconConfig(
        hidden_size=8192,
        num_attention_heads=128,
        num_kv_heads=8,
        num_hidden_layers=60,
        vocab_size=65024,
        new_decoder_architecture=True,
        parallel_attn=True,
        bias=False,
    ),
}


@pytest.mark.parametrize("name", ALL_CONFIG_NAMES)
def test_counts_equal_the_transformers_model(name):
    model = meta_model(RW_AS_FALCON.get(name) or read_config(name))
    got = facts(name)
    assert got.total_params == model.num_parameters()
    assert got.embedding_params == model.get_input_embeddings().weight.numel()
    assert got.lm_head_params == model.get_output_embeddings().weight.numel()
    assert got.layer_params == numel(first_decoder_layer(model))


# Small variants of real configs that switch on the rules the published checkpoints above do not use.
# Each is counted by transformers too, so a wrong rule fails here.
VARIANTS = {
    "llama with attention and MLP biases": (
        "llama-2-7b-hf",
        {"attention_bias": True, "mlp_bias": True},
    ),
    "llama tied embeddings, explicit head_dim != hidden/heads": (
        "llama-3.3-70b-instruct",
        {"tie_word_embeddings": True, "head_dim": 96},
    ),
    "mistral with explicit head_dim (Mistral-Nemo style)": (
        "mistral-7b-v0.1",
        {"hidden_size": 5120, "head_dim": 128},
    ),
    "qwen2 tied embeddings": ("qwen2-7b", {"tie_word_embeddings": True}),
    "falcon old arch, sequential attention, no MQA, biases": (
        "falcon-40b",
        {"new_decoder_architecture": False, "multi_query": False, "parallel_attn": False, "bias": True},
    ),
    "falcon new arch with one parallel norm (Falcon2-11B style)": (
        "falcon-40b",
        {"num_ln_in_parallel_attn": 1, "ffn_hidden_size": 16384},
    ),
    "falcon untied head": ("falcon-40b", {"tie_word_embeddings": False}),
}
SMALL = {"num_hidden_layers": 2}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_rule_variants_equal_the_transformers_model(variant):
    base, overrides = VARIANTS[variant]
    config = {**read_config(base), **SMALL, **overrides}
    model = meta_model(config)
    got = facts_from_config(config)
    assert got.total_params == model.num_parameters()
    assert got.layer_params == numel(first_decoder_layer(model))
    assert got.lm_head_params == model.get_output_embeddings().weight.numel()


def test_tied_model_counts_embeddings_once_but_reports_the_lm_head():
    config = {**read_config("qwen2-7b"), "tie_word_embeddings": True}
    tied, untied = facts_from_config(config), facts("qwen2-7b")
    assert tied.tie_word_embeddings and not untied.tie_word_embeddings
    assert tied.lm_head_params == untied.lm_head_params == 152064 * 3584
    assert untied.total_params - tied.total_params == tied.lm_head_params


def test_qwen2_counts_qkv_bias_but_not_o_bias():
    got = facts("qwen2-7b")
    h, q, kv = 3584, 28 * 128, 4 * 128
    attention = h * (q + 2 * kv) + q * h + (q + 2 * kv)
    mlp = 3 * h * 18944
    assert got.layer_params == attention + mlp + 2 * h


def test_mixtral_moe_active_params_hold_only_the_routed_experts():
    got = facts("mixtral-8x7b-v0.1")
    assert (got.num_experts, got.experts_per_token) == (8, 2)
    expert = 3 * 4096 * 14336
    assert got.layer_params - got.layer_active_params == (8 - 2) * expert
    assert got.total_params - got.active_params == 32 * (8 - 2) * expert
    dense = facts("mistral-7b-v0.1")
    assert (dense.num_experts, dense.experts_per_token) == (1, 1)
    assert dense.layer_params == dense.layer_active_params
    # Same attention and norms as Mistral-7B; Mixtral adds 7 more experts and the router.
    assert got.layer_params == dense.layer_params + 7 * expert + 4096 * 8


def test_falcon_rw_and_transformers_spellings_give_the_same_facts():
    rw, falcon = facts("falcon-40b-rw"), facts("falcon-40b")
    assert (rw.architecture, falcon.architecture) == ("RWForCausalLM", "FalconForCausalLM")
    assert rw.model_dump(exclude={"architecture"}) == falcon.model_dump(exclude={"architecture"})


def test_attention_kinds():
    assert facts("llama-2-7b-hf").num_kv_heads == facts("llama-2-7b-hf").num_attention_heads  # MHA
    assert facts("llama-2-70b-hf").num_kv_heads == 8  # GQA, 8 groups of 8
    assert facts("falcon-7b").num_kv_heads == 1  # MQA from multi_query
    # new_decoder_architecture ignores multi_query (transformers FalconAttention)
    assert facts_from_config({**read_config("falcon-40b"), "multi_query": True}).num_kv_heads == 8


def test_falcon_without_multi_query_has_a_kv_head_per_query_head():
    config = {**read_config("falcon-7b"), "multi_query": False}
    assert facts_from_config(config).num_kv_heads == 71


@pytest.mark.parametrize(
    ("name", "kv_bytes", "expected"),
    [
        ("llama-2-7b-hf", 2, 2 * 32 * 32 * 128 * 2),  # 0.5 MiB per token in fp16
        ("llama-2-70b-hf", 2, 2 * 80 * 8 * 128 * 2),
        ("llama-2-70b-hf", 1, 2 * 80 * 8 * 128),  # fp8 cache
        ("falcon-7b", 2, 2 * 32 * 1 * 64 * 2),
        ("mixtral-8x7b-v0.1", 2, 2 * 32 * 8 * 128 * 2),
    ],
)
def test_kv_bytes_per_token(name, kv_bytes, expected):
    assert facts(name).kv_bytes_per_token(kv_bytes) == expected


@pytest.mark.parametrize("bad", [0, -1])
def test_kv_bytes_must_be_positive(bad):
    with pytest.raises(ValueError, match="kv_bytes must be > 0"):
        facts("llama-2-7b-hf").kv_bytes_per_token(bad)


def test_other_facts_from_llama_3():
    got = facts("llama-3.3-70b-instruct")
    assert got.architecture == "LlamaForCausalLM"
    assert got.max_position_embeddings == 131072
    assert got.vocab_size == 128256
    assert got.intermediate_size == 28672
    assert got.torch_dtype == "bfloat16"
    assert got.tie_word_embeddings is False


def test_falcon_defaults_follow_transformers():
    got = facts("falcon-7b")
    assert got.intermediate_size == 4 * 4544
    assert got.max_position_embeddings == 2048
    assert got.tie_word_embeddings is True
    assert got.torch_dtype == "bfloat16"


def test_dtype_key_of_newer_transformers_and_missing_dtype():
    config = read_config("mistral-7b-v0.1")
    del config["torch_dtype"]
    assert facts_from_config({**config, "dtype": "float16"}).torch_dtype == "float16"
    assert facts_from_config(config).torch_dtype == "float32"


def test_facts_are_frozen():
    got = facts("llama-2-7b-hf")
    with pytest.raises(pydantic.ValidationError):
        got.num_layers = 1


def test_unknown_architecture_names_it_and_the_supported_ones():
    config = {**read_config("llama-2-7b-hf"), "architectures": ["GPT2LMHeadModel"]}
    with pytest.raises(UnsupportedArchitectureError) as err:
        facts_from_config(config)
    message = str(err.value)
    assert "GPT2LMHeadModel" in message
    for architecture in SUPPORTED_ARCHITECTURES:
        assert architecture in message
    assert isinstance(err.value, ValueError)


@pytest.mark.parametrize("architectures", [None, [], "LlamaForCausalLM"])
def test_missing_architectures_list(architectures):
    config = {**read_config("llama-2-7b-hf"), "architectures": architectures}
    with pytest.raises(ModelConfigError, match="'architectures'"):
        facts_from_config(config)


@pytest.mark.parametrize(
    ("name", "key", "named"),
    [
        ("llama-2-7b-hf", "intermediate_size", "'intermediate_size'"),
        ("llama-2-70b-hf", "num_hidden_layers", "'num_hidden_layers'"),
        ("qwen2-7b", "vocab_size", "'vocab_size'"),
        ("mixtral-8x7b-v0.1", "num_local_experts", "'num_local_experts'"),
        ("mixtral-8x7b-v0.1", "num_experts_per_tok", "'num_experts_per_tok'"),
        ("falcon-7b", "n_head", "'num_attention_heads' or 'n_head'"),
        ("falcon-40b", "hidden_size", "'hidden_size' or 'n_embed'"),
    ],
)
def test_missing_key_names_the_key_and_the_file(tmp_path, name, key, named):
    config = read_config(name)
    del config[key]
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    with pytest.raises(ModelConfigError) as err:
        load_model_facts(path)
    assert named in str(err.value)
    assert str(path) in str(err.value)


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"num_hidden_layers": 0}, "'num_hidden_layers' must be a positive integer"),
        ({"hidden_size": "4096"}, "'hidden_size' must be a positive integer"),
        ({"num_key_value_heads": True}, "'num_key_value_heads' must be a positive integer"),
        ({"hidden_size": 4100}, "not divisible by 32 attention heads"),
        ({"torch_dtype": 16}, "'torch_dtype' must be a string"),
    ],
)
def test_bad_values_are_named(overrides, named):
    with pytest.raises(ModelConfigError, match=named):
        facts_from_config({**read_config("llama-2-7b-hf"), **overrides})


def test_more_experts_per_token_than_experts():
    config = {**read_config("mixtral-8x7b-v0.1"), "num_experts_per_tok": 9}
    with pytest.raises(ModelConfigError, match="num_experts_per_tok 9 exceeds num_local_experts 8"):
        facts_from_config(config)


def test_load_from_a_model_directory(tmp_path):
    shutil.copy(HF_CONFIGS / "mixtral-8x7b-v0.1.json", tmp_path / "config.json")
    assert load_model_facts(tmp_path) == facts("mixtral-8x7b-v0.1")
    assert load_model_facts(str(tmp_path)) == facts("mixtral-8x7b-v0.1")


def test_directory_without_config_json(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(ModelConfigError) as err:
        load_model_facts(tmp_path)
    assert "No config.json" in str(err.value)
    assert str(tmp_path) in str(err.value)


def test_missing_path(tmp_path):
    with pytest.raises(ModelConfigError, match="No config.json at path"):
        load_model_facts(tmp_path / "nowhere" / "config.json")


def test_unparseable_config(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ModelConfigError, match="Cannot read .*config.json as JSON"):
        load_model_facts(tmp_path)


def test_config_that_is_not_an_object(tmp_path):
    (tmp_path / "config.json").write_text("[1, 2]")
    with pytest.raises(ModelConfigError, match="must hold a JSON object"):
        load_model_facts(tmp_path)


def test_module_does_not_import_prefect():
    code = (
        "import sys, trtllm_oci.model_facts; sys.exit(any(m.split('.')[0] == 'prefect' for m in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
