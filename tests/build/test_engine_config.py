"""Engine config.json in both layouts → summary and expected rank file names.

Samples in tests/data/engine_configs are written to the key layout of tensorrt_llm/builder.py
EngineConfig.to_dict + mapping.py Mapping.to_dict (trtllm-build) and tensorrt_llm/builder.py@v0.5.0
Builder.save_config with examples/llama/build.py@v0.5.0 create_builder_config kwargs (legacy).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from trtllm_oci.build.engine_config import (
    EngineConfigError,
    EngineConfigKeyError,
    EngineConfigLayoutError,
    expected_rank_files,
    rank_file_names,
    read_engine_config,
)
from trtllm_oci.versions import get_version

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "engine_configs"


def _engine_dir(tmp_path: Path, sample: str) -> Path:
    shutil.copy(SAMPLES / sample, tmp_path / "config.json")
    return tmp_path


def test_trtllm_build_layout(tmp_path):
    summary = read_engine_config(_engine_dir(tmp_path, "trtllm_build_0.14.0_llama_tp2_pp2_fp8.json"))
    assert (summary.layout, summary.trtllm_version, summary.dtype) == ("trtllm_build", "0.14.0", "float16")
    assert (summary.world_size, summary.tp_size, summary.pp_size) == (4, 2, 2)
    assert (summary.max_batch_size, summary.max_input_len, summary.max_seq_len, summary.max_num_tokens) == (
        64,
        2048,
        4096,
        8192,
    )
    assert (summary.quant_algo, summary.kv_cache_quant_algo) == ("FP8", "FP8")
    assert expected_rank_files(summary, get_version("0.14.0")) == [f"rank{r}.engine" for r in range(4)]


def test_legacy_layout_and_file_names(tmp_path):
    summary = read_engine_config(_engine_dir(tmp_path, "legacy_0.5.0_llama_tp2_pp2.json"))
    assert (summary.layout, summary.trtllm_version, summary.name) == ("legacy_build_py", None, "llama")
    assert (summary.tp_size, summary.pp_size, summary.world_size) == (2, 2, 4)
    assert (summary.max_input_len, summary.max_output_len, summary.max_seq_len) == (2048, 512, 2560)
    assert summary.quant_algo is None
    assert expected_rank_files(summary, get_version("0.5.0")) == [
        f"llama_float16_tp2_pp2_rank{r}.engine" for r in range(4)
    ]


def test_legacy_pp1_omits_pp_from_name(tmp_path):
    data = json.loads((SAMPLES / "legacy_0.5.0_llama_tp2_pp2.json").read_text())
    data["builder_config"]["pipeline_parallel"] = 1
    (tmp_path / "config.json").write_text(json.dumps(data))
    summary = read_engine_config(tmp_path)
    assert expected_rank_files(summary, get_version("0.5.0")) == [
        "llama_float16_tp2_rank0.engine",
        "llama_float16_tp2_rank1.engine",
    ]


def test_layout_and_version_naming_must_agree(tmp_path):
    legacy = read_engine_config(_engine_dir(tmp_path, "legacy_0.5.0_llama_tp2_pp2.json"))
    with pytest.raises(EngineConfigError, match="legacy build.py config"):
        expected_rank_files(legacy, get_version("0.14.0"))
    new = read_engine_config(_engine_dir(tmp_path, "trtllm_build_0.14.0_llama_tp2_pp2_fp8.json"))
    with pytest.raises(EngineConfigError, match="came from trtllm-build 0.14.0"):
        expected_rank_files(new, get_version("0.5.0"))


def test_missing_config(tmp_path):
    with pytest.raises(EngineConfigError, match="config.json does not exist"):
        read_engine_config(tmp_path)


def test_invalid_json(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(EngineConfigError, match="not valid JSON"):
        read_engine_config(tmp_path)


def test_unknown_layout_names_its_keys(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model": 1}))
    with pytest.raises(EngineConfigError, match=r"top-level keys are \['model'\]"):
        read_engine_config(tmp_path)


def test_missing_required_key_is_named(tmp_path):
    data = json.loads((SAMPLES / "trtllm_build_0.14.0_llama_tp2_pp2_fp8.json").read_text())
    del data["build_config"]["max_batch_size"]
    (tmp_path / "config.json").write_text(json.dumps(data))
    with pytest.raises(EngineConfigError, match=r"build_config\.max_batch_size is missing"):
        read_engine_config(tmp_path)


def test_inconsistent_world_size_is_rejected(tmp_path):
    data = json.loads((SAMPLES / "trtllm_build_0.14.0_llama_tp2_pp2_fp8.json").read_text())
    data["pretrained_config"]["mapping"]["world_size"] = 2
    (tmp_path / "config.json").write_text(json.dumps(data))
    summary = read_engine_config(tmp_path)
    with pytest.raises(EngineConfigError, match=r"world_size 2 != tp_size 2 × pp_size 2"):
        expected_rank_files(summary, get_version("0.14.0"))


def _write(tmp_path: Path, data: dict) -> Path:
    (tmp_path / "config.json").write_text(json.dumps(data))
    return tmp_path


def _sample(name: str) -> dict:
    return json.loads((SAMPLES / name).read_text())


def test_legacy_rank_file_names_come_from_name_and_precision(tmp_path):
    data = _sample("legacy_0.5.0_llama_tp2_pp2.json")
    data["builder_config"].update(name="gpt", precision="bfloat16", pipeline_parallel=1)
    summary = read_engine_config(_write(tmp_path, data))
    assert (summary.name, summary.dtype, summary.cp_size) == ("gpt", "bfloat16", 1)
    assert rank_file_names(summary) == ["gpt_bfloat16_tp2_rank0.engine", "gpt_bfloat16_tp2_rank1.engine"]


def test_context_parallel_ranks(tmp_path):
    data = _sample("trtllm_build_0.14.0_llama_tp2_pp2_fp8.json")
    data["pretrained_config"]["mapping"].update(cp_size=2, world_size=8)
    summary = read_engine_config(_write(tmp_path, data))
    assert (summary.tp_size, summary.pp_size, summary.cp_size, summary.world_size) == (2, 2, 2, 8)
    assert expected_rank_files(summary, get_version("0.14.0")) == [f"rank{r}.engine" for r in range(8)]
    del data["pretrained_config"]["mapping"]["world_size"]
    assert read_engine_config(_write(tmp_path, data)).world_size == 8
    data["pretrained_config"]["mapping"]["world_size"] = 4
    with pytest.raises(EngineConfigError, match=r"world_size 4 != tp_size 2 × pp_size 2 × cp_size 2"):
        expected_rank_files(read_engine_config(_write(tmp_path, data)), get_version("0.14.0"))


def test_pre_0_11_max_output_len_gives_max_seq_len(tmp_path):
    data = _sample("trtllm_build_0.14.0_llama_tp2_pp2_fp8.json")
    del data["build_config"]["max_seq_len"]
    data["build_config"]["max_output_len"] = 512
    summary = read_engine_config(_write(tmp_path, data))
    assert (summary.max_input_len, summary.max_output_len, summary.max_seq_len) == (2048, 512, 2560)


def test_trtllm_build_config_needs_a_real_version(tmp_path):
    data = _sample("trtllm_build_0.14.0_llama_tp2_pp2_fp8.json")
    data["version"] = "none"
    with pytest.raises(EngineConfigKeyError, match=r"version='none'.*must record the TensorRT-LLM version"):
        read_engine_config(_write(tmp_path, data))
    del data["version"]
    with pytest.raises(EngineConfigKeyError, match=r"key version is missing"):
        read_engine_config(_write(tmp_path, data))


def test_legacy_missing_keys_are_named_together(tmp_path):
    data = _sample("legacy_0.5.0_llama_tp2_pp2.json")
    del data["builder_config"]["name"], data["builder_config"]["max_output_len"]
    with pytest.raises(
        EngineConfigKeyError, match=r"keys builder_config\.name, builder_config\.max_output_len are missing"
    ):
        read_engine_config(_write(tmp_path, data))


def test_legacy_layout_needs_plugin_config(tmp_path):
    data = _sample("legacy_0.5.0_llama_tp2_pp2.json")
    del data["plugin_config"]
    with pytest.raises(EngineConfigLayoutError) as info:
        read_engine_config(_write(tmp_path, data))
    assert info.value.top_level_keys == ["builder_config"]


def test_non_integer_limit_is_named(tmp_path):
    data = _sample("trtllm_build_0.14.0_llama_tp2_pp2_fp8.json")
    data["build_config"]["max_batch_size"] = "64x"
    with pytest.raises(EngineConfigKeyError, match=r"build_config\.max_batch_size='64x' is not an integer"):
        read_engine_config(_write(tmp_path, data))


def test_legacy_version_none_means_unversioned(tmp_path):
    data = _sample("legacy_0.5.0_llama_tp2_pp2.json")
    data["version"] = "none"
    assert read_engine_config(_write(tmp_path, data)).trtllm_version is None
