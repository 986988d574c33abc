"""The README's main command end to end: `trtllm-oci demo`, twice (the second run reuses the cached build)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

pytestmark = [pytest.mark.prefect, pytest.mark.triton]

REQUIRED = ["concurrency", "n_ok", "n_err", "req_s", "out_tok_s", "ttft_ms_p50", "ttft_ms_p99", "tpot_ms_p50",
            "itl_ms_p50", "e2e_ms_p50"]


def run_demo(out: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        # Its own Prefect home and trtllm-oci home: a fresh machine as far as the demo can tell.
        "PREFECT_HOME": str(home / "prefect"),
        "TRTLLM_OCI_HOME": str(home / "trtllm-oci"),
    }
    for inherited in ("PREFECT_API_URL", "TRTLLM_OCI_CACHE"):
        env.pop(inherited, None)
    return subprocess.run([sys.executable, "-m", "trtllm_oci.cli", "demo", "--out", str(out)], capture_output=True,
                          text=True, timeout=900, env=env)


def tritonservers_serving(path: Path) -> list[str]:
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout.splitlines()
    return [line for line in ps if "tritonserver" in line and str(path) in line]


def test_demo_runs_the_whole_release_twice_reusing_the_build(tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = run_demo(out, tmp_path)
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

    second = run_demo(out, tmp_path)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "done (engine cache hit)" in second.stdout
    assert "reused from cache" in second.stdout + second.stderr
    assert tritonservers_serving(out) == []
