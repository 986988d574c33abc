"""Our openai transport beside independent clients, on one OpenAI endpoint, in one run.

Each round runs every client once at the same load (closed loop, fixed ISL/OSL, greedy, output
length forced with ignore_eos/min_tokens) and prints TTFT, ITL/TPOT and throughput side by side,
then the ratios ours / theirs over the rounds' medians. The order of the clients rotates every
round, because CPU frequency scaling and a warming machine can move TTFT a lot between runs
(ai-dynamo/aiperf#1424 saw it double); the rounds' spread is printed too.

Clients:
- ours: `trtllm-oci bench --transport openai --api chat` (a subprocess, like the others);
- AIPerf (`aiperf profile --endpoint-type chat --streaming`, own venv: `--aiperf BIN`), with
  `--use-server-token-count`, so both count output tokens from the answer's usage;
- `vllm bench serve --backend openai-chat` if `--vllm BIN` exists; it is not installed here
  because `pip install vllm` pulls a CUDA build of torch and its nvidia-* libraries (several GB;
  see VLLM_SKIPPED), so the row says skipped.

Endpoint: `--url`/`--model`, or by default the OpenAI stand-in (tests/standins/openai_server.py:
trtllm-serve's shapes with fixed per-token delays, started as its own process). The stand-in also
reports what it did per request, so a "server" row gives its own TTFT for reference. Definitions:
TTFT p50 (first content chunk); ITL = per-request (E2E - TTFT) / (OSL - 1), which AIPerf calls
inter_token_latency and ours/vLLM call TPOT; chunk gap = every gap between content chunks (ours
itl_ms, AIPerf inter_chunk_latency, vLLM itl); throughput = output tokens/s over the run.

Usage: python benchmarks/bench_openai_clients.py [--concurrency 4] [--requests 100] [--rounds 2]
       [--isl 32] [--osl 16] [--first-token-ms 30] [--inter-token-ms 5] [--aiperf BIN] [--vllm BIN]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

METRICS = ("ttft_ms_p50", "itl_ms_p50", "chunk_gap_ms_p50", "out_tok_s", "req_s")
# `pip install --dry-run vllm` here (2026-12-01): vllm 0.33.0 with torch 2.14.0, triton 3.8.0 and the
# CUDA 13 wheels (nvidia-cudnn-cu13, nvidia-cublas, nvidia-nccl-cu13, ...), 198 packages in all.
VLLM_SKIPPED = ("skipped: `pip install vllm` (0.33.0) pulls torch 2.14.0 with the CUDA 13 nvidia-* wheels "
                "(several GB, 198 packages); install it into its own venv and pass --vllm to include it")


def _percentile50(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def start_standin(first_ms: float, gap_ms: float, model: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.standins.openai_server", "--port", "0", "--model", model,
         "--first-token-delay-ms", str(first_ms), "--inter-token-delay-ms", str(gap_ms)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("listening on "):
        proc.kill()
        raise RuntimeError(f"the stand-in did not start: {line!r}")
    return proc, line.split()[-1]


def server_side(url: str, since: int) -> dict:
    """The stand-in's own TTFT/gaps for the requests it received after index `since`."""
    with urllib.request.urlopen(f"{url}/_standin/requests", timeout=10) as response:
        rows = json.load(response)[since:]
    firsts = [(r["emit_ns"][0] - r["received_ns"]) / 1e6 for r in rows if r["emit_ns"]]
    gaps = [(b - a) / 1e6 for r in rows for a, b in zip(r["emit_ns"], r["emit_ns"][1:], strict=False)]
    return {"ttft_ms_p50": _percentile50(firsts), "chunk_gap_ms_p50": _percentile50(gaps), "n": len(rows)}


def request_count(url: str) -> int:
    with urllib.request.urlopen(f"{url}/_standin/requests", timeout=10) as response:
        return len(json.load(response))


def ours(url: str, model: str, args, tokenizer: Path, tmp: Path) -> dict:
    import pandas as pd

    out = tmp / f"ours-{time.time_ns()}"
    argv = [sys.executable, "-m", "trtllm_oci.bench.cli", "--transport", "openai", "--api", "chat", "--url", url,
            "--model", model, "--concurrency", str(args.concurrency), "--num-requests", str(args.requests),
            "--warmup", str(args.warmup), "--input-len", str(args.isl), "--output-len", str(args.osl),
            "--tokenizer", str(tokenizer), "--no-plots", "--quiet", "--out", str(out)]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        return {"error": f"exit {done.returncode}: {done.stderr[-600:]}"}
    row = pd.read_csv(out / "summary.csv").iloc[0]
    return {"ttft_ms_p50": row["ttft_ms_p50"], "itl_ms_p50": row["tpot_ms_p50"],
            "chunk_gap_ms_p50": row["itl_ms_p50"], "out_tok_s": row["out_tok_s"], "req_s": row["req_s"],
            "n_ok": int(row["n_ok"]), "tokens": row["token_count_source"]}


def aiperf(bin_path: str, url: str, model: str, args, tokenizer: Path, tmp: Path) -> dict | None:
    if not bin_path or not Path(bin_path).exists():
        return None
    bin_path = str(Path(bin_path).resolve())  # it runs with cwd=tmp, where a relative path names nothing
    art = tmp / f"aiperf-{time.time_ns()}"
    argv = [bin_path, "profile", "--model", model, "--url", url, "--endpoint-type", "chat", "--streaming",
            "--tokenizer", str(tokenizer), "--concurrency", str(args.concurrency),
            "--request-count", str(args.requests), "--warmup-request-count", str(args.warmup),
            "--isl", str(args.isl), "--isl-stddev", "0", "--osl", str(args.osl),
            "--extra-inputs", "ignore_eos:true", "--extra-inputs", f"min_tokens:{args.osl}",
            "--extra-inputs", "temperature:0", "--use-server-token-count", "--ui-type", "none",
            "--no-server-metrics", "--no-gpu-telemetry", "--artifact-dir", str(art)]
    # AIPerf's offline mode looks a local tokenizer directory up in the Hub cache and fails
    # (aiperf 0.13 common/tokenizer.py _from_pretrained_local); a path loads without the Hub anyway.
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    done = subprocess.run(argv, capture_output=True, text=True, timeout=900, env=env, cwd=tmp)
    found = list(art.rglob("profile_export_aiperf.json"))
    if done.returncode != 0 or not found:
        return {"error": f"exit {done.returncode}: {(done.stderr or done.stdout)[-600:]}"}
    data = json.loads(found[0].read_text())

    def metric(name: str, stat: str):
        return (data.get(name) or {}).get(stat)

    return {"ttft_ms_p50": metric("time_to_first_token", "p50"), "itl_ms_p50": metric("inter_token_latency", "p50"),
            "chunk_gap_ms_p50": metric("inter_chunk_latency", "p50"),
            "out_tok_s": metric("output_token_throughput", "avg"), "req_s": metric("request_throughput", "avg"),
            "n_ok": metric("request_count", "avg"), "tokens": "server"}


def vllm(bin_path: str, url: str, model: str, args, tokenizer: Path, tmp: Path) -> dict | None:
    if not bin_path or not Path(bin_path).exists():
        return None
    out = tmp / f"vllm-{time.time_ns()}"
    out.mkdir()
    argv = [bin_path, "bench", "serve", "--backend", "openai-chat", "--base-url", url, "--endpoint",
            "/v1/chat/completions", "--model", model, "--tokenizer", str(tokenizer), "--dataset-name", "random",
            "--random-input-len", str(args.isl), "--random-output-len", str(args.osl), "--num-prompts",
            str(args.requests), "--max-concurrency", str(args.concurrency), "--ignore-eos", "--num-warmups",
            str(args.warmup), "--save-result", "--result-dir", str(out), "--result-filename", "result.json"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    path = out / "result.json"
    if done.returncode != 0 or not path.exists():
        return {"error": f"exit {done.returncode}: {(done.stderr or done.stdout)[-600:]}"}
    data = json.loads(path.read_text())
    return {"ttft_ms_p50": data.get("median_ttft_ms"), "itl_ms_p50": data.get("median_tpot_ms"),
            "chunk_gap_ms_p50": data.get("median_itl_ms"), "out_tok_s": data.get("output_throughput"),
            "req_s": data.get("request_throughput"), "n_ok": data.get("completed"), "tokens": "server/tokenizer"}


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=None, help="an OpenAI endpoint (default: start the stand-in)")
    parser.add_argument("--model", default="standin-model")
    parser.add_argument("--tokenizer", type=Path, default=None, help="local tokenizer dir (default: a tiny one)")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--isl", type=int, default=32)
    parser.add_argument("--osl", type=int, default=16)
    parser.add_argument("--first-token-ms", type=float, default=30.0)
    parser.add_argument("--inter-token-ms", type=float, default=5.0)
    parser.add_argument("--aiperf", default=os.environ.get("AIPERF_BIN", str(REPO / ".bench-venv/aiperf/bin/aiperf")))
    parser.add_argument("--vllm", default=os.environ.get("VLLM_BIN", str(REPO / ".bench-venv/vllm/bin/vllm")))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        tokenizer = args.tokenizer
        if tokenizer is None:
            from trtllm_oci.tiny_model import make_tiny_llama

            tokenizer = make_tiny_llama(tmp / "tok")  # the clients need a local tokenizer; weights unused
        proc = None
        url = args.url
        if url is None:
            proc, url = start_standin(args.first_token_ms, args.inter_token_ms, args.model)
            endpoint = (f"OpenAI stand-in (tests/standins/openai_server.py, CPU, trtllm-serve shapes; first token "
                        f"{args.first_token_ms:g} ms, then {args.inter_token_ms:g} ms/token) at {url}")
        else:
            endpoint = f"{url} (model {args.model})"
        clients = {"ours (trtllm-oci bench openai)": ours, "aiperf chat --streaming": None,
                   "vllm bench serve openai-chat": None}
        results: dict[str, list[dict | None]] = {name: [] for name in clients}
        results["server (stand-in's own record)"] = []
        try:
            for round_no in range(args.rounds):
                names = list(clients)
                names = names[round_no % len(names):] + names[: round_no % len(names)]  # rotate the order
                for name in names:
                    since = request_count(url) if proc else 0
                    if name.startswith("ours"):
                        r = ours(url, args.model, args, tokenizer, tmp)
                    elif name.startswith("aiperf"):
                        r = aiperf(args.aiperf, url, args.model, args, tokenizer, tmp)
                    else:
                        r = vllm(args.vllm, url, args.model, args, tokenizer, tmp)
                    results[name].append(r)
                    if proc and r is not None and name.startswith("ours"):
                        results["server (stand-in's own record)"].append(server_side(url, since + args.warmup))
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(10)

    print(f"endpoint: {endpoint}")
    print(f"load: closed loop, concurrency {args.concurrency}, {args.requests} requests (+{args.warmup} warm-up), "
          f"ISL {args.isl} / OSL {args.osl}, {args.rounds} rounds in rotating order")
    header = f"{'client':34} {'TTFT p50 ms':>12} {'ITL p50 ms':>11} {'chunk gap':>10} {'out tok/s':>10} {'req/s':>8}"
    print(header + f" {'spread TTFT':>12}")
    medians: dict[str, dict[str, float | None]] = {}
    for name, runs in results.items():
        if name.startswith("vllm") and all(r is None for r in runs):
            print(f"{name:34} {VLLM_SKIPPED}")
            continue
        if not runs or all(r is None for r in runs):
            print(f"{name:34} not available (pass --aiperf BIN)" if name.startswith("aiperf") else f"{name:34} -")
            continue
        failed = [r for r in runs if r and "error" in r]
        if failed:
            print(f"{name:34} failed: {failed[0]['error']}")
            continue
        med = {m: _percentile50([r[m] for r in runs if r and r.get(m) is not None]) for m in METRICS}
        medians[name] = med
        ttfts = [r["ttft_ms_p50"] for r in runs if r and r.get("ttft_ms_p50") is not None]
        spread = f"{min(ttfts):.1f}-{max(ttfts):.1f}" if ttfts else "-"
        print(f"{name:34} {_fmt(med['ttft_ms_p50']):>12} {_fmt(med.get('itl_ms_p50')):>11} "
              f"{_fmt(med.get('chunk_gap_ms_p50')):>10} {_fmt(med.get('out_tok_s')):>10} {_fmt(med.get('req_s')):>8} "
              f"{spread:>12}")
    mine = medians.get("ours (trtllm-oci bench openai)")
    for theirs_name in ("aiperf chat --streaming", "vllm bench serve openai-chat"):
        theirs = medians.get(theirs_name)
        if mine and theirs:
            ratios = []
            for metric, label in (("ttft_ms_p50", "TTFT"), ("itl_ms_p50", "ITL"), ("out_tok_s", "throughput")):
                if mine.get(metric) and theirs.get(metric):
                    ratios.append(f"{label} {mine[metric] / theirs[metric]:.3f}")
            print(f"ours / {theirs_name.split()[0]}: " + ", ".join(ratios))
    return 0


if __name__ == "__main__":
    sys.exit(main())
