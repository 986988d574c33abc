"""What one benchmark request asks for and what the client observed while it ran."""

from __future__ import annotations

from dataclasses import dataclass, field

from trtllm_oci.bench.errors import BenchInputError
from trtllm_oci.errors import redact_credentials


@dataclass(frozen=True)
class RequestSpec:
    """One prompt to send. `input_len` is the tokenizer's count of `prompt` (None if unknown)."""

    prompt: str
    output_len: int
    input_len: int | None = None
    fixed_output_len: bool = True
    extra_inputs: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.output_len < 1:
            raise BenchInputError(f"output_len={self.output_len} must be >= 1 (the number of tokens to generate)")


@dataclass
class RequestRecord:
    """Timestamps are `time.perf_counter_ns()` values taken in the client process.

    `chunk_ns[i]` is when the i-th non-empty output chunk arrived; `chunk_texts[i]` its text.
    """

    index: int
    spec: RequestSpec
    scheduled_ns: int = 0
    send_ns: int = 0
    end_ns: int = 0
    chunk_ns: list[int] = field(default_factory=list)
    chunk_texts: list[str] = field(default_factory=list)
    streamed: bool = True
    error: str | None = None
    http_status: int | None = None
    server_input_tokens: int | None = None
    server_output_tokens: list[int] = field(default_factory=list)
    #: The stream's `data: [DONE]` arrived (OpenAI streams end with it; one cut short lacks it).
    saw_done: bool = False
    #: The request failed because the per-request timeout expired (the server stopped answering).
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None and self.end_ns > 0

    @property
    def output_text(self) -> str:
        return "".join(self.chunk_texts)

    def add_chunk(self, now_ns: int, text: str) -> None:
        if text:
            self.chunk_ns.append(now_ns)
            self.chunk_texts.append(text)

    def fail(self, message: str) -> None:
        if self.error is None:
            # Client errors quote the URL, and the requests table is shared with whoever reads the results.
            self.error = redact_credentials(message)
