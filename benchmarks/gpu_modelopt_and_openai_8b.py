"""On one GPU: ModelOpt FP8 PTQ + Hugging Face export of a small Llama, then batch-1 decode of a randomly
initialised Llama-3.1-8B-shaped model (bf16) served by the CPU OpenAI smoke server's code on CUDA, measured
with the project's benchmark (`trtllm_oci.bench`, --transport openai) and a direct streaming client.

Not TensorRT-LLM: the serving engine is Hugging Face transformers' eager `generate` at batch 1, the smoke
server's engine. The roofline efficiency = weight bytes read per decode step × tokens/s ÷ HBM bandwidth.

Usage (GPU host, this package and its `quantize` extra importable):
    python benchmarks/gpu_modelopt_and_openai_8b.py --out OUT [--bandwidth-gbs 4800] [--output-len 256]
Writes OUT/gpu_run.json (every figure and how it was made) and prints it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

# Public Llama-3.1-8B architecture (meta-llama/Llama-3.1-8B config.json): 32 layers, hidden 4096, 32 heads,
# 8 KV heads, head_dim 128, MLP 14336, vocab 128256, rope theta 500000 with llama3 scaling, untied lm_head.
LLAMA_31_8B_CONFIG = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096, "intermediate_size": 14336,
    "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128,
    "vocab_size": 128256, "max_position_embeddings": 131072, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
    "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                     "original_max_position_embeddings": 8192, "rope_type": "llama3"},
    "hidden_act": "silu", "attention_bias": False, "mlp_bias": False, "tie_word_embeddings": False,
    "bos_token_id": 128000, "eos_token_id": 128001, "torch_dtype": "bfloat16",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def llama_param_counts(config: dict) -> dict[str, int]:
    h, i, v, n = config["hidden_size"], config["intermediate_size"], config["vocab_size"], config["num_hidden_layers"]
    kv = config["num_key_value_heads"] * config["head_dim"]
    q = config["num_attention_heads"] * config["head_dim"]
    per_layer = h * q + 2 * h * kv + q * h + 3 * h * i + 2 * h
    return {"embedding": v * h, "layers": n * per_layer, "final_norm": h, "lm_head": v * h}


TINY_DRY_RUN_CONFIG = {**LLAMA_31_8B_CONFIG, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                       "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "vocab_size": 1024,
                       "max_position_embeddings": 1024, "rope_scaling": None, "bos_token_id": 1, "eos_token_id": 2}


def kv_bytes_per_token(config: dict, dtype_bytes: int = 2) -> int:
    return 2 * config["num_hidden_layers"] * config["num_key_value_heads"] * config["head_dim"] * dtype_bytes


def write_wordlevel_tokenizer(model_dir: Path, vocab_size: int, bos_id: int, eos_id: int) -> None:
    """A tokenizer with one word per id ("w0" ... "wN"), so that every token a random model generates has
    text: a client that times text chunks (ours does) then sees one chunk per token, as with a real vocabulary."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.WordLevel(vocab={f"w{i}": i for i in range(vocab_size)}, unk_token="w0"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins words with spaces
    PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="w0", pad_token="w0", bos_token=f"w{bos_id}",
                            eos_token=f"w{eos_id}").save_pretrained(model_dir)


def run_ptq(work: Path, args: argparse.Namespace, report: dict) -> None:
    from trtllm_oci.checkpoint.modelopt_ptq import (
        TINY_CALIBRATION_TEXTS,
        CalibrationDir,
        KvCacheQuant,
        PtqMethod,
        PtqRequest,
    )
    from trtllm_oci.checkpoint.modelopt_ptq import run_ptq as ptq
    from trtllm_oci.tiny_model import make_tiny_llama

    started = time.monotonic()
    shape = {} if args.dry_run else dict(hidden=2048, layers=8, heads=16, kv_heads=8, intermediate=5632,
                                         max_position_embeddings=2048)
    source = make_tiny_llama(work / "small-llama", **shape)
    calib = work / "calib"
    calib.mkdir()
    (calib / "texts.txt").write_text("\n".join(TINY_CALIBRATION_TEXTS * 8) + "\n")
    made_s = time.monotonic() - started
    log: list[str] = []
    result = ptq(PtqRequest(model_dir=source, output_dir=work / "small-llama-fp8", method=PtqMethod.FP8,
                            kv_cache=KvCacheQuant.FP8, calibration=CalibrationDir(path=calib), calib_size=64,
                            calib_seq_len=256, batch_size=8, device=args.device, dtype=args.dtype,
                            target_compute_capability="9.0"), log=log.append)
    report["ptq"] = {"model": f"tiny_model.make_tiny_llama({shape}), random weights", "make_model_s": made_s,
                     "result": json.loads(result.model_dump_json()), "log": log,
                     "export_bytes": sum(p.stat().st_size for p in result.output_dir.iterdir())}


def run_serving(work: Path, out: Path, args: argparse.Namespace, report: dict) -> None:
    import httpx

    from trtllm_oci.serving.openai_server import OpenAIServerSpec, choose_openai_server, start_openai_server

    model_dir = work / "llama-3.1-8b-random"
    model_dir.mkdir()
    config = TINY_DRY_RUN_CONFIG if args.dry_run else LLAMA_31_8B_CONFIG
    write_wordlevel_tokenizer(model_dir, config["vocab_size"], config["bos_token_id"], config["eos_token_id"])
    (model_dir / "config.json").write_text(json.dumps(config, indent=2))
    counts = llama_param_counts(config)
    total = sum(counts.values())
    per_step_bytes = 2 * (total - counts["embedding"])  # bf16; decoding reads one embedding row, not the table
    served = "llama-3.1-8b-random"
    spec = OpenAIServerSpec(checkpoint_dir=model_dir, served_model_name=served, port=free_port(), device=args.device,
                            dtype=args.dtype, random_weights=True, startup_timeout_s=600,
                            threads=None if args.device == "cuda" else 1,
                            cache_implementation=args.cache_implementation)
    started = time.monotonic()
    server = start_openai_server(spec, choice=choose_openai_server("cpu-smoke"), log_path=out / "server.log")
    load_s = time.monotonic() - started
    try:
        # A direct client beside the benchmark: one streamed request, chunk times and the server's usage.
        body = {"model": served, "prompt": "The quick brown fox " * 25, "max_tokens": args.output_len,
                "temperature": 0, "ignore_eos": True, "stream": True, "stream_options": {"include_usage": True}}
        direct = []
        for _ in range(args.direct_requests):
            times, usage = [], None
            sent = time.perf_counter()
            with httpx.stream("POST", f"{server.base_url}/v1/completions", json=body, timeout=600) as response:
                for line in response.iter_lines():
                    if line.startswith("data: ") and line != "data: [DONE]":
                        event = json.loads(line[6:])
                        if event.get("choices"):
                            times.append(time.perf_counter())
                        usage = event.get("usage") or usage
            decode_s = times[-1] - times[0]
            tokens = usage["completion_tokens"]
            direct.append({"ttft_ms": 1000 * (times[0] - sent), "decode_tok_s": (tokens - 1) / decode_s,
                           "completion_tokens": tokens, "prompt_tokens": usage["prompt_tokens"], "chunks": len(times)})
        bench_dir = work / "bench"
        cmd = [sys.executable, "-m", "trtllm_oci.bench.cli", "--url", server.base_url, "--transport", "openai",
               "--api", "completions", "--model", served, "--concurrency", "1", "--num-requests",
               str(args.bench_requests), "--warmup", str(args.warmup), "--input-len", str(args.input_len), "--output-len",
               str(args.output_len), "--tokenizer", str(model_dir), "--gpu-count", "1", "--gpu-bw-gbs",
               str(args.bandwidth_gbs), "--weight-bytes", str(per_step_bytes), "--kv-bytes-per-token",
               str(kv_bytes_per_token(config)), "--out", str(bench_dir), "--no-plots"]
        bench = subprocess.run(cmd, capture_output=True, text=True, timeout=1200)
        summary, errors = None, []
        if (bench_dir / "summary.csv").is_file():
            import pandas as pd

            summary = json.loads(pd.read_csv(bench_dir / "summary.csv").to_json(orient="records"))
            shutil.copy(bench_dir / "summary.csv", out / "bench_summary.csv")
            requests = pd.read_csv(bench_dir / "requests.csv")
            errors = requests["error"].dropna().unique().tolist() if "error" in requests else []
        metrics = httpx.get(f"{server.base_url}/metrics", timeout=30).json()
    finally:
        server.stop()
    best = max(d["decode_tok_s"] for d in direct)
    report["serve"] = {
        "server": server.choice.label,
        "engine": f"transformers generate, {args.cache_implementation} KV cache, batch 1, {args.dtype}",
        "model": "random-init Llama-3.1-8B shape from config.json (no weights downloaded); a word-level "
                 "tokenizer of 128256 words w0..w128255 (every generated id has text; counts from usage)",
        "config": config, "params": counts, "kv_bytes_per_token": kv_bytes_per_token(config), "params_total": total, "weight_bytes_total_bf16": 2 * total,
        "weight_bytes_per_decode_step": per_step_bytes, "bandwidth_gbs": args.bandwidth_gbs,
        "startup_s": load_s, "direct_client": direct,
        "direct_roofline_efficiency": per_step_bytes * best / (args.bandwidth_gbs * 1e9),
        "bandwidth_limit_tok_s": args.bandwidth_gbs * 1e9 / per_step_bytes,
        "bench_cmd": cmd[1:], "bench_rc": bench.returncode, "bench_stdout": bench.stdout[-3000:],
        "bench_stderr": bench.stderr[-6000:], "bench_summary": summary, "bench_errors": errors, "server_metrics_tail": metrics[-3:],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--work", type=Path, default=Path("/tmp/gpu-run"))
    parser.add_argument("--bandwidth-gbs", type=float, default=4800.0)  # H200 datasheet (gpu_shapes.yaml)
    parser.add_argument("--input-len", type=int, default=128)
    parser.add_argument("--output-len", type=int, default=256)
    parser.add_argument("--bench-requests", type=int, default=8)
    parser.add_argument("--direct-requests", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=2, help="benchmark warm-up requests (not measured)")
    parser.add_argument("--cache-implementation", choices=["dynamic", "static"], default="dynamic")
    parser.add_argument("--skip-ptq", action="store_true")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--dry-run", action="store_true", help="tiny shapes (for a CPU check of this script)")
    args = parser.parse_args()
    import torch
    import transformers

    args.out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    report: dict = {"gpu": torch.cuda.get_device_name() if args.device == "cuda" else args.device, "torch": torch.__version__,
                    "transformers": transformers.__version__, "python": sys.version.split()[0]}
    try:
        if not args.skip_ptq:
            run_ptq(args.work, args, report)
        run_serving(args.work, args.out, args, report)
    finally:
        (args.out / "gpu_run.json").write_text(json.dumps(report, indent=2, default=str))
    print(json.dumps(report, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
