"""Post-training quantization with NVIDIA ModelOpt, exported as a Hugging Face checkpoint.

One code path for both places it runs: on a GPU host inside the TensorRT-LLM release image (which ships
`nvidia-modelopt`; `container_job` gives the argv and mounts) and here on CPU for the tiny model (the
`quantize` extra). It calls ModelOpt's Python API, `modelopt.torch.quantization.quantize` with the
method's preset config and a calibration forward loop, then `modelopt.torch.export.export_hf_checkpoint`,
rather than `examples/hf_ptq/hf_ptq.py`: that script downloads its calibration datasets by name at quantize
time and defaults the KV cache to `fp8_cast`, where here the calibration set is a local, content-addressed
directory fetched beforehand and every choice is an explicit field.

The result is verified by reading the exported files back with `quant_config.read_checkpoint_quantization`,
the same reader that decides whether TensorRT-LLM can serve a checkpoint. The exported checkpoint is a
cached artifact: `QuantizedCheckpointKey` lists everything that changes its bytes.

Run as a module: `python -m trtllm_oci.checkpoint.modelopt_ptq --model-dir M --output-dir O --method fp8 ...`
prints the `PtqResult` JSON on its last line.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import logging
import os
import re
import shutil
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from trtllm_oci.checkpoint.quant_config import (
    CheckpointQuantization,
    PtqFacts,
    check_runs_on,
    quant_facts,
    read_checkpoint_quantization,
)
from trtllm_oci.errors import TrtllmOciError

logger = logging.getLogger(__name__)

MODELOPT_PIN = "0.47.0"  # the version constraints.txt pins; the one that ran is recorded in PtqResult
PROVENANCE_FILENAME = "trtllm_oci_ptq.json"
KEY_SCHEMA = 1
_SHA_RE = re.compile(r"^[0-9a-f]{40}$")
_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
CALIBRATION_SUFFIXES = (".txt", ".jsonl", ".parquet")

# The tiny model's calibration set: short, fixed, and in the tiny tokenizer's own training language.
TINY_CALIBRATION_TEXTS: tuple[str, ...] = (
    "The quick brown fox jumps over the lazy dog.",
    "Machine learning is the study of algorithms that improve through experience.",
    "Large language models generate text one token at a time, streaming each token to the client.",
    "Triton Inference Server serves models over HTTP and gRPC. TensorRT-LLM builds engines.",
    "def generate(prompt: str, max_tokens: int = 16) -> str:",
    "Café, naïve, résumé, jalapeño, Straße, über, façade, smörgåsbord.",
    "日本語のテキストも含まれています。東京は日本の首都です。",
    "1234567890 0.5 3.14159 2026-11-21 {\"key\": \"value\"} [1, 2, 3]",
)


class PtqError(TrtllmOciError):
    """Post-training quantization could not run or did not produce what was asked."""


class ModelOptMissingError(PtqError, ImportError):
    """nvidia-modelopt (or its scipy need) is not importable here."""


class CalibrationError(PtqError, ValueError):
    """The calibration set is missing, empty or unreadable."""


class PtqMethod(StrEnum):
    FP8 = "fp8"
    NVFP4 = "nvfp4"
    INT4_AWQ = "int4_awq"
    W4A8_AWQ = "w4a8_awq"


class KvCacheQuant(StrEnum):
    NONE = "none"  # the KV cache stays in the model dtype
    FP8 = "fp8"


# ------------------------------------------------------------------------------------- calibration


class CalibrationTexts(BaseModel):
    """A fixed list of texts given inline (the tiny model's smoke set)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["texts"] = "texts"
    texts: tuple[str, ...] = Field(min_length=1)


class CalibrationDir(BaseModel):
    """A local directory of calibration text: *.txt (one sample per non-empty line), *.jsonl and *.parquet
    (one sample per record, its `text_field`). Files are read in sorted path order."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["dir"] = "dir"
    path: Path
    text_field: str = "text"
    origin: str | None = Field(default=None, description="Where it came from, e.g. 'hf:cnn_dailymail@<sha>'")


class HubCalibrationDataset(BaseModel):
    """A Hugging Face dataset at a pinned commit; `download_calibration_dataset` fetches it before quantizing."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    repo_id: str = Field(min_length=3)
    revision: str = Field(description="A 40-hex commit sha; branches and tags move")
    files: tuple[str, ...] = Field(min_length=1, description="Paths or glob patterns inside the repo")
    text_field: str = "text"

    @field_validator("revision")
    @classmethod
    def _pinned(cls, value: str) -> str:
        if not _SHA_RE.match(value):
            raise ValueError(f"revision {value!r} is not a commit sha; pin the calibration dataset to a 40-hex "
                             "commit (HfApi().dataset_info(repo_id).sha) so the calibration set cannot change")
        return value

    @property
    def origin(self) -> str:
        return f"hf:{self.repo_id}@{self.revision}"


CalibrationSource = CalibrationTexts | CalibrationDir


def download_calibration_dataset(
    dataset: HubCalibrationDataset, dest_dir: Path, token: str | None = None, endpoint: str | None = None
) -> CalibrationDir:
    """Fetch the dataset's `files` at its pinned revision into `dest_dir` (a step before quantizing)."""
    from huggingface_hub import snapshot_download

    snapshot_download(repo_id=dataset.repo_id, repo_type="dataset", revision=dataset.revision,
                      allow_patterns=list(dataset.files), local_dir=str(dest_dir), token=token, endpoint=endpoint)
    return CalibrationDir(path=Path(dest_dir), text_field=dataset.text_field, origin=dataset.origin)


def load_calibration_texts(source: CalibrationSource, max_samples: int) -> list[str]:
    """The first `max_samples` non-empty samples of `source`, in a stable order."""
    if max_samples < 1:
        raise CalibrationError(f"max_samples={max_samples}; calibrate on at least 1 sample")
    if isinstance(source, CalibrationTexts):
        texts = [t for t in source.texts if t.strip()]
    else:
        texts = list(_iter_dir_samples(source, max_samples))
    if not texts:
        where = "the inline texts" if isinstance(source, CalibrationTexts) else str(source.path)
        raise CalibrationError(f"{where} gave no non-empty calibration sample; ModelOpt needs data to calibrate.")
    return texts[:max_samples]


def calibration_set_id(texts: Sequence[str]) -> str:
    """Content address of the samples actually used: `sha256:` of their length-prefixed UTF-8 bytes."""
    digest = hashlib.sha256()
    for text in texts:
        data = text.encode("utf-8")
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return f"sha256:{digest.hexdigest()}"


def _iter_dir_samples(source: CalibrationDir, max_samples: int):
    root = source.path
    if not root.is_dir():
        raise CalibrationError(f"calibration directory {root} does not exist; download the dataset first "
                               "(download_calibration_dataset) or point at a directory of .txt/.jsonl/.parquet.")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in CALIBRATION_SUFFIXES
                   and ".cache" not in p.relative_to(root).parts)
    if not files:
        raise CalibrationError(f"{root} holds no {'/'.join(CALIBRATION_SUFFIXES)} file to calibrate on.")
    count = 0
    for path in files:
        for text in _samples_of(path, source.text_field):
            if text.strip():
                yield text
                count += 1
                if count >= max_samples:
                    return


def _samples_of(path: Path, field: str):
    if path.suffix == ".txt":
        yield from path.read_text(encoding="utf-8").splitlines()
    elif path.suffix == ".jsonl":
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise CalibrationError(f"{path}:{number} is not JSON ({exc})") from None
            if not isinstance(record, dict) or not isinstance(record.get(field), str):
                raise CalibrationError(f"{path}:{number} has no string field {field!r}; set text_field")
            yield record[field]
    else:
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        if field not in table.column_names:
            raise CalibrationError(f"{path} has no column {field!r} (columns: {table.column_names}); set text_field")
        yield from (value for value in table.column(field).to_pylist() if isinstance(value, str))


# ---------------------------------------------------------------------------------------- cache key


class QuantizedCheckpointKey(BaseModel):
    """Everything that changes the exported checkpoint's bytes; `digest()` is its content address.

    `source_commit` is the Hub commit of the unquantized model (or a content hash of a local one);
    `calibration_id` is `calibration_set_id` of the samples used; `image_digest` is the release image
    the PTQ ran in (None for a run on this host's Python, e.g. the CPU smoke path: then `device` is 'cpu').
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    source_repo: str | None = None
    source_commit: str = Field(min_length=1)
    method: PtqMethod
    kv_cache: KvCacheQuant
    calibration_id: str
    calib_size: int = Field(ge=1)
    calib_seq_len: int = Field(ge=1)
    export_dtype: str = Field(description="dtype of the unquantized layers: auto, bfloat16, float16, float32")
    modelopt_version: str = Field(min_length=1)
    trtllm_version: str | None = None
    image_digest: str | None = None
    device: Literal["cuda", "cpu"] = "cuda"

    @field_validator("calibration_id")
    @classmethod
    def _content_address(cls, value: str) -> str:
        if not _DIGEST_RE.match(value):
            raise ValueError(f"calibration_id {value!r} must be 'sha256:<64 hex>' (calibration_set_id of the samples)")
        return value

    @field_validator("image_digest")
    @classmethod
    def _image_digest(cls, value: str | None) -> str | None:
        if value is not None and not _DIGEST_RE.match(value):
            raise ValueError(f"image_digest {value!r} is not a content digest; pass 'sha256:<64 hex>', not a tag")
        return value

    @model_validator(mode="after")
    def _image_with_version(self) -> QuantizedCheckpointKey:
        if self.image_digest is not None and self.trtllm_version is None:
            raise ValueError("image_digest is set but trtllm_version is not: name the TensorRT-LLM version of the image")
        return self

    def canonical_json(self) -> str:
        payload = {"schema": KEY_SCHEMA, "artifact": "modelopt_hf_checkpoint", **self.model_dump(mode="json")}
        return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)

    def digest(self) -> str:
        return hashlib.sha256(self.canonical_json().encode("ascii")).hexdigest()


# ------------------------------------------------------------------------------------------ request


class PtqRequest(BaseModel):
    """One ModelOpt PTQ run: quantize `model_dir` and export the Hugging Face checkpoint to `output_dir`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model_dir: Path
    output_dir: Path
    method: PtqMethod
    kv_cache: KvCacheQuant = KvCacheQuant.NONE
    calibration: CalibrationSource = Field(discriminator="kind")
    calib_size: int = Field(default=512, ge=1, le=100_000)
    calib_seq_len: int = Field(default=512, ge=8, le=131_072)
    batch_size: int = Field(default=1, ge=1, le=1024)
    device: Literal["cuda", "cpu"] = "cuda"
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"
    trust_remote_code: bool = False
    target_compute_capability: str | None = Field(
        default=None, description="The GPU that will serve the result; refused up front if it cannot run it")


class PtqResult(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    output_dir: Path
    quantization: CheckpointQuantization
    calibration_id: str
    calibration_samples: int
    modelopt_version: str
    torch_version: str
    transformers_version: str
    device: str
    seconds: dict[str, float]


def _ptq_facts() -> PtqFacts:
    return quant_facts().modelopt_ptq


def expected_quant_algo(method: PtqMethod) -> str:
    algo = _ptq_facts().methods[method.value].quant_algo
    assert algo is not None, f"checkpoint_quant.yaml: modelopt_ptq.methods.{method.value} names no quant_algo"
    return algo


def expected_kv_cache_quant_algo(kv_cache: KvCacheQuant) -> str | None:
    return None if kv_cache == KvCacheQuant.NONE else _ptq_facts().kv_cache[kv_cache.value].kv_cache_quant_algo


def check_method_runs_on(method: PtqMethod, kv_cache: KvCacheQuant, compute_capability: str,
                         gpu_name: str = "the target GPU") -> None:
    """Refuse before any work a PTQ whose result the serving GPU cannot run (NVFP4 below Blackwell, ...)."""
    facts = quant_facts()
    algo = expected_quant_algo(method)
    kv_algo = expected_kv_cache_quant_algo(kv_cache)
    planned = CheckpointQuantization(
        source="none", source_file=f"planned ModelOpt PTQ ({method.value}, kv_cache={kv_cache.value})",
        quant_algo=algo, method=method.value, weight_bytes=facts.quant_algos[algo].weight_bytes,
        kv_cache_quant_algo=kv_algo, min_compute_capability=facts.quant_algos[algo].min_compute_capability,
    )
    check_runs_on(planned, compute_capability, gpu_name=gpu_name)


def modelopt_config(method: PtqMethod, kv_cache: KvCacheQuant, mtq: Any) -> dict[str, Any]:
    """The `mtq.quantize` config: the method's preset, plus the FP8 KV-cache entries when asked."""
    facts = _ptq_facts()
    config = copy.deepcopy(getattr(mtq, facts.methods[method.value].modelopt_config))
    if kv_cache != KvCacheQuant.NONE:
        kv_config = getattr(mtq, facts.kv_cache[kv_cache.value].modelopt_config)
        config = mtq.update_quant_cfg_with_kv_cache_quant(config, kv_config["quant_cfg"])
    return config


# ------------------------------------------------------------------------------------------ running


def run_ptq(request: PtqRequest, log: Callable[[str], None] = logger.info) -> PtqResult:
    """Quantize and export; the output directory appears whole or not at all."""
    if request.target_compute_capability is not None:
        check_method_runs_on(request.method, request.kv_cache, request.target_compute_capability)
    if request.output_dir.exists() and any(request.output_dir.iterdir()):
        raise PtqError(f"output directory {request.output_dir} is not empty; pass a new directory "
                       "(an exported checkpoint is never overwritten in place)")
    if not (request.model_dir / "config.json").is_file():
        raise PtqError(f"{request.model_dir} has no config.json; point model_dir at a Hugging Face checkpoint")
    torch, transformers, mtq, export_hf_checkpoint, modelopt_version = _import_stack()
    texts = load_calibration_texts(request.calibration, request.calib_size)
    calib_id = calibration_set_id(texts)
    seconds: dict[str, float] = {}

    started = time.monotonic()
    if request.device == "cuda" and not torch.cuda.is_available():
        raise PtqError("device='cuda' but torch sees no GPU here; run on the GPU host or pass device='cpu'")
    tokenizer = transformers.AutoTokenizer.from_pretrained(request.model_dir, trust_remote_code=request.trust_remote_code)
    dtype = "auto" if request.dtype == "auto" else getattr(torch, request.dtype)
    model = transformers.AutoModelForCausalLM.from_pretrained(
        request.model_dir, dtype=dtype, trust_remote_code=request.trust_remote_code).to(request.device)
    model.eval()
    if not getattr(model.config, "architectures", None):
        # ModelOpt's export reads config.architectures (is_multimodal_model) and fails without it.
        raise PtqError(f"{request.model_dir}/config.json has no 'architectures'; ModelOpt's Hugging Face export "
                       f"needs it: add e.g. \"architectures\": [\"{type(model).__name__}\"]")
    seconds["load"] = time.monotonic() - started
    log(f"loaded {request.model_dir} ({type(model).__name__}, {model.dtype}) on {request.device} "
        f"in {seconds['load']:.1f}s; calibrating on {len(texts)} samples ({calib_id[:19]}...)")

    batches = _calibration_batches(tokenizer, texts, request.calib_seq_len, request.batch_size, torch)

    def forward_loop(quant_model: Any) -> None:
        with torch.no_grad():
            for batch in batches:
                quant_model(**{k: v.to(request.device) for k, v in batch.items()})

    started = time.monotonic()
    config = modelopt_config(request.method, request.kv_cache, mtq)
    model = mtq.quantize(model, config, forward_loop)
    seconds["calibrate"] = time.monotonic() - started
    log(f"ModelOpt {modelopt_version} {request.method.value} (kv_cache={request.kv_cache.value}) "
        f"calibrated in {seconds['calibrate']:.1f}s")

    started = time.monotonic()
    staging = request.output_dir.parent / f".{request.output_dir.name}.partial-{uuid.uuid4().hex[:8]}"
    staging.mkdir(parents=True)
    try:
        with torch.inference_mode():
            export_hf_checkpoint(model, export_dir=staging)
        tokenizer.save_pretrained(staging)
        quantization = read_checkpoint_quantization(staging)
        _verify(quantization, request, staging)
        result = PtqResult(
            output_dir=request.output_dir, quantization=quantization.model_copy(
                update={"source_file": str(request.output_dir / Path(quantization.source_file or "").name)}),
            calibration_id=calib_id, calibration_samples=len(texts), modelopt_version=modelopt_version,
            torch_version=torch.__version__, transformers_version=transformers.__version__,
            device=request.device, seconds={**seconds, "export": time.monotonic() - started},
        )
        (staging / PROVENANCE_FILENAME).write_text(json.dumps(
            {"request": request.model_dump(mode="json"), "result": result.model_dump(mode="json")}, indent=2))
        if request.output_dir.exists():
            request.output_dir.rmdir()  # empty (checked above); rename needs it gone
        os.replace(staging, request.output_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log(f"exported {result.quantization.quant_algo} checkpoint to {request.output_dir} "
        f"in {result.seconds['export']:.1f}s")
    return result


def _import_stack() -> tuple[Any, Any, Any, Any, str]:
    try:
        from importlib.metadata import version

        import modelopt.torch.quantization as mtq
        import scipy  # noqa: F401  (ModelOpt's export imports it lazily; fail here, not after calibration)
        import torch
        import transformers
        from modelopt.torch.export import export_hf_checkpoint
    except ImportError as exc:
        raise ModelOptMissingError(
            f"ModelOpt PTQ needs nvidia-modelopt, scipy, torch and transformers ({exc}); install the extra: "
            f"pip install 'trtllm-oci[quantize]' -c constraints.txt (nvidia-modelopt=={MODELOPT_PIN}), "
            "or run inside the TensorRT-LLM release image, which ships ModelOpt."
        ) from None
    return torch, transformers, mtq, export_hf_checkpoint, version("nvidia-modelopt")


def _calibration_batches(tokenizer: Any, texts: list[str], seq_len: int, batch_size: int, torch: Any) -> list[dict]:
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    batches = []
    for start in range(0, len(texts), batch_size):
        encoded = tokenizer(texts[start:start + batch_size], return_tensors="pt", padding=True,
                            truncation=True, max_length=seq_len)
        batches.append({"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]})
    return batches


def _verify(quantization: CheckpointQuantization, request: PtqRequest, export_dir: Path) -> None:
    want_algo = expected_quant_algo(request.method)
    want_kv = expected_kv_cache_quant_algo(request.kv_cache)
    if quantization.quant_algo != want_algo or quantization.kv_cache_quant_algo != want_kv:
        raise PtqError(
            f"ModelOpt exported quant_algo={quantization.quant_algo!r}, kv_cache_quant_algo="
            f"{quantization.kv_cache_quant_algo!r} to {export_dir}, but {request.method.value} with "
            f"kv_cache={request.kv_cache.value} should give {want_algo!r} / {want_kv!r}; the ModelOpt version "
            f"may have changed its presets (pinned: {MODELOPT_PIN})."
        )


# ------------------------------------------------------------------------------------- in the image


class PtqContainerJob(BaseModel):
    """How to run `run_ptq` in the TensorRT-LLM release image: argv, bind mounts (host -> container), env."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    argv: list[str]
    mounts: list[tuple[Path, str, bool]] = Field(description="(host path, container path, read_only)")
    environment: dict[str, str]
    workdir: str


CONTAINER_MODEL_DIR = "/model"
CONTAINER_CALIB_DIR = "/calib"
CONTAINER_OUTPUT_PARENT = "/output"
CONTAINER_PACKAGE_ROOT = "/opt/trtllm-oci"


def container_job(request: PtqRequest, python: str = "python3") -> PtqContainerJob:
    """The same `run_ptq`, inside the release image: this package mounted read-only on PYTHONPATH.

    The image brings torch, transformers and ModelOpt at its own versions (TensorRT-LLM depends on
    nvidia-modelopt); the calibration set must be a directory (already downloaded): the image needs no network.
    """
    if not isinstance(request.calibration, CalibrationDir):
        raise PtqError("in the container the calibration set must be a CalibrationDir (texts on disk); "
                       "write the texts to a directory or download the Hub dataset first")
    package_dir = Path(__file__).resolve().parent.parent
    output_name = request.output_dir.name
    mounts = [
        (request.model_dir.resolve(), CONTAINER_MODEL_DIR, True),
        (request.calibration.path.resolve(), CONTAINER_CALIB_DIR, True),
        (request.output_dir.resolve().parent, CONTAINER_OUTPUT_PARENT, False),
        (package_dir, f"{CONTAINER_PACKAGE_ROOT}/trtllm_oci", True),
    ]
    argv = [python, "-m", "trtllm_oci.checkpoint.modelopt_ptq",
            "--model-dir", CONTAINER_MODEL_DIR, "--output-dir", f"{CONTAINER_OUTPUT_PARENT}/{output_name}",
            "--method", request.method.value, "--kv-cache", request.kv_cache.value,
            "--calib-dir", CONTAINER_CALIB_DIR, "--text-field", request.calibration.text_field,
            "--calib-size", str(request.calib_size), "--calib-seq-len", str(request.calib_seq_len),
            "--batch-size", str(request.batch_size), "--device", request.device, "--dtype", request.dtype]
    if request.trust_remote_code:
        argv.append("--trust-remote-code")
    if request.target_compute_capability:
        argv += ["--target-compute-capability", request.target_compute_capability]
    env = {"PYTHONPATH": CONTAINER_PACKAGE_ROOT, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    return PtqContainerJob(argv=argv, mounts=mounts, environment=env, workdir=CONTAINER_OUTPUT_PARENT)


def _parse_args(argv: Sequence[str] | None) -> PtqRequest:
    parser = argparse.ArgumentParser(prog="python -m trtllm_oci.checkpoint.modelopt_ptq",
                                     description="ModelOpt PTQ + Hugging Face export (trtllm-oci)")
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--output-dir", type=Path, required=True)
    parser.add_argument("--method", choices=[m.value for m in PtqMethod], required=True)
    parser.add_argument("--kv-cache", choices=[k.value for k in KvCacheQuant], default=KvCacheQuant.NONE.value)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--calib-dir", type=Path, help="directory of .txt/.jsonl/.parquet calibration samples")
    source.add_argument("--tiny-calibration", action="store_true", help="the fixed smoke texts of the tiny model")
    parser.add_argument("--text-field", default="text")
    parser.add_argument("--calib-size", type=int, default=512)
    parser.add_argument("--calib-seq-len", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--dtype", choices=["auto", "bfloat16", "float16", "float32"], default="auto")
    parser.add_argument("--trust-remote-code", action="store_true")
    parser.add_argument("--target-compute-capability", default=None)
    args = parser.parse_args(argv)
    calibration: CalibrationSource = (CalibrationTexts(texts=TINY_CALIBRATION_TEXTS) if args.tiny_calibration
                                      else CalibrationDir(path=args.calib_dir, text_field=args.text_field))
    return PtqRequest(
        model_dir=args.model_dir, output_dir=args.output_dir, method=PtqMethod(args.method),
        kv_cache=KvCacheQuant(args.kv_cache), calibration=calibration, calib_size=args.calib_size,
        calib_seq_len=args.calib_seq_len, batch_size=args.batch_size, device=args.device, dtype=args.dtype,
        trust_remote_code=args.trust_remote_code, target_compute_capability=args.target_compute_capability,
    )


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    try:
        result = run_ptq(_parse_args(argv), log=lambda line: print(line, file=sys.stderr, flush=True))
    except TrtllmOciError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(result.model_dump_json())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
