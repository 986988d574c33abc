"""The OCI release benchmark at smoke size: its goals hold (no engine byte moved by reference, nothing orphaned)."""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from pathlib import Path

BENCH = Path(__file__).parents[2] / "benchmarks" / "bench_oci_release.py"


def test_the_release_figures_and_the_fault_table_at_smoke_size(capsys, tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("bench_oci_release", BENCH)
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_oci_release", bench)  # dataclasses look their module up there
    monkeypatch.setenv("PATH", os.environ["PATH"])  # the run puts a stand-in `oci` CLI first on PATH
    spec.loader.exec_module(bench)
    assert bench.main(["--artifact-gib", "0.01", "--direct-limit-mib", "1", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    [by_reference] = [line for line in out.splitlines() if line.startswith("| by_reference |")]
    cells = [c.strip() for c in by_reference.strip("|").split("|")]
    assert cells[2] == "0.000" and cells[3] == "0.0000" and cells[-1] == "ACTIVE"
    assert "| object_storage_export |" in out
    faults = [line for line in out.splitlines() if re.match(r"^\| [^|]+ \| .+ \| \d+ \|$", line)]
    assert len(faults) == 10 and all(line.endswith("| 0 |") for line in faults)
