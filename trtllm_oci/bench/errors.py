"""Benchmark errors; subclasses of the project's TrtllmOciError so the CLI prints them plainly."""

from __future__ import annotations

from trtllm_oci.errors import TrtllmOciError


class BenchError(TrtllmOciError):
    """A benchmark could not run; the message names the bad value and the fix."""


class BenchInputError(BenchError, ValueError):
    """A benchmark input (file, tokenizer dir, option) is missing or malformed."""


class TransportError(BenchError, RuntimeError):
    """The endpoint could not be reached or probed."""
