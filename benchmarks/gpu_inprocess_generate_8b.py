"""Batch-1 decode of a randomly initialised Llama-3.1-8B shape with transformers `generate`, in-process (no server).

The reference point for benchmarks/gpu_modelopt_and_openai_8b.py: what the CPU OpenAI smoke server's engine does
on the GPU without HTTP, detokenization or the server's thread hand-off, with the dynamic (eager) and the static
(compiled on first use) KV cache. Three runs each; the first of each pays warm-up/compilation.

Usage (GPU host): python benchmarks/gpu_inprocess_generate_8b.py OUT.json
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from gpu_modelopt_and_openai_8b import LLAMA_31_8B_CONFIG  # noqa: E402


def main() -> int:
    import torch
    import transformers

    fields = {k: v for k, v in LLAMA_31_8B_CONFIG.items() if k not in ("architectures", "model_type", "torch_dtype")}
    with torch.device("cuda"):
        model = transformers.LlamaForCausalLM(transformers.LlamaConfig(**fields)).to(torch.bfloat16).eval()
    prompt = torch.randint(0, 128000, (1, 128), device="cuda")
    result: dict[str, list[float]] = {}
    for name, kwargs in (("dynamic_cache", {}), ("static_cache", {"cache_implementation": "static"})):
        rates = []
        for _ in range(3):
            torch.cuda.synchronize()
            started = time.perf_counter()
            with torch.inference_mode():
                model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=256,
                               min_new_tokens=256, do_sample=False, **kwargs)
            torch.cuda.synchronize()
            rates.append(256 / (time.perf_counter() - started))
        result[name] = rates
    print(json.dumps(result))
    Path(sys.argv[1]).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
