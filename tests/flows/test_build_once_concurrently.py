"""Two flow runs asking for the same engine at once build it once; the second waits and reuses it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.prefect

RUN_BUILD = """
import json, sys
from trtllm_oci.release.demo import demo_spec
from trtllm_oci.flows.build_engine import build_engine
from pathlib import Path
prepared = build_engine(demo_spec(Path(sys.argv[1])))
manifest = prepared.manifest
print("MANIFEST " + json.dumps({"key": manifest.key, "hit": prepared.cache_hit, "uri": manifest.uri}))
"""


def test_two_concurrent_build_runs_build_once(prefect_api: str, tiny_model_dir: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "TRTLLM_OCI_CACHE": str(tmp_path / "engines"),
           "TRTLLM_OCI_HOME": str(tmp_path / "home")}
    runs = [subprocess.Popen([sys.executable, "-c", RUN_BUILD, str(tiny_model_dir)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    outputs = [run.communicate(timeout=300) for run in runs]
    results = []
    for run, (out, err) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, err[-3000:]
        results.append(json.loads(next(line for line in out.splitlines() if line.startswith("MANIFEST "))[9:]))
    assert results[0]["key"] == results[1]["key"] and results[0]["uri"] == results[1]["uri"]
    assert sorted(r["hit"] for r in results) == [False, True], "exactly one run built, the other reused"
    entries = list((tmp_path / "engines" / "entries").iterdir())
    assert len(entries) == 1
