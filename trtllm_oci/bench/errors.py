"""Benchmark errors; subclasses of the project's TrtllmOciError so the CLI prints them plainly."""

from __future__ import annotations

from trtllm_oci.errors import InputError, ServiceError


class BenchInputError(InputError):
    """A benchmark input (file, tokenizer dir, option) is missing or malformed."""


class TransportError(ServiceError):
    """The endpoint could not be reached or probed."""


class BenchmarkFailedError(ServiceError):
    """The endpoint answered none of a benchmark's requests, or stopped answering during it."""
