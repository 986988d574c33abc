"""The demo's embedded defaults: a tiny local model on the CPU reference backend, served and measured here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from trtllm_oci.files import staged_dir
from trtllm_oci.report import ReleaseReport
from trtllm_oci.settings import Settings
from trtllm_oci.spec import ReleaseSpec, parse_spec

DEMO_SEED = 0


def demo_model_dir(settings: Settings) -> Path:
    """The tiny model, made once per machine: same files every run, so the second run hits the engine cache."""
    from trtllm_oci.tiny_model import make_tiny_llama

    target = settings.demo_models_dir / f"tiny-llama-seed{DEMO_SEED}"
    if (target / "config.json").is_file() and (target / "tokenizer.json").is_file():
        return target
    with staged_dir(target, replace=True) as staging:
        make_tiny_llama(staging, seed=DEMO_SEED)
    return target


def demo_calibration_dir(settings: Settings) -> Path:
    """A few fixed texts on disk: what ModelOpt calibrates the tiny model on in the quantized demo."""
    from trtllm_oci.checkpoint.modelopt_ptq import TINY_CALIBRATION_TEXTS

    target = settings.demo_models_dir / "calibration"
    if not (target / "calibration.jsonl").is_file():
        with staged_dir(target, replace=True) as staging:
            (staging / "calibration.jsonl").write_text(
                "".join(json.dumps({"text": t}) + "\n" for t in TINY_CALIBRATION_TEXTS), encoding="utf-8")
    return target


def demo_spec(model_dir: Path, backend: Literal["pytorch", "tensorrt"] = "tensorrt",
              quantization: Literal["none", "fp8"] = "none", calibration_dir: Path | None = None) -> ReleaseSpec:
    """The demo's release. `pytorch`: the LLM-API path, served here by the CPU OpenAI smoke server (not
    TensorRT-LLM), `fp8` quantized by ModelOpt on this CPU (calibrated on `calibration_dir`); `tensorrt`: the
    engine path's Triton ensemble with the CPU reference backend in place of engines (not TensorRT-LLM either)."""
    pytorch = backend == "pytorch"
    quantized = pytorch and quantization != "none"
    name = f"demo-pytorch-{quantization}-{model_dir.name}" if quantized else (
        f"demo-pytorch-{model_dir.name}" if pytorch else f"demo-{model_dir.name}")
    return parse_spec(
        {
            "name": name,
            "model": {"local_dir": str(model_dir)},
            **({"quantization": {"method": quantization, "calib_size": 8,
                                 "calib_dataset": {"local_dir": str(calibration_dir)}}} if quantized else {}),
            # The newest interface: its ensemble returns the server's token counts (return_num_output_tokens).
            "trtllm_version": "1.2.1",
            "serving": {"backend": "pytorch", "frontend": "openai"} if pytorch else {"backend": "reference",
                                                                                     "streaming": True},
            "build": {"max_batch_size": 8, "max_input_len": 256, "max_seq_len": 512, "max_num_tokens": 1024},
            "benchmark": {
                "transport": "openai" if pytorch else "http",
                "api": "completions",
                "concurrency": [1, 2, 4],
                "input_len": 32,
                "output_len": 16,
                "num_requests": 12,
                "warmup_requests": 2,
            },
            "target": {"kind": "local"},
        },
        source="demo defaults",
    )


def print_summary(report: ReleaseReport, out: Path) -> None:
    print("", flush=True)
    print(f"release {report.release_id} done ({'engine cache hit' if report.engine_cache_hit else 'built'})")
    print(f"  model repository: {report.repository}")
    for name, path in report.result_files.items():
        print(f"  {name}: {path}")
    if report.benchmark:
        print("  headline: " + ", ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}"
                                         for k, v in report.benchmark.items()))
