"""The README's main command end to end: `trtllm-oci demo` (the LLM-API path on the CPU OpenAI smoke server),
twice (the second run reuses the cached artifact), and `trtllm-oci demo --backend tensorrt` (the engine path's
Triton ensemble with the CPU reference backend)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

pytestmark = [pytest.mark.prefect, pytest.mark.triton]

REPO = Path(__file__).resolve().parents[2]
REQUIRED = ["concurrency", "n_ok", "n_err", "req_s", "out_tok_s", "ttft_ms_p50", "ttft_ms_p99", "tpot_ms_p50",
            "itl_ms_p50", "e2e_ms_p50"]


def run_demo(out: Path, home: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        # Its own Prefect home and trtllm-oci home: a fresh machine as far as the demo can tell.
        "PREFECT_HOME": str(home / "prefect"),
        "TRTLLM_OCI_HOME": str(home / "trtllm-oci"),
    }
    for inherited in ("PREFECT_API_URL", "TRTLLM_OCI_CACHE"):
        env.pop(inherited, None)
    trtllm_oci = Path(sys.executable).with_name("trtllm-oci")  # the console script, as a user runs it
    return subprocess.run([str(trtllm_oci), "demo", "--out", str(out), *extra], capture_output=True,
                          text=True, timeout=900, env=env)


def servers_serving(path: Path, program: str = "tritonserver") -> list[str]:
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout.splitlines()
    return [line for line in ps if program in line and str(path) in line]


def tritonservers_serving(path: Path) -> list[str]:
    return servers_serving(path, "tritonserver")


def run_make_demo(out: Path, home: Path) -> subprocess.CompletedProcess[str]:
    """`make demo`, the README's first command, with the results in `out`."""
    env = {**os.environ, "PREFECT_HOME": str(home / "prefect"), "TRTLLM_OCI_HOME": str(home / "trtllm-oci")}
    for inherited in ("PREFECT_API_URL", "TRTLLM_OCI_CACHE"):
        env.pop(inherited, None)
    return subprocess.run(["make", "-C", str(REPO), "demo", f"OUT={out}"], capture_output=True, text=True,
                          timeout=900, env=env)


def test_demo_runs_the_whole_release_twice_reusing_the_build(tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = run_make_demo(out, tmp_path)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "done (built)" in first.stdout

    summary = pd.read_csv(out / "summary.csv")
    assert set(REQUIRED) <= set(summary.columns)
    assert list(summary["concurrency"]) == [1, 2, 4]
    assert (summary["n_ok"] > 0).all() and (summary["n_err"] == 0).all()
    assert (summary["out_tok_s"] > 0).all() and (summary["ttft_ms_p50"] > 0).all()
    assert set(summary["transport"]) == {"openai_completions_sse"}
    assert list(out.glob("*.png")), "no plot written"
    serving = json.loads((out / "repository" / "serving.json").read_text())
    assert (serving["backend"], serving["frontend"]) == ("pytorch", "openai")
    assert (out / "repository" / serving["checkpoint_dir"] / "config.json").is_file()
    report = (out / "report.md").read_text()
    assert "CPU OpenAI smoke server (**not TensorRT-LLM**)" in report and "summary_csv" in report
    assert str(out / "summary.csv") in first.stdout, "the demo must print where the results are"
    assert servers_serving(out, "openai_app") == [], "the demo left its OpenAI server running"

    second = run_demo(out, tmp_path)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "done (engine cache hit)" in second.stdout
    assert "reused from cache" in second.stdout + second.stderr
    assert servers_serving(out, "openai_app") == []


def test_demo_of_the_engine_path_serves_the_triton_ensemble_once_built(tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = run_demo(out, tmp_path, "--backend", "tensorrt")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "done (built)" in first.stdout

    summary = pd.read_csv(out / "summary.csv")
    assert set(REQUIRED) <= set(summary.columns)
    assert list(summary["concurrency"]) == [1, 2, 4]
    assert (summary["n_ok"] > 0).all() and (summary["n_err"] == 0).all()
    assert (summary["out_tok_s"] > 0).all() and (summary["ttft_ms_p50"] > 0).all()
    assert list(out.glob("*.png")), "no plot written"
    assert (out / "repository" / "model_repository" / "ensemble" / "config.pbtxt").is_file()
    report = (out / "report.md").read_text()
    assert "not TensorRT-LLM" in report and "summary_csv" in report
    assert str(out / "summary.csv") in first.stdout, "the demo must print where the results are"
    assert tritonservers_serving(out) == [], "the demo left a tritonserver running"
