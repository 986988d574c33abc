"""CLI start-up: `trtllm-oci --help` and `trtllm-oci plan` beside a bare `python -c pass`, in one run.

    python benchmarks/bench_cli_startup.py [--runs 15] [--goal-s 0.3]

Each command runs `--runs` times in a fresh interpreter (the way a user runs it), interleaved so another
process's load falls on all of them alike; the table gives the median and the fastest wall time and the
ratio to bare Python. The warm-up run writes bytecode under a scratch PYTHONPYCACHEPREFIX and the timed
runs read it, as an installed package's .pyc files are read: where the environment sets
PYTHONDONTWRITEBYTECODE, each run would otherwise compile the project's own sources again (~15 ms of plan)
which no installed copy does. The plans are the single verdict and the candidate list on a local
config.json (no network). The goal (0.3 s) is printed beside the figures, never asserted: a CPU-heavy
neighbour moves them; the test that keeps start-up small is tests/foundation/test_cli_startup.py (which
modules `--help` and `plan` import).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIG = Path(__file__).resolve().parents[1] / "tests" / "data" / "hf_configs" / "llama-2-13b-hf.json"


def _time(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15, help="runs of each command (default 15)")
    parser.add_argument("--goal-s", type=float, default=0.3, help="the start-up goal printed beside (default 0.3)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        model = Path(scratch) / "model"
        model.mkdir()
        shutil.copy(CONFIG, model / "config.json")
        env = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = str(Path(scratch) / "pycache")
        cli = [sys.executable, "-m", "trtllm_oci.cli"]
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "trtllm-oci --help": [*cli, "--help"],
            "trtllm-oci plan (verdict)": [*cli, "plan", "--model", str(model), "--shape", "VM.GPU.A10.2",
                                          "--quant", "none", "--tp", "2", "--pp", "1"],
            "trtllm-oci plan (candidates)": [*cli, "plan", "--model", str(model), "--shape", "VM.GPU.A10.2"],
        }
        for argv in commands.values():  # warm the page cache and the .pyc files
            _time(argv, env)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, argv in commands.items():
                times[name].append(_time(argv, env))
    bare = statistics.median(times["python -c pass"])
    print(f"{'command':32} {'median s':>9} {'fastest s':>9} {'x bare python':>13} {'goal':>8}")
    for name, values in times.items():
        median = statistics.median(values)
        goal = "" if name.startswith("python") else ("under" if median < args.goal_s else "OVER") + f" {args.goal_s}"
        print(f"{name:32} {median:9.3f} {min(values):9.3f} {median / bare:13.1f} {goal:>8}")


if __name__ == "__main__":
    main()
