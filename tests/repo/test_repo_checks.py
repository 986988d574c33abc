from __future__ import annotations

import json

import pytest

from tests.repo.fake_engines import write_legacy_engine, write_tokenizer_dir, write_trtllm_build_engine
from trtllm_oci.repo.checks import (
    RepoCheckError,
    check_engine_version,
    check_max_batch_size,
    check_rank_files,
    check_request_budget,
    check_streaming_decoupled,
    check_tokenizer_dir,
    check_world_size,
    read_engine_summary,
    run_prestart_checks,
)


def test_trtllm_build_layout_facts(tmp_path):
    engine_dir = write_trtllm_build_engine(tmp_path / "e", tp=2, pp=2, max_seq_len=4096)
    facts = read_engine_summary(engine_dir)
    assert (facts.layout, facts.tp_size, facts.pp_size, facts.world_size) == ("trtllm_build", 2, 2, 4)
    assert (facts.trtllm_version, facts.max_seq_len) == ("1.2.1", 4096)
    assert check_rank_files(facts, engine_dir) == ["rank0.engine", "rank1.engine", "rank2.engine", "rank3.engine"]


def test_legacy_layout_facts_and_rank_names(tmp_path):
    engine_dir = write_legacy_engine(tmp_path / "e", tp=2, pp=2)
    facts = read_engine_summary(engine_dir)
    assert (facts.layout, facts.world_size, facts.trtllm_version) == ("legacy_build_py", 4, None)
    assert facts.max_seq_len == 512 + 256
    assert check_rank_files(facts, engine_dir)[3] == "llama_float16_tp2_pp2_rank3.engine"
    tp_dir = write_legacy_engine(tmp_path / "tp", name="gpt", tp=2, pp=1)
    facts_tp = read_engine_summary(tp_dir)
    assert check_rank_files(facts_tp, tp_dir) == ["gpt_float16_tp2_rank0.engine", "gpt_float16_tp2_rank1.engine"]


def test_pre_0_11_max_output_len_gives_max_seq_len(tmp_path):
    root = write_trtllm_build_engine(tmp_path / "e", version="0.9.0")
    config = json.loads((root / "config.json").read_text())
    del config["build_config"]["max_seq_len"]
    config["build_config"]["max_output_len"] = 300
    (root / "config.json").write_text(json.dumps(config))
    assert read_engine_summary(root).max_seq_len == 1024 + 300


def test_world_size_mismatch(tmp_path):
    engine_dir = write_trtllm_build_engine(tmp_path / "e", tp=2, pp=2)
    facts = read_engine_summary(engine_dir)
    with pytest.raises(
        RepoCheckError, match=r"world_size=2 but .* tp=2 × pp=2 = 4 ranks; launch with --world_size 4"
    ):
        check_world_size(2, facts, engine_dir)


def test_legacy_world_size_mismatch(tmp_path):
    engine_dir = write_legacy_engine(tmp_path / "e", tp=2)
    facts = read_engine_summary(engine_dir)
    with pytest.raises(RepoCheckError, match=r"world_size=1 but .*= 2 ranks"):
        check_world_size(1, facts, engine_dir)


def test_inconsistent_mapping_is_refused(tmp_path):
    with pytest.raises(RepoCheckError, match=r"mapping.world_size=8 but tp_size×pp_size×cp_size = 2×1×1 = 2"):
        read_engine_summary(write_trtllm_build_engine(tmp_path / "e", tp=2, world_size=8))


def test_engine_version_mismatch(tmp_path):
    engine_dir = write_trtllm_build_engine(tmp_path / "e", version="0.12.0")
    facts = read_engine_summary(engine_dir)
    with pytest.raises(
        RepoCheckError,
        match=r"built by TRT-LLM 0\.12\.0 but the serving image runs TRT-LLM 1\.2\.1; .*Rebuild",
    ):
        check_engine_version("1.2.1", facts, engine_dir)
    check_engine_version("0.12.0", facts, engine_dir)


def test_unversioned_legacy_engine_only_for_legacy_serving(tmp_path):
    engine_dir = write_legacy_engine(tmp_path / "e")
    facts = read_engine_summary(engine_dir)
    check_engine_version("0.5.0", facts, engine_dir)
    with pytest.raises(
        RepoCheckError,
        match=r"records no TRT-LLM 'version' \(legacy-build.py layout\).*rebuild it with trtllm-build",
    ):
        check_engine_version("0.12.0", facts, engine_dir)


def test_missing_rank_file(tmp_path):
    engine_dir = write_trtllm_build_engine(tmp_path / "e", tp=4, ranks=3)
    facts = read_engine_summary(engine_dir)
    with pytest.raises(RepoCheckError, match=r"lacks \['rank3.engine'\] for world size 4"):
        check_rank_files(facts, engine_dir)


def test_missing_legacy_rank_file(tmp_path):
    engine_dir = write_legacy_engine(tmp_path / "e", tp=2, ranks=1)
    facts = read_engine_summary(engine_dir)
    with pytest.raises(RepoCheckError, match=r"lacks \['llama_float16_tp2_rank1.engine'\]"):
        check_rank_files(facts, engine_dir)


def test_no_config_json(tmp_path):
    (tmp_path / "e").mkdir()
    with pytest.raises(RepoCheckError, match=r"has no config.json; point --engine-dir at the trtllm-build"):
        read_engine_summary(tmp_path / "e")


def test_checkpoint_dir_is_not_an_engine_dir(tmp_path):
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "config.json").write_text(
        json.dumps({"architecture": "LlamaForCausalLM", "mapping": {}})
    )
    with pytest.raises(
        RepoCheckError, match=r"neither the trtllm-build layout .* not a HF model or a TRT-LLM checkpoint"
    ):
        read_engine_summary(tmp_path / "ckpt")


def test_corrupt_config_json(tmp_path):
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "config.json").write_text("{not json")
    with pytest.raises(RepoCheckError, match=r"is not valid JSON"):
        read_engine_summary(tmp_path / "e")


def test_tokenizer_dir_without_tokenizer_files(tmp_path):
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "config.json").write_text("{}")
    with pytest.raises(RepoCheckError, match=r"has none of \['tokenizer.json'.*found: \['config.json'\]"):
        check_tokenizer_dir(tmp_path / "t")
    with pytest.raises(RepoCheckError, match=r"does not exist"):
        check_tokenizer_dir(tmp_path / "nope")
    check_tokenizer_dir(write_tokenizer_dir(tmp_path / "ok"))


def test_triton_batch_above_engine_build(tmp_path):
    engine_dir = write_trtllm_build_engine(tmp_path / "e", max_batch_size=16)
    facts = read_engine_summary(engine_dir)
    with pytest.raises(
        RepoCheckError, match=r"triton_max_batch_size=64 exceeds the engine's build max_batch_size=16"
    ):
        check_max_batch_size(64, facts, engine_dir)
    check_max_batch_size(16, facts, engine_dir)


def test_streaming_without_decoupled_and_the_reverse():
    with pytest.raises(RepoCheckError, match=r"streaming requested but \['tensorrt_llm'\] are not decoupled"):
        check_streaming_decoupled(True, {"tensorrt_llm": False})
    with pytest.raises(RepoCheckError, match=r"streaming=False but \['tensorrt_llm_bls'\] are decoupled"):
        check_streaming_decoupled(False, {"tensorrt_llm": False, "tensorrt_llm_bls": True})
    check_streaming_decoupled(True, {"tensorrt_llm": True, "tensorrt_llm_bls": True})


def test_request_budget(tmp_path):
    engine_dir = write_trtllm_build_engine(tmp_path / "e", max_input_len=1024, max_seq_len=2048)
    facts = read_engine_summary(engine_dir)
    check_request_budget(1000, 1048, facts, engine_dir)
    with pytest.raises(
        RepoCheckError,
        match=r"1000 input tokens \+ max_tokens=1049 = 2049 exceeds the engine's max_seq_len=2048 \(.*\); lower max_tokens to 1048",
    ):
        check_request_budget(1000, 1049, facts, engine_dir)
    with pytest.raises(
        RepoCheckError, match=r"prompt of 1025 tokens exceeds the engine's max_input_len=1024"
    ):
        check_request_budget(list(range(1025)), 1, facts, engine_dir)
    with pytest.raises(RepoCheckError, match=r"max_tokens=0 must be >= 1"):
        check_request_budget(10, 0, facts, engine_dir)


def test_run_prestart_checks_names_what_ran(tmp_path):
    engine = write_trtllm_build_engine(tmp_path / "e", tp=2)
    tok = write_tokenizer_dir(tmp_path / "t")
    ran = run_prestart_checks(engine, tok, trtllm_version="1.2.1", triton_max_batch_size=8, streaming=False)
    assert ran == [
        "tokenizer_files",
        "engine_config",
        "world_size",
        "engine_version",
        "rank_files",
        "max_batch_size",
    ]
    assert run_prestart_checks(
        None, tok, trtllm_version="1.2.1", triton_max_batch_size=8, streaming=False
    ) == ["tokenizer_files"]
    with pytest.raises(RepoCheckError, match=r"world_size=1"):
        run_prestart_checks(
            engine, tok, trtllm_version="1.2.1", triton_max_batch_size=8, streaming=False, world_size=1
        )


def test_context_parallel_ranks_count_in_world_size(tmp_path):
    engine_dir = write_trtllm_build_engine(tmp_path / "e", tp=2, cp=2)
    facts = read_engine_summary(engine_dir)
    assert (facts.cp_size, facts.world_size) == (2, 4)
    assert check_rank_files(facts, engine_dir) == [f"rank{r}.engine" for r in range(4)]
    with pytest.raises(RepoCheckError, match=r"world_size=2 but .* tp=2 × pp=1 × cp=2 = 4 ranks"):
        check_world_size(2, facts, engine_dir)
    with pytest.raises(RepoCheckError, match=r"mapping.world_size=2 but tp_size×pp_size×cp_size = 2×1×2 = 4"):
        read_engine_summary(write_trtllm_build_engine(tmp_path / "bad", tp=2, cp=2, world_size=2))


def test_incomplete_legacy_builder_config_names_every_missing_key(tmp_path):
    root = write_legacy_engine(tmp_path / "e")
    config = json.loads((root / "config.json").read_text())
    del config["builder_config"]["name"], config["builder_config"]["precision"]
    (root / "config.json").write_text(json.dumps(config))
    with pytest.raises(
        RepoCheckError,
        match=r"keys builder_config\.name, builder_config\.precision are missing; .*build\.py engine config",
    ):
        read_engine_summary(root)


def test_legacy_config_without_plugin_config_is_not_an_engine_dir(tmp_path):
    root = write_legacy_engine(tmp_path / "e")
    config = json.loads((root / "config.json").read_text())
    del config["plugin_config"]
    (root / "config.json").write_text(json.dumps(config))
    with pytest.raises(RepoCheckError, match=r"neither the trtllm-build layout .*keys found: \['builder_config'\]"):
        read_engine_summary(root)
