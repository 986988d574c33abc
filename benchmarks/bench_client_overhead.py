"""How much the benchmark client itself costs: sustained request rate and added TTFT.

A real tritonserver (nvidia-pytriton wheel) serves tests/bench/models/timed_stream with both
delays set to 0, so every answer is immediate and what is measured is server + client overhead.
Run side by side on the same server:

- ours: trtllm_oci.bench over HTTP SSE (/generate_stream) and non-streaming /generate;
- aiperf (NVIDIA's successor to genai-perf) with its `template` endpoint on /generate_stream,
  if `--aiperf BIN` (or $AIPERF_BIN, or /tmp/aiperf-venv/bin/aiperf) exists; it has to live in its
  own venv (`python -m venv /tmp/aiperf-venv && /tmp/aiperf-venv/bin/pip install aiperf`);
- ApacheBench (`ab`, Debian apache2-utils, C) on /generate as a floor for HTTP request rate.

Usage: python benchmarks/bench_client_overhead.py [--concurrency 16] [--requests 2000] [--tokens 4]
Prints one table; ratios are ours / independent (req/s: > 1 means ours sends faster).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from trtllm_oci.bench.metrics import summarize_point  # noqa: E402
from trtllm_oci.bench.records import RequestSpec  # noqa: E402
from trtllm_oci.bench.runner import LoadPoint, run_load_point  # noqa: E402
from trtllm_oci.bench.transports import HttpTransport  # noqa: E402

MODEL = "timed_stream"
_INSTANT = '\nparameters [ { key: "first_token_delay_ms" value: { string_value: "0" } },\n' \
           '  { key: "inter_token_delay_ms" value: { string_value: "0" } } ]\n'


def _repo(tmp: Path) -> Path:
    repo = tmp / "repo"
    shutil.copytree(REPO / "tests" / "bench" / "models" / MODEL, repo / MODEL)
    config = repo / MODEL / "config.pbtxt"
    config.write_text(config.read_text() + _INSTANT)
    return repo


def ours(url: str, streaming: bool, concurrency: int, n: int, tokens: int) -> dict:
    specs = [RequestSpec(prompt="one two three four", output_len=tokens) for _ in range(n)]

    async def go():
        async with HttpTransport(url, MODEL, streaming=streaming, max_connections=max(concurrency, 16)) as t:
            await t.probe()
            await run_load_point(t, specs[: max(concurrency, 20)], LoadPoint(concurrency=concurrency))  # warm-up
            return await run_load_point(t, specs, LoadPoint(concurrency=concurrency))

    summary, _ = summarize_point(asyncio.run(go()), None)
    return {"req_s": summary["req_s"], "ttft_ms_p50": summary["ttft_ms_p50"], "e2e_ms_p50": summary["e2e_ms_p50"],
            "n_err": summary["n_err"]}


def apachebench(url: str, concurrency: int, n: int, tokens: int, tmp: Path) -> dict | None:
    if shutil.which("ab") is None:
        return None
    body = tmp / "body.json"
    body.write_text(json.dumps({"text_input": "one two three four", "max_tokens": tokens, "stream": False}))
    out = subprocess.run(["ab", "-q", "-c", str(concurrency), "-n", str(n), "-p", str(body), "-T",
                          "application/json", f"{url}/v2/models/{MODEL}/generate"], capture_output=True, text=True)
    rps = re.search(r"Requests per second:\s+([\d.]+)", out.stdout)
    tpr = re.search(r"Time per request:\s+([\d.]+) \[ms\] \(mean\)", out.stdout)
    p50 = re.search(r"^\s+50%\s+(\d+)", out.stdout, re.M)
    failed = re.search(r"Failed requests:\s+(\d+)", out.stdout)
    if not rps:
        return {"error": out.stdout[-500:] + out.stderr[-500:]}
    return {"req_s": float(rps.group(1)), "e2e_ms_mean": float(tpr.group(1)),
            "e2e_ms_p50": float(p50.group(1)) if p50 else None, "n_err": int(failed.group(1)) if failed else None}


def aiperf(bin_path: str, url: str, concurrency: int, n: int, tokens: int, tmp: Path, tokenizer: Path) -> dict | None:
    if not bin_path or not Path(bin_path).exists():
        return None
    art = tmp / f"aiperf-c{concurrency}"
    template = '{"text_input": {{ text|tojson }}, "max_tokens": ' + str(tokens) + ', "stream": true}'
    argv = [bin_path, "profile", "--model", MODEL, "--url", url, "--endpoint-type", "template",
            "--custom-endpoint", f"/v2/models/{MODEL}/generate_stream", "--streaming",
            "--extra-inputs", json.dumps({"payload_template": template, "response_field": "text_output"}),
            "--concurrency", str(concurrency), "--request-count", str(n), "--warmup-request-count", str(max(concurrency, 20)),
            "--tokenizer", str(tokenizer), "--synthetic-input-tokens-mean", "8", "--synthetic-input-tokens-stddev", "0",
            "--output-tokens-mean", str(tokens), "--ui-type", "none", "--artifact-dir", str(art)]
    started = time.time()
    out = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    found = list(art.rglob("profile_export_aiperf.json"))
    if out.returncode != 0 or not found:
        return {"error": f"exit {out.returncode} after {time.time() - started:.0f}s: " + (out.stderr or out.stdout)[-800:]}
    data = json.loads(found[0].read_text())

    def metric(name, stat):
        entry = data.get(name) or {}
        return entry.get(stat)

    return {"req_s": metric("request_throughput", "avg"), "ttft_ms_p50": metric("time_to_first_token", "p50"),
            "e2e_ms_p50": metric("request_latency", "p50"), "n_err": (data.get("error_request_count") or {}).get("avg", 0)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--latency-requests", type=int, default=300)
    parser.add_argument("--tokens", type=int, default=4)
    parser.add_argument("--aiperf", default=os.environ.get("AIPERF_BIN", "/tmp/aiperf-venv/bin/aiperf"))
    args = parser.parse_args()
    from trtllm_oci.serving.local import LocalTriton
    from trtllm_oci.tiny_model import make_tiny_llama

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        tokenizer = make_tiny_llama(tmp / "tok")  # aiperf needs a local tokenizer; its weights are unused
        rows = []
        with LocalTriton(_repo(tmp)) as server:
            url = server.http_url
            for c, n in ((1, args.latency_requests), (args.concurrency, args.requests)):
                rows.append((f"ours http_sse c={c}", ours(url, True, c, n, args.tokens)))
                rows.append((f"ours http_generate c={c}", ours(url, False, c, n, args.tokens)))
                rows.append((f"ab /generate c={c}", apachebench(url, c, n, args.tokens, tmp)))
                rows.append((f"aiperf template SSE c={c}", aiperf(args.aiperf, url, c, n, args.tokens, tmp, tokenizer)))
    print(f"{'client':32} {'req/s':>9} {'TTFT p50 ms':>12} {'E2E p50 ms':>11} {'errors':>7}")
    for name, r in rows:
        if r is None:
            print(f"{name:32} not available")
        elif "error" in r:
            print(f"{name:32} failed: {r['error']}")
        else:
            fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
            print(f"{name:32} {fmt(r.get('req_s')):>9} {fmt(r.get('ttft_ms_p50')):>12} {fmt(r.get('e2e_ms_p50')):>11} "
                  f"{fmt(r.get('n_err')):>7}")
    table = dict(rows)
    for c in (1, args.concurrency):
        mine, theirs = table.get(f"ours http_sse c={c}"), table.get(f"aiperf template SSE c={c}")
        if mine and theirs and "error" not in theirs and theirs.get("req_s"):
            print(f"c={c}: ours/aiperf req/s = {mine['req_s'] / theirs['req_s']:.2f}, "
                  f"TTFT p50 ours - aiperf = {mine['ttft_ms_p50'] - (theirs['ttft_ms_p50'] or 0):+.2f} ms")
        mine, theirs = table.get(f"ours http_generate c={c}"), table.get(f"ab /generate c={c}")
        if mine and theirs and "error" not in theirs:
            print(f"c={c}: ours/ab req/s on /generate = {mine['req_s'] / theirs['req_s']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
