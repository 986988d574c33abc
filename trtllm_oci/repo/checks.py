"""Pre-start checks for a Triton TRT-LLM deployment, run on the engine dir's config.json and file names.

Each check raises RepoCheckError naming the bad value and the fix, so a deployment fails here, in seconds,
instead of inside tritonserver on a GPU host (pain points in shared/reference/trtllm_triton.md §4).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from trtllm_oci.errors import TrtllmOciError
from trtllm_oci.repo.interface import parse_version

# Files from which transformers' AutoTokenizer can build a tokenizer (tokenizer.json for fast tokenizers,
# sentencepiece models, BPE vocab+merges, WordPiece vocab).
TOKENIZER_MARKERS = ("tokenizer.json", "tokenizer.model", "spiece.model", "vocab.json", "vocab.txt")

# The legacy per-model examples/<m>/build.py layout was the only one before trtllm-build took over
# LLaMA/Mistral/Falcon in 0.8.0 (TL:docs/source/release-notes.md); it has no "version" key.
FIRST_TRTLLM_BUILD_ERA = "0.8.0"


class RepoCheckError(TrtllmOciError, ValueError):
    """A model repository input would make tritonserver fail at load or at request time."""


class EngineFacts(BaseModel):
    """What the runtime reads from an engine dir's config.json, in either layout."""

    model_config = ConfigDict(frozen=True)

    engine_dir: Path
    layout: Literal["trtllm-build", "legacy-build.py"]
    version: str | None
    tp_size: int
    pp_size: int
    cp_size: int = 1
    world_size: int
    max_batch_size: int | None
    max_input_len: int | None
    max_seq_len: int | None
    legacy_name: str | None = None
    legacy_precision: str | None = None

    def rank_file(self, rank: int) -> str:
        if self.layout == "trtllm-build":
            return f"rank{rank}.engine"
        # TL:cpp/tensorrt_llm/runtime/gptJsonConfig.cpp GptJsonConfig::engineFilename (legacy layout):
        # "_pp<P>" only when pipeline parallel.
        pp = f"_pp{self.pp_size}" if self.pp_size > 1 else ""
        return f"{self.legacy_name}_{self.legacy_precision}_tp{self.tp_size}{pp}_rank{rank}.engine"


def _int_or_none(value: object) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def read_engine_facts(engine_dir: Path) -> EngineFacts:
    """Parse `engine_dir/config.json` in the trtllm-build or the legacy build.py layout."""
    config_path = Path(engine_dir) / "config.json"
    if not config_path.is_file():
        raise RepoCheckError(
            f"engine dir {engine_dir} has no config.json; point --engine-dir at the trtllm-build "
            f"--output_dir (the directory holding config.json and rank*.engine)"
        )
    try:
        config = json.loads(config_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RepoCheckError(
            f"{config_path} is not valid JSON ({exc}); it must be the config.json written by the engine "
            f"build — rebuild the engine or restore the file"
        ) from exc
    if "pretrained_config" in config and "build_config" in config:
        # TL:tensorrt_llm/builder.py EngineConfig.to_dict: version, pretrained_config, build_config.
        mapping = config["pretrained_config"].get("mapping", {})
        build = config["build_config"]
        tp = int(mapping.get("tp_size", 1))
        pp = int(mapping.get("pp_size", 1))
        cp = int(mapping.get("cp_size", 1))
        declared_world = mapping.get("world_size")
        if declared_world is not None and int(declared_world) != tp * pp * cp:
            raise RepoCheckError(
                f"{config_path}: pretrained_config.mapping.world_size={declared_world} but tp_size×pp_size×"
                f"cp_size = {tp}×{pp}×{cp} = {tp * pp * cp}; the checkpoint conversion wrote an "
                f"inconsistent mapping — re-run convert_checkpoint/quantize and trtllm-build"
            )
        max_input = _int_or_none(build.get("max_input_len"))
        max_seq = _int_or_none(build.get("max_seq_len"))
        if max_seq is None and max_input is not None and _int_or_none(build.get("max_output_len")):
            # Before 0.11 build_config carried max_output_len instead of max_seq_len (release notes 0.11).
            max_seq = max_input + int(build["max_output_len"])
        return EngineFacts(
            engine_dir=Path(engine_dir),
            layout="trtllm-build",
            version=str(config["version"]) if config.get("version") is not None else None,
            tp_size=tp,
            pp_size=pp,
            cp_size=cp,
            world_size=tp * pp * cp,
            max_batch_size=_int_or_none(build.get("max_batch_size")),
            max_input_len=max_input,
            max_seq_len=max_seq,
        )
    if "builder_config" in config and "plugin_config" in config:
        # TL:cpp/tensorrt_llm/runtime/gptJsonConfig.cpp (0.5-era parseJson): builder_config.name, precision,
        # tensor_parallel (required), pipeline_parallel (default 1), max_batch_size/max_input_len/max_output_len.
        builder = config["builder_config"]
        missing = [k for k in ("name", "precision", "tensor_parallel") if k not in builder]
        if missing:
            raise RepoCheckError(
                f"{config_path}: builder_config lacks {missing}, which the TRT-LLM runtime requires; "
                f"the file is not a complete build.py engine config — rebuild the engine"
            )
        tp = int(builder["tensor_parallel"])
        pp = int(builder.get("pipeline_parallel", 1))
        max_input = _int_or_none(builder.get("max_input_len"))
        max_output = _int_or_none(builder.get("max_output_len"))
        return EngineFacts(
            engine_dir=Path(engine_dir),
            layout="legacy-build.py",
            version=str(config["version"]) if config.get("version") not in (None, "none") else None,
            tp_size=tp,
            pp_size=pp,
            world_size=tp * pp,
            max_batch_size=_int_or_none(builder.get("max_batch_size")),
            max_input_len=max_input,
            max_seq_len=(max_input + max_output)
            if max_input is not None and max_output is not None
            else None,
            legacy_name=str(builder["name"]),
            legacy_precision=str(builder["precision"]),
        )
    raise RepoCheckError(
        f"{config_path} has neither the trtllm-build layout (pretrained_config + build_config) nor the legacy "
        f"build.py layout (builder_config + plugin_config); keys found: {sorted(config)}. Point --engine-dir "
        f"at a TensorRT-LLM engine directory, not a HF model or a TRT-LLM checkpoint dir"
    )


def check_world_size(world_size: int, engine: EngineFacts) -> None:
    if world_size != engine.world_size:
        raise RepoCheckError(
            f"world_size={world_size} but the engine in {engine.engine_dir} was built for tp={engine.tp_size} × "
            f"pp={engine.pp_size}"
            + (f" × cp={engine.cp_size}" if engine.cp_size > 1 else "")
            + f" = {engine.world_size} ranks; launch with --world_size {engine.world_size} (one GPU per rank) "
            f"or rebuild the engine for {world_size} GPUs"
        )


def check_engine_version(trtllm_version: str, engine: EngineFacts) -> None:
    """Engines only load in the TRT-LLM (and TensorRT) release that built them."""
    wanted = parse_version(trtllm_version)
    if engine.version is None:
        if engine.layout == "legacy-build.py" and wanted < parse_version(FIRST_TRTLLM_BUILD_ERA):
            return  # 0.5–0.7 build.py engines carry no version; nothing to compare.
        raise RepoCheckError(
            f"engine config.json in {engine.engine_dir} records no TRT-LLM 'version' ({engine.layout} layout), so "
            f"it cannot be matched to serving TRT-LLM {trtllm_version}; rebuild it with trtllm-build inside the "
            f"serving image's TRT-LLM {trtllm_version}"
        )
    if parse_version(engine.version) != wanted:
        raise RepoCheckError(
            f"engine in {engine.engine_dir} was built by TRT-LLM {engine.version} but the serving image runs "
            f"TRT-LLM {trtllm_version}; engines do not load across versions (serialization assertion). Rebuild "
            f"the engine with TRT-LLM {trtllm_version}, or set trtllm_version={engine.version!r}"
        )


def check_rank_files(engine: EngineFacts) -> list[str]:
    expected = [engine.rank_file(rank) for rank in range(engine.world_size)]
    missing = [name for name in expected if not (engine.engine_dir / name).is_file()]
    if missing:
        present = sorted(p.name for p in engine.engine_dir.glob("*.engine"))
        raise RepoCheckError(
            f"engine dir {engine.engine_dir} lacks {missing} for world size {engine.world_size} "
            f"({engine.layout} layout; present: {present or 'no .engine files'}); re-run the build for all "
            f"{engine.world_size} ranks or point --engine-dir at the complete output dir"
        )
    return expected


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


def check_max_batch_size(triton_max_batch_size: int, engine: EngineFacts) -> None:
    if engine.max_batch_size is not None and triton_max_batch_size > engine.max_batch_size:
        raise RepoCheckError(
            f"triton_max_batch_size={triton_max_batch_size} exceeds the engine's build max_batch_size="
            f"{engine.max_batch_size} ({engine.engine_dir}); set triton_max_batch_size<={engine.max_batch_size} "
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
    max_input_len_or_prompt: int | Sequence[int], max_tokens: int, engine: EngineFacts
) -> None:
    """A request of `max_input_len_or_prompt` tokens (a length or the token ids) plus `max_tokens` new ones
    must fit the engine's max_input_len and max_seq_len."""
    input_len = (
        max_input_len_or_prompt if isinstance(max_input_len_or_prompt, int) else len(max_input_len_or_prompt)
    )
    if max_tokens < 1:
        raise RepoCheckError(f"max_tokens={max_tokens} must be >= 1")
    if engine.max_input_len is not None and input_len > engine.max_input_len:
        raise RepoCheckError(
            f"prompt of {input_len} tokens exceeds the engine's max_input_len={engine.max_input_len} "
            f"({engine.engine_dir}); shorten the prompt or rebuild with --max_input_len {input_len}"
        )
    if engine.max_seq_len is not None and input_len + max_tokens > engine.max_seq_len:
        raise RepoCheckError(
            f"{input_len} input tokens + max_tokens={max_tokens} = {input_len + max_tokens} exceeds the engine's "
            f"max_seq_len={engine.max_seq_len} ({engine.engine_dir}); lower max_tokens to "
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


def run_prestart_checks(
    engine_dir: Path | None,
    tokenizer_dir: Path,
    *,
    trtllm_version: str,
    triton_max_batch_size: int,
    streaming: bool,
    world_size: int | None = None,
    model_repository: Path | None = None,
) -> list[str]:
    """Run every check that applies; return the names of those that ran (raise on the first failure).

    engine_dir None means no engine (the CPU reference backend): only tokenizer and decoupled checks run.
    world_size None means the launcher will use the engine's own tp×pp.
    """
    ran: list[str] = []
    check_tokenizer_dir(tokenizer_dir)
    ran.append("tokenizer_files")
    if engine_dir is not None:
        engine = read_engine_facts(engine_dir)
        ran.append("engine_config")
        check_world_size(engine.world_size if world_size is None else world_size, engine)
        ran.append("world_size")
        check_engine_version(trtllm_version, engine)
        ran.append("engine_version")
        check_rank_files(engine)
        ran.append("rank_files")
        check_max_batch_size(triton_max_batch_size, engine)
        ran.append("max_batch_size")
    if model_repository is not None:
        check_streaming_decoupled(streaming, read_decoupled(model_repository))
        ran.append("streaming_decoupled")
    return ran
