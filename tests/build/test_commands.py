"""Golden argv per TensorRT-LLM version, flag-table checks against upstream flag lists, unsupported combos."""

from __future__ import annotations

from pathlib import Path

import pytest

from trtllm_oci.build.commands import BuildLimits, StepsRequest, UnsupportedBuildError, plan_build_steps
from trtllm_oci.versions import get_version, load_version_table, supported_versions

FLAG_DIR = Path(__file__).resolve().parents[1] / "data" / "trtllm_cli_flags"
LIMITS = BuildLimits(max_batch_size=64, max_input_len=2048, max_seq_len=4096, max_num_tokens=8192)
SRC = "/opt/tensorrt_llm"


def plan(family, quant, kv="auto", tp=1, pp=1, version="0.14.0", dtype="float16", **kw):
    return plan_build_steps(StepsRequest(
        family=family, model_dir="/models/hf", work_dir="/work", quantization=quant, kv_cache_dtype=kv, tp=tp, pp=pp,
        limits=LIMITS, version=version, dtype=dtype, **kw))


def build_tail(
    max_len_flag: str, max_len: int, kv_flag: str, kv_value: str, plugin: str = "float16"
) -> list[str]:
    return [
        "--max_batch_size",
        "64",
        "--max_input_len",
        "2048",
        max_len_flag,
        str(max_len),
        "--max_num_tokens",
        "8192",
        "--gemm_plugin",
        plugin,
        "--gpt_attention_plugin",
        plugin,
        kv_flag,
        kv_value,
        "--remove_input_padding",
        "enable",
        "--context_fmha",
        "enable",
    ]


# ---- golden argv -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "convert_path", "max_len_flag", "max_len", "kv_flag", "kv_value"),
    [
        (
            "0.9.0",
            "examples/llama/convert_checkpoint.py",
            "--max_output_len",
            2048,
            "--paged_kv_cache",
            "enable",
        ),
        (
            "0.12.0",
            "examples/llama/convert_checkpoint.py",
            "--max_seq_len",
            4096,
            "--paged_kv_cache",
            "enable",
        ),
        ("0.14.0", "examples/llama/convert_checkpoint.py", "--max_seq_len", 4096, "--kv_cache_type", "paged"),
        (
            "1.2.1",
            "examples/models/core/llama/convert_checkpoint.py",
            "--max_seq_len",
            4096,
            "--kv_cache_type",
            "paged",
        ),
    ],
)
def test_llama_fp16_tp2_converts_with_parallelism_and_builds_without_it(
    version, convert_path, max_len_flag, max_len, kv_flag, kv_value
):
    steps = plan("llama", "none", tp=2, version=version, workers=2)
    assert [s.name for s in steps] == ["convert", "build"]
    assert steps[0].argv == [
        "python3",
        f"{SRC}/{convert_path}",
        "--model_dir",
        "/models/hf",
        "--output_dir",
        "/work/checkpoint",
        "--dtype",
        "float16",
        "--tp_size",
        "2",
        "--pp_size",
        "1",
        "--workers",
        "2",
    ]
    assert steps[1].argv == (
        ["trtllm-build", "--checkpoint_dir", "/work/checkpoint", "--output_dir", "/work/engine"]
        + build_tail(max_len_flag, max_len, kv_flag, kv_value)
        + ["--workers", "2"]
    )
    assert steps[0].outputs == ["/work/checkpoint"] and steps[1].outputs == ["/work/engine"]


def test_llama_int4_weight_only_uses_convert_weight_only_flags():
    convert, build = plan("llama", "int4_wo", version="1.2.1")
    assert convert.argv[-5:] == ["--use_weight_only", "--weight_only_precision", "int4", "--workers", "1"]
    assert "--tp_size" not in build.argv and "--use_weight_only" not in build.argv


def test_mixtral_fp8_tp2_pp1_goes_through_quantize_py():
    quantize, build = plan("mixtral", "fp8", kv="fp8", tp=2, pp=1, version="0.14.0")
    assert quantize.name == "quantize"
    assert quantize.argv == [
        "python3",
        f"{SRC}/examples/quantization/quantize.py",
        "--model_dir",
        "/models/hf",
        "--dtype",
        "float16",
        "--qformat",
        "fp8",
        "--kv_cache_dtype",
        "fp8",
        "--calib_size",
        "512",
        "--tp_size",
        "2",
        "--pp_size",
        "1",
        "--output_dir",
        "/work/checkpoint",
    ]
    assert build.argv[:5] == [
        "trtllm-build",
        "--checkpoint_dir",
        "/work/checkpoint",
        "--output_dir",
        "/work/engine",
    ]


def test_falcon_int8_weight_only_uses_falcon_script_per_version():
    old = plan("falcon", "int8_wo", version="0.14.0")[0]
    new = plan("falcon", "int8_wo", version="1.2.1")[0]
    assert old.argv[1] == f"{SRC}/examples/falcon/convert_checkpoint.py"
    assert new.argv[1] == f"{SRC}/examples/models/contrib/falcon/convert_checkpoint.py"
    assert new.argv[2:] == [
        "--model_dir",
        "/models/hf",
        "--output_dir",
        "/work/checkpoint",
        "--dtype",
        "float16",
        "--tp_size",
        "1",
        "--pp_size",
        "1",
        "--use_weight_only",
        "--weight_only_precision",
        "int8",
        "--workers",
        "1",
    ]


def test_llama_int4_awq_with_int8_kv_cache_quantizes_both_in_one_step():
    quantize, _ = plan("llama", "int4_awq", kv="int8", tp=2, version="0.9.0", calib_size=64)
    assert quantize.argv[2:] == [
        "--model_dir",
        "/models/hf",
        "--dtype",
        "float16",
        "--qformat",
        "int4_awq",
        "--kv_cache_dtype",
        "int8",
        "--calib_size",
        "64",
        "--tp_size",
        "2",
        "--pp_size",
        "1",
        "--output_dir",
        "/work/checkpoint",
    ]


@pytest.mark.parametrize("version", ["0.9.0", "0.12.0", "0.14.0", "1.2.1"])
@pytest.mark.parametrize(("quant", "qformat"), [("none", "full_prec"), ("int8_wo", "int8_wo"), ("int4_wo", "int4_wo")])
@pytest.mark.parametrize("kv", ["int8", "fp8"])
def test_kv_cache_quantization_goes_through_calibrated_quantize_py(version, quant, qformat, kv):
    # Upstream documents KV-cache quantization as quantize.py --kv_cache_dtype (calibrated scales), not
    # convert_checkpoint --int8_kv_cache/--fp8_kv_cache (fp8: no scales at all).
    step = plan("llama", quant, kv=kv, version=version)[0]
    assert step.name == "quantize"
    assert step.argv[step.argv.index("--qformat") + 1] == qformat
    assert step.argv[step.argv.index("--kv_cache_dtype") + 1] == kv
    assert not {"--int8_kv_cache", "--fp8_kv_cache"} & set(step.argv)


def test_dtype_reaches_every_step_and_the_plugins():
    convert, build = plan("llama", "none", version="1.2.1", dtype="bfloat16")
    assert convert.argv[convert.argv.index("--dtype") + 1] == "bfloat16"
    assert build.argv[build.argv.index("--gemm_plugin") + 1] == "bfloat16"
    assert build.argv[build.argv.index("--gpt_attention_plugin") + 1] == "bfloat16"
    quantize = plan("llama", "fp8", version="1.2.1", dtype="bfloat16")[0]
    assert quantize.argv[quantize.argv.index("--dtype") + 1] == "bfloat16"
    legacy = plan("llama", "none", version="0.5.0", dtype="bfloat16")[0]
    assert legacy.argv[legacy.argv.index("--dtype") + 1] == "bfloat16"


def test_calibration_dataset_is_passed_to_quantize_py_where_it_has_the_flag():
    step = plan("llama", "int4_awq", version="1.2.1", calib_dataset="/calib/cnn_dailymail")[0]
    assert step.argv[step.argv.index("--calib_dataset") + 1] == "/calib/cnn_dailymail"
    assert "--calib_dataset" not in plan("llama", "none", version="1.2.1", calib_dataset="/calib/x")[0].argv
    with pytest.raises(UnsupportedBuildError, match=r"0\.9\.0: a calibration dataset .*HF_HOME.*\['0\.12\.0'"):
        plan("llama", "fp8", version="0.9.0", calib_dataset="/calib/x")


def test_legacy_0_5_0_is_one_build_py_step_with_world_size():
    steps = plan("llama", "int8_wo", tp=2, version="0.5.0", workers=2)
    assert len(steps) == 1 and steps[0].name == "build"
    assert steps[0].argv == [
        "python3",
        f"{SRC}/examples/llama/build.py",
        "--model_dir",
        "/models/hf",
        "--dtype",
        "float16",
        "--use_gpt_attention_plugin",
        "float16",
        "--use_gemm_plugin",
        "float16",
        "--use_inflight_batching",
        "--paged_kv_cache",
        "--remove_input_padding",
        "--enable_context_fmha",
        "--world_size",
        "2",
        "--tp_size",
        "2",
        "--pp_size",
        "1",
        "--max_batch_size",
        "64",
        "--max_input_len",
        "2048",
        "--max_output_len",
        "2048",
        "--max_num_tokens",
        "8192",
        "--use_weight_only",
        "--weight_only_precision",
        "int8",
        "--parallel_build",
        "--output_dir",
        "/work/engine",
    ]


def test_plugin_choice_is_validated_per_version():
    build = plan("llama", "none", version="0.14.0", gemm_plugin="auto")[1]
    assert build.argv[build.argv.index("--gemm_plugin") + 1] == "auto"
    with pytest.raises(UnsupportedBuildError, match=r"0\.9\.0: plugin value 'auto'"):
        plan("llama", "none", version="0.9.0", gemm_plugin="auto")


def test_legacy_gemm_plugin_disable_drops_the_flag():
    argv = plan("llama", "none", version="0.5.0", gemm_plugin="disable")[0].argv
    assert "--use_gemm_plugin" not in argv


# ---- every emitted flag is in the table, and the table is a subset of upstream's argparse ------------------


def _upstream_flags(version: str, script_key: str) -> set[str]:
    path = FLAG_DIR / version / f"{script_key}.txt"
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("# source:"), f"{path} lacks its source header"
    return {line for line in lines[1:] if line}


@pytest.mark.parametrize("version", supported_versions())
def test_table_flags_are_a_subset_of_upstream_argparse(version):
    entry = get_version(version)
    for key, script in entry.scripts.items():
        missing = set(script.flags) - _upstream_flags(version, key)
        assert not missing, f"{version} {key}: {sorted(missing)} not in upstream {script.checked_in}"


def _flags(argv: list[str]) -> list[str]:
    return [a for a in argv if a.startswith("--")]


def _script_key_of(version, step) -> str:
    entry = get_version(version)
    if step.argv[0] == "trtllm-build":
        return "trtllm_build"
    matches = [k for k, s in entry.scripts.items() if step.argv[1].endswith("/" + s.path)]
    assert len(matches) == 1, step.argv[1]
    return matches[0]


@pytest.mark.parametrize("version", supported_versions())
def test_every_flag_any_builder_emits_is_listed_for_its_script(version):
    entry = get_version(version)
    seen = 0
    for family, support in entry.families.items():
        for quant in support.quantizations:
            for kv in support.kv_cache_dtypes:
                for tp, pp in ((1, 1), (2, 2)):
                    for step in plan(family, quant, kv=kv, tp=tp, pp=pp, version=version, workers=4):
                        key = _script_key_of(version, step)
                        listed = set(entry.scripts[key].flags)
                        assert set(_flags(step.argv)) <= listed, (family, quant, kv, step.argv)
                        assert set(_flags(step.argv)) <= _upstream_flags(version, key)
                        seen += 1
    assert seen > 0


# ---- unsupported combinations ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            dict(family="llama", quant="fp8", version="0.5.0"),
            r"0\.5\.0: quantization 'fp8' for llama.*versions with fp8",
        ),
        (
            dict(family="falcon", quant="int8_sq", version="0.14.0"),
            r"0\.14\.0: quantization 'int8_sq' for falcon.*\['none'",
        ),
        (
            dict(family="llama", quant="w4a8_awq", version="0.5.0"),
            r"'w4a8_awq'.*\['0\.9\.0', '0\.12\.0', '0\.14\.0', '1\.2\.1'\]",
        ),
        (
            dict(family="qwen2", quant="none", version="0.9.0"),
            r"0\.9\.0: model family 'qwen2'.*\['0\.12\.0', '0\.14\.0', '1\.2\.1'\]",
        ),
        (dict(family="mixtral", quant="none", version="0.5.0"), r"0\.5\.0: model family 'mixtral'"),
        (
            dict(family="falcon", quant="int8_wo", version="0.5.0"),
            r"0\.5\.0: quantization 'int8_wo' for falcon",
        ),
        (dict(family="llama", quant="none", kv="int8", version="0.5.0"), r"0\.5\.0: KV cache dtype 'int8'"),
        (
            dict(family="mixtral", quant="int8_sq", version="1.2.1"),
            r"1\.2\.1: quantization 'int8_sq' for mixtral",
        ),
        (dict(family="llama", quant="none", version="0.14.0", dtype="int8"), r"dtype 'int8'.*float16"),
        (dict(family="llama", quant="none", version="0.14.0", tp=0), r"tp=0"),
        (
            dict(family="llama", quant="none", version="0.5.0", gpt_attention_plugin="disable"),
            r"In-flight batching",
        ),
    ],
)
def test_unsupported_combinations_name_version_combo_and_alternatives(kwargs, message):
    kwargs = dict(kwargs)
    family, quant = kwargs.pop("family"), kwargs.pop("quant")
    with pytest.raises(UnsupportedBuildError, match=message):
        plan(family, quant, **kwargs)


def test_unknown_version_lists_supported_ones():
    with pytest.raises(ValueError, match=r"'0\.7\.1' is not supported; choose one of \['0\.5\.0', '0\.9\.0'"):
        plan("llama", "none", version="0.7.1")


def test_limits_reject_input_not_below_sequence():
    with pytest.raises(ValueError, match="max_input_len .4096. must be below max_seq_len .4096."):
        BuildLimits(max_batch_size=1, max_input_len=4096, max_seq_len=4096, max_num_tokens=4096)


def test_every_family_and_quant_in_the_table_plans_without_error():
    table = load_version_table()
    for entry in table.versions:
        for family, support in entry.families.items():
            for quant in support.quantizations:
                assert plan(family, quant, version=entry.version)[-1].name == "build"
