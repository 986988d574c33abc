"""The LLM-API path through the release flow on CPU, for real: ModelOpt FP8 post-training quantization of
the tiny model, the exported checkpoint served by the CPU OpenAI smoke server, benchmarked on its OpenAI
routes, and the report saying what served it."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.prefect


def test_a_quantized_pytorch_release_runs_end_to_end_on_cpu(prefect_api: str, tiny_model_dir: Path,
                                                            tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from trtllm_oci.flows.release import release
    from trtllm_oci.release.demo import demo_calibration_dir, demo_spec
    from trtllm_oci.settings import current_settings

    monkeypatch.setenv("TRTLLM_OCI_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TRTLLM_OCI_CACHE", str(tmp_path / "engines"))
    spec = demo_spec(tiny_model_dir, "pytorch", "fp8", demo_calibration_dir(current_settings()))
    spec.benchmark.concurrency = [1, 2]
    spec.benchmark.num_requests = 6
    out = tmp_path / "out"

    report = release(spec, out_dir=str(out))

    serving = json.loads((out / "repository" / "serving.json").read_text())
    assert (serving["backend"], serving["frontend"]) == ("pytorch", "openai")
    checkpoint = out / "repository" / serving["checkpoint_dir"]
    quant = json.loads((checkpoint / "hf_quant_config.json").read_text())["quantization"]
    assert quant["quant_algo"] == "FP8"  # ModelOpt's own export, read back as TensorRT-LLM reads it
    entry = next((tmp_path / "engines" / "entries").iterdir())
    manifest = json.loads((entry / "manifest.json").read_text())
    assert manifest["inputs"]["build_options"]["artifact"] == "modelopt_hf_checkpoint"
    assert manifest["inputs"]["build_options"]["ptq"]["device"] == "cpu"

    summary = pd.read_csv(out / "summary.csv")
    assert (summary["n_err"] == 0).all() and (summary["n_ok"] > 0).all()
    assert set(summary["transport"]) == {"openai_completions_sse"}
    text = (out / "report.md").read_text()
    assert "CPU OpenAI smoke server (**not TensorRT-LLM**)" in text
    assert report.backend == "pytorch" and report.engine_cache_hit is False
