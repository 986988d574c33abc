"""Pre-start checks for a Triton TRT-LLM deployment, run on the engine dir's config.json and file names.

Each check raises RepoCheckError naming the bad value and the fix, so a deployment fails here, in seconds,
instead of inside tritonserver on a GPU host (pain points in shared/reference/trtllm_triton.md §4).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from trtllm_oci.build.engine_config import (
    EngineConfigError,
    EngineConfigJsonError,
    EngineConfigLayoutError,
    EngineConfigMissingError,
    EngineConfigSummary,
    rank_file_names,
    read_engine_config,
)
from trtllm_oci.errors import ArtifactError
from trtllm_oci.repo.interface import parse_version

# Files from which transformers' AutoTokenizer can build a tokenizer (tokenizer.json for fast tokenizers,
# sentencepiece models, BPE vocab+merges, WordPiece vocab).
TOKENIZER_MARKERS = ("tokenizer.json", "tokenizer.model", "spiece.model", "vocab.json", "vocab.txt")

# The legacy per-model examples/<m>/build.py layout was the only one before trtllm-build took over
# LLaMA/Mistral/Falcon in 0.8.0 (TL:docs/source/release-notes.md); it has no "version" key.
FIRST_TRTLLM_BUILD_ERA = "0.8.0"


class RepoCheckError(ArtifactError, ValueError):
    """A model repository input would make tritonserver fail at load or at request time."""


# Layout names as the repo CLI's messages spell them.
_LAYOUT_LABELS = {"trtllm_build": "trtllm-build", "legacy_build_py": "legacy-build.py"}


def read_engine_summary(engine_dir: Path) -> EngineConfigSummary:
    """`engine_config.read_engine_config` in the repo CLI's words, refusing an inconsistent tp×pp×cp mapping."""
    config_path = Path(engine_dir) / "config.json"
    try:
        summary = read_engine_config(engine_dir)
    except EngineConfigMissingError:
        raise RepoCheckError(
            f"engine dir {engine_dir} has no config.json; point --engine-dir at the trtllm-build "
            f"--output_dir (the directory holding config.json and rank*.engine)"
        ) from None
    except EngineConfigJsonError as exc:
        raise RepoCheckError(
            f"{config_path} is not valid JSON ({exc.detail}); it must be the config.json written by the engine "
            f"build — rebuild the engine or restore the file"
        ) from exc
    except EngineConfigLayoutError as exc:
        raise RepoCheckError(
            f"{config_path} has neither the trtllm-build layout (pretrained_config + build_config) nor the legacy "
            f"build.py layout (builder_config + plugin_config); keys found: {exc.top_level_keys}. Point "
            f"--engine-dir at a TensorRT-LLM engine directory, not a HF model or a TRT-LLM checkpoint dir"
        ) from exc
    except EngineConfigError as exc:
        raise RepoCheckError(str(exc)) from exc
    tp, pp, cp = summary.tp_size, summary.pp_size, summary.cp_size
    if summary.world_size != tp * pp * cp:
        raise RepoCheckError(
            f"{config_path}: pretrained_config.mapping.world_size={summary.world_size} but tp_size×pp_size×"
            f"cp_size = {tp}×{pp}×{cp} = {tp * pp * cp}; the checkpoint conversion wrote an "
            f"inconsistent mapping — re-run convert_checkpoint/quantize and trtllm-build"
        )
    return summary


def check_world_size(world_size: int, engine: EngineConfigSummary, engine_dir: Path) -> None:
    if world_size != engine.world_size:
        raise RepoCheckError(
            f"world_size={world_size} but the engine in {engine_dir} was built for tp={engine.tp_size} × "
            f"pp={engine.pp_size}"
            + (f" × cp={engine.cp_size}" if engine.cp_size > 1 else "")
            + f" = {engine.world_size} ranks; launch with --world_size {engine.world_size} (one GPU per rank) "
            f"or rebuild the engine for {world_size} GPUs"
        )


def check_engine_version(trtllm_version: str, engine: EngineConfigSummary, engine_dir: Path) -> None:
    """Engines only load in the TRT-LLM (and TensorRT) release that built them."""
    wanted = parse_version(trtllm_version)
    if engine.trtllm_version is None:
        if engine.layout == "legacy_build_py" and wanted < parse_version(FIRST_TRTLLM_BUILD_ERA):
            return  # 0.5–0.7 build.py engines carry no version; nothing to compare.
        raise RepoCheckError(
            f"engine config.json in {engine_dir} records no TRT-LLM 'version' ({_LAYOUT_LABELS[engine.layout]} "
            f"layout), so it cannot be matched to serving TRT-LLM {trtllm_version}; rebuild it with trtllm-build "
            f"inside the serving image's TRT-LLM {trtllm_version}"
        )
    if parse_version(engine.trtllm_version) != wanted:
        raise RepoCheckError(
            f"engine in {engine_dir} was built by TRT-LLM {engine.trtllm_version} but the serving image runs "
            f"TRT-LLM {trtllm_version}; engines do not load across versions (serialization assertion). Rebuild "
            f"the engine with TRT-LLM {trtllm_version}, or set trtllm_version={engine.trtllm_version!r}"
        )


def _some(names: list[str], shown: int = 8) -> str:
    """A list of file names for a message: the first few and how many there are in all."""
    if len(names) <= shown:
        return str(names)
    return f"{names[:shown]} … ({len(names)} in all)"


def check_rank_files(engine: EngineConfigSummary, engine_dir: Path) -> list[str]:
    engine_dir = Path(engine_dir)
    expected = rank_file_names(engine)
    missing = [name for name in expected if not (engine_dir / name).is_file()]
    if missing:
        present = sorted(p.name for p in engine_dir.glob("*.engine"))
        raise RepoCheckError(
            f"engine dir {engine_dir} lacks {_some(missing)} for world size {engine.world_size} "
            f"({_LAYOUT_LABELS[engine.layout]} layout; present: {_some(present) if present else 'no .engine files'}); "
            f"re-run the build for all {engine.world_size} ranks or point --engine-dir at the complete output dir"
        )
    return expected


def check_engine_runs_on_gpu(
    engine: EngineConfigSummary, engine_dir: Path, compute_capability: tuple[int, int], gpu_label: str
) -> None:
    """An engine whose precision the serving GPU has no kernels for fails at load; say so before writing."""
    from trtllm_oci.build.precision import UnsupportedPrecisionError, check_precision_on_gpu

    fp8_weights = "FP8" in (engine.quant_algo or "").upper()
    kv = "fp8" if "FP8" in (engine.kv_cache_quant_algo or "").upper() else "auto"
    try:
        check_precision_on_gpu(
            engine.dtype, fp8_weights=fp8_weights, kv_cache_dtype=kv,
            compute_capability=compute_capability, gpu_label=gpu_label,
        )
    except UnsupportedPrecisionError as exc:
        raise RepoCheckError(
            f"the engine in {engine_dir} (dtype {engine.dtype}, quant_algo {engine.quant_algo}, KV "
            f"{engine.kv_cache_quant_algo}) cannot run on {gpu_label}: {exc}; rebuild it for that GPU"
        ) from exc


def check_tokenizer_dir(tokenizer_dir: Path) -> None:
    tokenizer_dir = Path(tokenizer_dir)
    if not tokenizer_dir.is_dir():
        raise RepoCheckError(
            f"tokenizer dir {tokenizer_dir} does not exist; pass the Hugging Face model dir that holds "
            f"tokenizer.json / tokenizer.model (preprocessing loads it with AutoTokenizer)"
        )
    found = [m for m in TOKENIZER_MARKERS if (tokenizer_dir / m).is_file()]
    if not found:
        present = sorted(p.name for p in tokenizer_dir.iterdir())[:20]
        raise RepoCheckError(
            f"tokenizer dir {tokenizer_dir} has none of {list(TOKENIZER_MARKERS)} (found: {present}); pass the "
            f"Hugging Face model dir with the tokenizer files, not the engine or checkpoint dir"
        )


def check_max_batch_size(triton_max_batch_size: int, engine: EngineConfigSummary, engine_dir: Path) -> None:
    if triton_max_batch_size > engine.max_batch_size:
        raise RepoCheckError(
            f"triton_max_batch_size={triton_max_batch_size} exceeds the engine's build max_batch_size="
            f"{engine.max_batch_size} ({engine_dir}); set triton_max_batch_size<={engine.max_batch_size} "
            f"or rebuild the engine with --max_batch_size {triton_max_batch_size}"
        )


def check_streaming_decoupled(streaming: bool, decoupled_by_model: dict[str, bool]) -> None:
    """Streaming needs decoupled mode in tensorrt_llm (and BLS when present); the reverse breaks /generate."""
    if streaming:
        not_decoupled = sorted(m for m, decoupled in decoupled_by_model.items() if not decoupled)
        if not_decoupled:
            raise RepoCheckError(
                f"streaming requested but {not_decoupled} are not decoupled (model_transaction_policy.decoupled "
                f"false): tritonserver answers 'Streaming is only supported if model is deployed using decoupled "
                f"mode'; reassemble with streaming=True"
            )
    else:
        decoupled = sorted(m for m, d in decoupled_by_model.items() if d)
        if decoupled:
            raise RepoCheckError(
                f"streaming=False but {decoupled} are decoupled; /v2/models/ensemble/generate then fails with "
                f"'generate expects model to produce exactly 1 response'; reassemble with streaming=False or "
                f"use /generate_stream"
            )


def check_request_budget(
    max_input_len_or_prompt: int | Sequence[int],
    max_tokens: int,
    engine: EngineConfigSummary,
    engine_dir: Path,
) -> None:
    """A request of `max_input_len_or_prompt` tokens (a length or the token ids) plus `max_tokens` new ones
    must fit the engine's max_input_len and max_seq_len."""
    input_len = (
        max_input_len_or_prompt if isinstance(max_input_len_or_prompt, int) else len(max_input_len_or_prompt)
    )
    if max_tokens < 1:
        raise RepoCheckError(f"max_tokens={max_tokens} must be >= 1")
    if input_len > engine.max_input_len:
        raise RepoCheckError(
            f"prompt of {input_len} tokens exceeds the engine's max_input_len={engine.max_input_len} "
            f"({engine_dir}); shorten the prompt or rebuild with --max_input_len {input_len}"
        )
    if engine.max_seq_len is not None and input_len + max_tokens > engine.max_seq_len:
        raise RepoCheckError(
            f"{input_len} input tokens + max_tokens={max_tokens} = {input_len + max_tokens} exceeds the engine's "
            f"max_seq_len={engine.max_seq_len} ({engine_dir}); lower max_tokens to "
            f"{max(engine.max_seq_len - input_len, 0)} or rebuild with --max_seq_len {input_len + max_tokens}"
        )


def read_decoupled(
    model_repository: Path, models: Sequence[str] = ("tensorrt_llm", "tensorrt_llm_bls")
) -> dict[str, bool]:
    """decoupled flag of each of `models` present in a written repository (parsed with the real schema)."""
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    result: dict[str, bool] = {}
    for name in models:
        path = Path(model_repository) / name / "config.pbtxt"
        if path.is_file():
            config = text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())
            result[name] = config.model_transaction_policy.decoupled
    return result


def read_model_config(model_repository: Path, model: str) -> dict:
    """A written model's config.pbtxt as Triton's `GET /v2/models/<model>/config` answers it (JSON, proto field
    names), parsed with the real schema."""
    from google.protobuf import json_format, text_format
    from tritonclient.grpc import model_config_pb2

    path = Path(model_repository) / model / "config.pbtxt"
    if not path.is_file():
        raise ArtifactError(f"{path} does not exist; the repository has no model {model!r} (assemble it again)")
    config = text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())
    return json_format.MessageToDict(config, preserving_proto_field_name=True)


def run_prestart_checks(
    engine_dir: Path | None,
    tokenizer_dir: Path,
    *,
    trtllm_version: str,
    triton_max_batch_size: int,
    streaming: bool,
    world_size: int | None = None,
    model_repository: Path | None = None,
    gpu: tuple[tuple[int, int], str] | None = None,
) -> list[str]:
    """Run every check that applies; return the names of those that ran (raise on the first failure).

    engine_dir None means no engine (the CPU reference backend): only tokenizer and decoupled checks run.
    world_size None means the launcher will use the engine's own tp×pp.
    gpu: (compute capability, label) of the serving GPU, to refuse an engine precision it lacks.
    """
    ran: list[str] = []
    check_tokenizer_dir(tokenizer_dir)
    ran.append("tokenizer_files")
    if engine_dir is not None:
        engine = read_engine_summary(engine_dir)
        ran.append("engine_config")
        check_world_size(engine.world_size if world_size is None else world_size, engine, engine_dir)
        ran.append("world_size")
        check_engine_version(trtllm_version, engine, engine_dir)
        ran.append("engine_version")
        check_rank_files(engine, engine_dir)
        ran.append("rank_files")
        check_max_batch_size(triton_max_batch_size, engine, engine_dir)
        ran.append("max_batch_size")
        if gpu is not None:
            check_engine_runs_on_gpu(engine, engine_dir, *gpu)
            ran.append("gpu_precision")
    if model_repository is not None:
        check_streaming_decoupled(streaming, read_decoupled(model_repository))
        ran.append("streaming_decoupled")
    return ran
