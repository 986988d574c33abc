"""Token counts per request: server counts first, else the model's tokenizer, else a proxy.

The source used is recorded per request (`token_count_source` for output, `input_count_source`
for input). Tokenizer counts use `add_special_tokens=False` on the exact text sent/received, so
they exclude a BOS the server's preprocessing may add (server counts include it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from trtllm_oci.bench.errors import BenchInputError
from trtllm_oci.bench.records import RequestRecord

SOURCE_SERVER = "server"
SOURCE_TOKENIZER = "tokenizer"
SOURCE_CHUNKS = "chunks"
SOURCE_WORDS = "words"


class Tokenizer(Protocol):
    def encode(self, text: str, add_special_tokens: bool = ...) -> list[int]: ...

    def decode(self, ids: list[int], **kwargs: Any) -> str: ...


def load_tokenizer(path: str | Path) -> Any:
    """The model's Hugging Face tokenizer from a local directory (no Hub access)."""
    path = Path(path)
    if not path.is_dir():
        raise BenchInputError(
            f"--tokenizer {path} is not a directory; pass the HF model or tokenizer dir "
            "(the one holding tokenizer.json / tokenizer_config.json)"
        )
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise BenchInputError(f"cannot load a tokenizer from {path}: {exc}") from exc


def server_output_total(values: list[int], n_chunks: int) -> int:
    """Total output tokens from the per-response `num_output_tokens` values.

    Whether a streamed response carries a running total or a per-chunk delta is not documented,
    so the shape of the series decides: non-decreasing and ending at or above the number of
    responses reads as a running total (last value); anything else is summed as deltas.
    """
    if not values:
        raise BenchInputError("no server token counts to total")
    non_decreasing = all(b >= a for a, b in zip(values, values[1:], strict=False))
    if len(values) == 1 or (non_decreasing and values[-1] >= max(n_chunks, len(values))):
        return values[-1]
    return sum(values)


def count_output_tokens(record: RequestRecord, tokenizer: Any | None) -> tuple[int, str]:
    if record.server_output_tokens:
        return server_output_total(record.server_output_tokens, len(record.chunk_ns)), SOURCE_SERVER
    if tokenizer is not None:
        return len(tokenizer.encode(record.output_text, add_special_tokens=False)), SOURCE_TOKENIZER
    if record.streamed:
        return len(record.chunk_ns), SOURCE_CHUNKS
    return len(record.output_text.split()), SOURCE_WORDS


def count_input_tokens(record: RequestRecord, tokenizer: Any | None) -> tuple[int, str]:
    if record.server_input_tokens is not None:
        return record.server_input_tokens, SOURCE_SERVER
    if record.spec.input_len is not None:
        return record.spec.input_len, SOURCE_TOKENIZER
    if tokenizer is not None:
        return len(tokenizer.encode(record.spec.prompt, add_special_tokens=False)), SOURCE_TOKENIZER
    return len(record.spec.prompt.split()), SOURCE_WORDS
