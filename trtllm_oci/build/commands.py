"""Exact argv for quantize / convert / build, per TensorRT-LLM version.

Every flag comes from the version table (trtllm_oci/data/trtllm_versions.yaml), where each script's flag
list cites the upstream argparse it was checked in; `_Argv.flag` refuses a flag that is not listed, so a
builder cannot emit a flag the pinned version does not parse.

Paths: examples scripts are relative to a TensorRT-LLM checkout at the version's `source_tag`
(`trtllm_src_dir`), trtllm-build is the console script installed in the serving image.
"""

from __future__ import annotations

import posixpath
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from trtllm_oci.errors import InputError
from trtllm_oci.versions import DEFAULT_TRTLLM_VERSION, ScriptFlags, TrtllmVersion, get_version

# The quantizations ModelOpt (examples/quantization/quantize.py) produces; the rest go through convert_checkpoint.
_QUANTIZE_PY_QFORMATS = {"fp8", "int8_sq", "int4_awq", "w4a8_awq"}
# Weight-only via convert_checkpoint.py --use_weight_only --weight_only_precision <x>.
_WEIGHT_ONLY_PRECISION = {"int8_wo": "int8", "int4_wo": "int4"}
# quantize.py --qformat for a quantization done without ModelOpt when the KV cache is quantized too: upstream
# documents KV-cache quantization as quantize.py --kv_cache_dtype (examples/quantization/README.md), which
# calibrates the KV scales; convert_checkpoint's --fp8_kv_cache writes none.
_QFORMAT_FOR_KV_ONLY = {"none": "full_prec", "int8_wo": "int8_wo", "int4_wo": "int4_wo"}

CHECKPOINT_SUBDIR = "checkpoint"
ENGINE_SUBDIR = "engine"


class UnsupportedBuildError(InputError):
    """A (version, family, quantization, KV cache, parallelism) combination this version cannot build."""


class BuildLimits(BaseModel):
    """Engine build-time maxima; the runtime can never exceed them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_batch_size: int = Field(gt=0)
    max_input_len: int = Field(gt=0)
    max_seq_len: int = Field(gt=0, description="prompt + generated tokens")
    max_num_tokens: int = Field(gt=0, description="tokens per batch after padding removal")

    @model_validator(mode="after")
    def _input_fits_in_sequence(self) -> BuildLimits:
        if self.max_input_len >= self.max_seq_len:
            raise InputError(
                f"max_input_len ({self.max_input_len}) must be below max_seq_len ({self.max_seq_len}) "
                "so at least one token can be generated; raise max_seq_len or lower max_input_len"
            )
        return self

    @property
    def max_output_len(self) -> int:
        return self.max_seq_len - self.max_input_len


class BuildStep(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Literal["quantize", "convert", "build"]
    argv: list[str]
    outputs: list[str] = Field(description="Directories the step writes")


class _Argv:
    """argv for one script; only flags the version table lists for that script are accepted."""

    def __init__(self, version: TrtllmVersion, script_key: str, prefix: list[str]):
        self._version = version
        self._script: ScriptFlags = version.script(script_key)
        self._key = script_key
        self.argv = list(prefix)

    def flag(self, name: str, *values: object) -> _Argv:
        if name not in self._script.flags:
            # A programming error, not a user error: the table is the contract with upstream.
            raise AssertionError(
                f"{name} is not in the checked flag list of {self._key} for TensorRT-LLM "
                f"{self._version.version} ({self._script.checked_in})"
            )
        self.argv.append(name)
        self.argv.extend(str(v) for v in values)
        return self


def _unsupported(version: TrtllmVersion, what: str, alternatives: str) -> UnsupportedBuildError:
    return UnsupportedBuildError(f"TensorRT-LLM {version.version}: {what} is not supported. {alternatives}")


def _check_combo(
    version: TrtllmVersion, family: str, quant: str, kv_cache_dtype: str, tp: int, pp: int, dtype: str
) -> None:
    if tp < 1 or pp < 1:
        raise UnsupportedBuildError(f"tp and pp must be >= 1, got tp={tp} pp={pp}")
    if family not in version.families:
        others = [v for v in _all_versions() if family in get_version(v).families]
        raise _unsupported(
            version,
            f"model family {family!r}",
            f"Families here: {sorted(version.families)}; versions that build {family}: {others or 'none'}.",
        )
    support = version.families[family]
    if quant not in support.quantizations:
        others = [
            v
            for v in _all_versions()
            if quant in getattr(get_version(v).families.get(family), "quantizations", ())
        ]
        raise _unsupported(
            version,
            f"quantization {quant!r} for {family}",
            f"Supported quantizations for {family}: {list(support.quantizations)}; "
            f"versions with {quant} for {family}: {others or 'none'}.",
        )
    if kv_cache_dtype not in support.kv_cache_dtypes:
        raise _unsupported(
            version,
            f"KV cache dtype {kv_cache_dtype!r} for {family}",
            f"Supported KV cache dtypes: {list(support.kv_cache_dtypes)}; use kv_cache_dtype=auto "
            f"or a newer version ({[v for v in _all_versions() if v != version.version]}).",
        )
    if dtype not in version.dtypes:
        raise _unsupported(version, f"dtype {dtype!r}", f"Use one of {list(version.dtypes)}.")


def _all_versions() -> list[str]:
    from trtllm_oci.versions import supported_versions

    return supported_versions()


def _quantize_flags(version: str) -> tuple[str, ...]:
    script = get_version(version).scripts.get("quantize")
    return script.flags if script is not None else ()


def _plugin_value(version: TrtllmVersion, script_key: str, requested: str | None, dtype: str) -> str:
    choices = version.script(script_key).plugin_choices
    value = dtype if requested is None else requested
    if value not in choices:
        raise _unsupported(
            version,
            f"plugin value {value!r}",
            f"{script_key} accepts {list(choices)} (None means the model dtype).",
        )
    return value


class StepsRequest(BaseModel):
    """Everything the quantize/convert/build argv depends on; `plan_build_steps` turns it into the steps."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    family: str = Field(description="Model family of the version table (llama, mistral, mixtral, falcon, qwen2)")
    quantization: str = Field(description="The spec's Quantization value")
    kv_cache_dtype: str = Field(description="The spec's KvCacheDtype value")
    tp: int  # checked by the combination check, which names the version's alternatives
    pp: int
    limits: BuildLimits
    version: str = DEFAULT_TRTLLM_VERSION
    dtype: str = Field(description="The concrete engine dtype (precision.resolve_dtype resolves auto)")
    calib_size: int = 512
    calib_dataset: str | None = Field(default=None, description="Calibration set path inside the build container")
    workers: int = 1
    gemm_plugin: str | None = None
    gpt_attention_plugin: str | None = None
    model_dir: str = Field(description="The Hugging Face checkpoint as the steps see it")
    work_dir: str = Field(description="Where the steps write checkpoint/ and engine/")
    trtllm_src_dir: str = "/opt/tensorrt_llm"
    python: str = "python3"


def plan_build_steps(request: StepsRequest) -> list[BuildStep]:
    """The commands that turn an HF model dir into engines under `<work_dir>/engine`.

    `calib_dataset`: path (inside the build container) of the calibration set quantize.py reads instead of
    downloading cnn_dailymail; None keeps upstream's default.
    `gemm_plugin`/`gpt_attention_plugin`: None means the model dtype; "disable" turns the plugin off where
    the version allows it. Raises UnsupportedBuildError for combinations the version cannot build.
    """
    r = request
    facts_family, model_dir, work_dir, tp, pp, limits, dtype = (r.family, r.model_dir, r.work_dir, r.tp, r.pp,
                                                                r.limits, r.dtype)
    calib_size, calib_dataset, workers = r.calib_size, r.calib_dataset, r.workers
    gemm_plugin, gpt_attention_plugin, trtllm_src_dir, python = (r.gemm_plugin, r.gpt_attention_plugin,
                                                                 r.trtllm_src_dir, r.python)
    quant, kv_cache_dtype = r.quantization, r.kv_cache_dtype
    entry = get_version(r.version)
    _check_combo(entry, facts_family, quant, kv_cache_dtype, tp, pp, dtype)
    if calib_size < 1 or workers < 1:
        raise UnsupportedBuildError(f"calib_size and workers must be >= 1, got {calib_size} and {workers}")
    engine_dir = posixpath.join(work_dir, ENGINE_SUBDIR)
    if entry.dialect == "legacy_build_py":
        return [
            _legacy_build(
                entry,
                facts_family,
                model_dir,
                engine_dir,
                quant,
                tp,
                pp,
                limits,
                dtype,
                workers,
                gemm_plugin,
                gpt_attention_plugin,
                trtllm_src_dir,
                python,
            )
        ]
    checkpoint_dir = posixpath.join(work_dir, CHECKPOINT_SUBDIR)
    steps = [
        _checkpoint_step(
            entry,
            facts_family,
            model_dir,
            checkpoint_dir,
            quant,
            kv_cache_dtype,
            tp,
            pp,
            dtype,
            calib_size,
            calib_dataset,
            workers,
            trtllm_src_dir,
            python,
        )
    ]
    steps.append(
        _trtllm_build(
            entry,
            checkpoint_dir,
            engine_dir,
            tp,
            pp,
            limits,
            dtype,
            workers,
            gemm_plugin,
            gpt_attention_plugin,
        )
    )
    return steps


def _script_prefix(entry: TrtllmVersion, key: str, trtllm_src_dir: str, python: str) -> list[str]:
    return [python, posixpath.join(trtllm_src_dir, entry.script(key).path)]


def _checkpoint_step(
    entry: TrtllmVersion,
    family: str,
    model_dir: str,
    checkpoint_dir: str,
    quant: str,
    kv_cache_dtype: str,
    tp: int,
    pp: int,
    dtype: str,
    calib_size: int,
    calib_dataset: str | None,
    workers: int,
    trtllm_src_dir: str,
    python: str,
) -> BuildStep:
    convert_key = entry.family(family).script
    if quant in _QUANTIZE_PY_QFORMATS or kv_cache_dtype != "auto":
        qformat = quant if quant in _QUANTIZE_PY_QFORMATS else _QFORMAT_FOR_KV_ONLY[quant]
        quantize = entry.script("quantize")
        if qformat not in quantize.qformats:
            raise _unsupported(
                entry, f"quantize.py --qformat {qformat}", f"quantize.py accepts {list(quantize.qformats)}."
            )
        argv = _Argv(entry, "quantize", _script_prefix(entry, "quantize", trtllm_src_dir, python))
        argv.flag("--model_dir", model_dir).flag("--dtype", dtype).flag("--qformat", qformat)
        if kv_cache_dtype != "auto":
            argv.flag("--kv_cache_dtype", kv_cache_dtype)
        argv.flag("--calib_size", calib_size)
        if calib_dataset is not None:
            if "--calib_dataset" not in quantize.flags:
                with_flag = [v for v in _all_versions() if "--calib_dataset" in _quantize_flags(v)]
                raise _unsupported(
                    entry,
                    "a calibration dataset (quantize.py has no --calib_dataset here; it downloads cnn_dailymail)",
                    f"Mount a Hugging Face cache that holds cnn_dailymail (HF_HOME) instead, or use {with_flag}.",
                )
            argv.flag("--calib_dataset", calib_dataset)
        argv.flag("--tp_size", tp).flag("--pp_size", pp)
        argv.flag("--output_dir", checkpoint_dir)
        return BuildStep(name="quantize", argv=argv.argv, outputs=[checkpoint_dir])

    argv = _Argv(entry, convert_key, _script_prefix(entry, convert_key, trtllm_src_dir, python))
    argv.flag("--model_dir", model_dir).flag("--output_dir", checkpoint_dir).flag("--dtype", dtype)
    argv.flag("--tp_size", tp).flag("--pp_size", pp)
    if quant in _WEIGHT_ONLY_PRECISION:
        argv.flag("--use_weight_only").flag("--weight_only_precision", _WEIGHT_ONLY_PRECISION[quant])
    argv.flag("--workers", workers)
    return BuildStep(name="convert", argv=argv.argv, outputs=[checkpoint_dir])


def _trtllm_build(
    entry: TrtllmVersion,
    checkpoint_dir: str,
    engine_dir: str,
    tp: int,
    pp: int,
    limits: BuildLimits,
    dtype: str,
    workers: int,
    gemm_plugin: str | None,
    gpt_attention_plugin: str | None,
) -> BuildStep:
    argv = _Argv(entry, "trtllm_build", [entry.script("trtllm_build").path])
    argv.flag("--checkpoint_dir", checkpoint_dir).flag("--output_dir", engine_dir)
    if entry.build_applies_tp_pp:
        argv.flag("--tp_size", tp).flag("--pp_size", pp)
    argv.flag("--max_batch_size", limits.max_batch_size).flag("--max_input_len", limits.max_input_len)
    # The version table's validator guarantees both for convert_then_build versions.
    assert entry.max_length_flag is not None and entry.kv_cache_layout is not None
    if entry.max_length_flag == "--max_output_len":
        argv.flag("--max_output_len", limits.max_output_len)
    else:
        argv.flag(entry.max_length_flag, limits.max_seq_len)
    argv.flag("--max_num_tokens", limits.max_num_tokens)
    argv.flag("--gemm_plugin", _plugin_value(entry, "trtllm_build", gemm_plugin, dtype))
    argv.flag("--gpt_attention_plugin", _plugin_value(entry, "trtllm_build", gpt_attention_plugin, dtype))
    argv.flag(entry.kv_cache_layout.flag, entry.kv_cache_layout.value)
    # Both are boolean plugin options parsed as enable/disable strings (plugin.py add_plugin_argument).
    argv.flag("--remove_input_padding", "enable").flag("--context_fmha", "enable")
    argv.flag("--workers", min(workers, tp * pp))
    return BuildStep(name="build", argv=argv.argv, outputs=[engine_dir])


def _legacy_build(
    entry: TrtllmVersion,
    family: str,
    model_dir: str,
    engine_dir: str,
    quant: str,
    tp: int,
    pp: int,
    limits: BuildLimits,
    dtype: str,
    workers: int,
    gemm_plugin: str | None,
    gpt_attention_plugin: str | None,
    trtllm_src_dir: str,
    python: str,
) -> BuildStep:
    key = entry.family(family).script
    argv = _Argv(entry, key, _script_prefix(entry, key, trtllm_src_dir, python))
    argv.flag("--model_dir", model_dir).flag("--dtype", dtype)
    if gpt_attention_plugin == "disable":
        # build.py --use_inflight_batching turns the GPT attention plugin back on; Triton's inflight batcher needs it.
        raise _unsupported(
            entry, "gpt_attention_plugin='disable'", "In-flight batching needs the GPT attention plugin."
        )
    argv.flag("--use_gpt_attention_plugin", _plugin_value(entry, key, gpt_attention_plugin, dtype))
    if gemm_plugin != "disable":
        argv.flag("--use_gemm_plugin", _plugin_value(entry, key, gemm_plugin, dtype))
    # --use_inflight_batching would switch these on anyway (examples/llama/build.py@v0.5.0 parse_arguments); explicit for the record.
    argv.flag("--use_inflight_batching").flag("--paged_kv_cache").flag("--remove_input_padding")
    argv.flag("--enable_context_fmha")
    argv.flag("--world_size", tp * pp).flag("--tp_size", tp).flag("--pp_size", pp)
    argv.flag("--max_batch_size", limits.max_batch_size).flag("--max_input_len", limits.max_input_len)
    argv.flag("--max_output_len", limits.max_output_len).flag("--max_num_tokens", limits.max_num_tokens)
    if quant in _WEIGHT_ONLY_PRECISION:
        argv.flag("--use_weight_only").flag("--weight_only_precision", _WEIGHT_ONLY_PRECISION[quant])
    if workers > 1 and tp * pp > 1:
        argv.flag("--parallel_build")
    argv.flag("--output_dir", engine_dir)
    return BuildStep(name="build", argv=argv.argv, outputs=[engine_dir])
