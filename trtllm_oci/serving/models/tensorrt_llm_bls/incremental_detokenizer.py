"""Streaming detokenization for a component that sees a request's whole token stream.

Plain module (no Triton import) shipped next to the model.py of the Python-backend models that use it:
the assembler copies every module of a model's source directory into ``<model>/1/``, and the Python
backend puts that directory on ``sys.path``, as it does for upstream's ``tensorrt_llm_bls/1/lib``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

REPLACEMENT_CHAR = "\ufffd"


class IncrementalDetokenizer:
    """Turn a token stream into text deltas whose concatenation equals ``decode(all tokens)``.

    Each ``push`` decodes all tokens so far and returns what extends the text already emitted,
    holding back a trailing U+FFFD (bytes of a character whose remaining bytes are still to
    come). ``finish`` returns whatever was held back. Never splits a character, never drops the
    spaces a decoder only produces in context (SentencePiece strips the leading space of a chunk
    decoded alone; byte-level BPE cannot decode half a character).
    """

    def __init__(self, decode: Callable[[list[int]], str]):
        self._decode = decode
        self._tokens: list[int] = []
        self._emitted = ""
        self._decoded: str | None = ""  # decode(self._tokens); None once tokens were added

    def push(self, tokens: Iterable[int]) -> str:
        added = [int(t) for t in tokens]
        if added:
            self._tokens.extend(added)
            self._decoded = None
        stable = self._full_text().rstrip(REPLACEMENT_CHAR)
        if not stable.startswith(self._emitted):
            # A decoder may rewrite earlier text (e.g. clean-up of spaces before punctuation);
            # what was sent cannot be recalled, so continue after the common prefix.
            common = _common_prefix_len(stable, self._emitted)
            if len(stable) <= len(self._emitted):
                return ""
            self._emitted = stable
            return stable[common:]
        delta = stable[len(self._emitted) :]
        self._emitted = stable
        return delta

    def finish(self) -> str:
        """The held-back tail: U+FFFD that no later token can complete any more."""
        text = self._full_text()
        delta = text[len(self._emitted) :] if text.startswith(self._emitted) else ""
        self._emitted = text
        return delta

    def _full_text(self) -> str:
        if self._decoded is None:
            self._decoded = self._decode(list(self._tokens)) if self._tokens else ""
        return self._decoded

    @property
    def text(self) -> str:
        """Everything emitted so far."""
        return self._emitted

    @property
    def tokens(self) -> list[int]:
        return list(self._tokens)


def _common_prefix_len(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
