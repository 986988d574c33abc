"""Benchmark prompts: exact-length synthetic prompts and ShareGPT-format datasets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from trtllm_oci.bench.errors import BenchInputError
from trtllm_oci.bench.records import RequestSpec

_MAX_ALIGN_STEPS = 16
_MAX_ATTEMPTS = 20
# Used when no tokenizer is given: common English words are one token in most LLM vocabularies,
# but the count is still approximate (input_len stays None, counts come from the server).
_FALLBACK_WORDS = [
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "that",
    "for",
    "it",
    "as",
    "was",
    "with",
    "be",
    "by",
    "on",
    "not",
    "he",
    "this",
    "are",
    "or",
    "his",
    "from",
    "at",
    "which",
    "but",
    "have",
    "an",
    "they",
    "you",
    "were",
    "her",
    "she",
    "there",
    "one",
    "all",
    "we",
    "their",
    "been",
    "has",
    "when",
    "who",
    "will",
    "more",
    "no",
    "if",
    "out",
    "so",
    "said",
    "what",
    "up",
    "its",
    "about",
    "into",
    "than",
    "them",
    "can",
    "only",
    "other",
    "new",
    "some",
    "could",
    "time",
    "these",
    "two",
    "may",
    "then",
    "do",
    "first",
    "any",
    "my",
    "now",
    "such",
    "like",
    "our",
    "over",
    "man",
    "me",
    "even",
    "most",
    "made",
    "after",
    "also",
    "did",
    "many",
]


def _token_pool(tokenizer: Any) -> np.ndarray:
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    vocab_size = len(tokenizer)
    pool = np.array([i for i in range(vocab_size) if i not in special], dtype=np.int64)
    if pool.size == 0:
        raise BenchInputError("the tokenizer has no non-special tokens to build prompts from")
    return pool


def exact_length_prompt(
    tokenizer: Any, n_tokens: int, rng: np.random.Generator, pool: np.ndarray | None = None
) -> str:
    """A prompt whose re-encoding (add_special_tokens=False) is exactly `n_tokens` long.

    Random token ids seldom survive decode -> encode unchanged (merges across boundaries,
    byte-level pieces), so the text is re-encoded and trimmed or extended until it is exact
    (the drift vllm-project/vllm#10847 reports).
    """
    if n_tokens < 1:
        raise BenchInputError(f"input length {n_tokens} must be >= 1 token")
    pool = _token_pool(tokenizer) if pool is None else pool
    for _ in range(_MAX_ATTEMPTS):
        text = tokenizer.decode(rng.choice(pool, size=n_tokens).tolist())
        for _ in range(_MAX_ALIGN_STEPS):
            ids = tokenizer.encode(text, add_special_tokens=False)
            if len(ids) == n_tokens:
                return text
            if len(ids) > n_tokens:
                text = tokenizer.decode(ids[:n_tokens])
            else:
                text = text + tokenizer.decode(rng.choice(pool, size=n_tokens - len(ids)).tolist())
    raise BenchInputError(
        f"could not build a prompt that re-encodes to exactly {n_tokens} tokens in {_MAX_ATTEMPTS} "
        "attempts; this tokenizer's decode/encode is not stable on random ids"
    )


def fixed_length_requests(
    tokenizer: Any | None, input_len: int, output_len: int, num_requests: int, seed: int
) -> list[RequestSpec]:
    """`num_requests` distinct prompts of `input_len` tokens asking for exactly `output_len` tokens."""
    if num_requests < 1:
        raise BenchInputError(f"num_requests={num_requests} must be >= 1")
    if input_len < 1 or output_len < 1:
        raise BenchInputError(f"input/output lengths {input_len}/{output_len} must both be >= 1 token")
    rng = np.random.default_rng(seed)
    if tokenizer is None:
        words = np.array(_FALLBACK_WORDS)
        return [
            RequestSpec(prompt=" ".join(rng.choice(words, size=input_len).tolist()), output_len=output_len)
            for _ in range(num_requests)
        ]
    pool = _token_pool(tokenizer)
    return [
        RequestSpec(
            prompt=exact_length_prompt(tokenizer, input_len, rng, pool),
            output_len=output_len,
            input_len=input_len,
        )
        for _ in range(num_requests)
    ]


def parse_io_pairs(text: str) -> list[tuple[int, int]]:
    """'128/128,2048/128' -> [(128, 128), (2048, 128)]."""
    pairs = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        parts = item.split("/")
        if len(parts) != 2 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
            raise BenchInputError(
                f"I/O length pair {item!r} must look like INPUT/OUTPUT with positive integers, e.g. 128/2048"
            )
        pairs.append((int(parts[0]), int(parts[1])))
    if not pairs:
        raise BenchInputError(f"no I/O length pairs in {text!r}; e.g. --io-pairs 128/128,2048/128")
    return pairs


def load_sharegpt(path: str | Path) -> list[tuple[str, str]]:
    """(first human turn, first reply) pairs from a ShareGPT-format JSON file."""
    path = Path(path)
    if not path.is_file():
        raise BenchInputError(
            f"ShareGPT file {path} not found (e.g. ShareGPT_V3_unfiltered_cleaned_split.json)"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise BenchInputError(f"{path} is not JSON: {exc}") from exc
    if not isinstance(data, list):
        raise BenchInputError(
            f"{path}: expected a JSON list of {{'conversations': [...]}} objects, got {type(data).__name__}"
        )
    pairs = []
    for entry in data:
        turns = entry.get("conversations") if isinstance(entry, dict) else None
        if not isinstance(turns, list) or len(turns) < 2:
            continue
        first, second = turns[0], turns[1]
        if not (isinstance(first, dict) and isinstance(second, dict)):
            continue
        if first.get("from") in ("human", "user") and second.get("from") in ("gpt", "assistant", "chatgpt"):
            pairs.append((str(first.get("value", "")), str(second.get("value", ""))))
    if not pairs:
        raise BenchInputError(f"{path} holds no conversation whose first two turns are human then gpt")
    return pairs


def sharegpt_requests(
    path: str | Path,
    tokenizer: Any | None,
    num_requests: int,
    seed: int,
    output_len: int | None = None,
    max_input_len: int = 1024,
    max_total_len: int = 2048,
) -> list[RequestSpec]:
    """Sampled ShareGPT requests; output length = the reference reply's token count unless fixed.

    Filters like vllm's sample_sharegpt_requests (vllm/benchmarks/datasets.py): prompts or
    replies under 4 tokens, prompts over `max_input_len`, or totals over `max_total_len` are skipped.
    With a natural length the server may stop at EOS (no min_tokens is sent).
    """
    if tokenizer is None and output_len is None:
        raise BenchInputError("a ShareGPT dataset needs --tokenizer to size replies, or a fixed --output-len")
    pairs = load_sharegpt(path)
    order = np.random.default_rng(seed).permutation(len(pairs))
    specs: list[RequestSpec] = []
    for i in order:
        prompt, reply = pairs[int(i)]
        if tokenizer is not None:
            n_in = len(tokenizer.encode(prompt, add_special_tokens=False))
            n_out = output_len or len(tokenizer.encode(reply, add_special_tokens=False))
        else:
            n_in, n_out = None, int(output_len)  # type: ignore[arg-type]
        if n_in is not None and (n_in < 4 or n_in > max_input_len or n_in + n_out > max_total_len):
            continue
        if n_out < 4 and output_len is None:
            continue
        specs.append(
            RequestSpec(
                prompt=prompt, output_len=n_out, input_len=n_in, fixed_output_len=output_len is not None
            )
        )
        if len(specs) == num_requests:
            break
    if len(specs) < num_requests:
        raise BenchInputError(
            f"{path} yields only {len(specs)} usable requests after filtering, {num_requests} asked; "
            "lower --num-requests or use a larger file"
        )
    return specs
