"""Request bodies and response events of one endpoint dialect, apart from how they travel.

A transport (HTTP, signed OCI, gRPC) moves bytes; a wire format says what the body is and how one
response event changes the record. Two dialects:

- `TritonGenerateWire`: Triton's generate extension for the TensorRT-LLM ensemble
  (triton-inference-server/server: docs/protocol/extension_generate.md). The HTTP status belongs to
  the first event only, so later failures arrive as `data: {"error": ...}` inside a 200 stream.
- `OpenAIWire`: `/v1/chat/completions` and `/v1/completions` as trtllm-serve, vLLM and OpenAI
  answer them (see `trtllm_oci.bench.openai_api`); a stream ends with `data: [DONE]`.

`SseDecoder` splits a text/event-stream into events (the WHATWG event-stream rules the OpenAI SDK
follows: openai/openai-python src/openai/_streaming.py SSEDecoder): `data:` lines of one event are
joined with newlines, a blank line dispatches, `:` lines are comments, `event:` names the event.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any

from trtllm_oci.bench import openai_api
from trtllm_oci.bench.errors import BenchInputError
from trtllm_oci.bench.payload import ModelCapabilities, generate_body
from trtllm_oci.bench.records import RequestRecord, RequestSpec

DONE = b"[DONE]"


def text_of(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return "".join(text_of(v) for v in value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def int_of(value: Any) -> int | None:
    while isinstance(value, list):
        if not value:
            return None
        value = value[0]
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def apply_generate_event(record: RequestRecord, event: dict[str, Any], now_ns: int) -> None:
    """Fold one generate-extension JSON event into the record (errors included)."""
    if "error" in event:
        record.fail(f"server error in stream: {text_of(event['error'])}")
        return
    record.add_chunk(now_ns, text_of(event.get("text_output")))
    n_out = int_of(event.get("num_output_tokens"))
    if n_out is not None:
        record.server_output_tokens.append(n_out)
    n_in = int_of(event.get("num_input_tokens"))
    if n_in is not None:
        record.server_input_tokens = n_in


class WireFormat(abc.ABC):
    """What one request's body is and how each response event is folded into its record."""

    #: Short name; part of the `transport` column where the route does not imply it.
    name: str = "abstract"
    #: True when a complete stream ends with `data: [DONE]` (a stream cut short lacks it).
    done_marker: bool = False

    @abc.abstractmethod
    def body(self, spec: RequestSpec, caps: ModelCapabilities | None, stream: bool) -> dict[str, Any]:
        """The JSON body for `spec`."""

    @abc.abstractmethod
    def fold(self, record: RequestRecord, event: Any, now_ns: int) -> None:
        """Fold one decoded JSON event (a stream event or a whole non-streaming answer) into the record."""

    def finish(self, record: RequestRecord, streamed: bool) -> None:
        """Called once the response has been read; marks an incomplete answer as failed."""
        if record.error is not None:
            return
        if streamed and self.done_marker and not record.saw_done:
            record.fail("stream ended without data: [DONE]: the server closed it before the answer was complete")
        elif not record.chunk_ns:
            record.fail("stream ended without any output text" if streamed else "answer carried no output text")


class TritonGenerateWire(WireFormat):
    """The ensemble's generate extension: inputs shaped by the model's declared capabilities."""

    name = "generate"

    def body(self, spec: RequestSpec, caps: ModelCapabilities | None, stream: bool) -> dict[str, Any]:
        if caps is None:
            raise RuntimeError("call probe() (or pass caps=) before send()")
        return generate_body(spec, caps, stream=stream)

    def fold(self, record: RequestRecord, event: Any, now_ns: int) -> None:
        if not isinstance(event, dict):
            record.fail(f"response is not a JSON object: {str(event)[:200]!r}")
            return
        if self._cumulative_text:
            event = _as_increment(record, event)
            if event is None:
                return
        apply_generate_event(record, event, now_ns)

    _cumulative_text = False


class LlmapiGenerateWire(TritonGenerateWire):
    """Triton's llmapi model: each streamed response carries the whole text so far (its model.py sends
    `output.text` of the LLM API's CompletionOutput, which is cumulative; `text_diff` is the increment:
    NVIDIA/TensorRT-LLM:triton_backend/all_models/llmapi/tensorrt_llm/1/model.py@b35ac1b64368513d215c57d2ed01d62d910df8da
    _create_response, tensorrt_llm/executor/result.py CompletionOutput.text_diff), so each event is folded as
    what it adds."""

    name = "llmapi_generate"
    _cumulative_text = True


def _as_increment(record: RequestRecord, event: dict[str, Any]) -> dict[str, Any] | None:
    if "error" in event:
        return event
    text = text_of(event.get("text_output"))
    so_far = record.output_text
    if not text.startswith(so_far):
        record.fail(f"the llmapi model's text_output {text[:200]!r} does not extend the text so far {so_far[:200]!r}")
        return None
    return {**event, "text_output": text[len(so_far):]}


def generate_wire(caps: ModelCapabilities | None) -> TritonGenerateWire:
    """The generate-extension wire the served model speaks (the llmapi model's, or the ensemble's)."""
    return LlmapiGenerateWire() if caps is not None and caps.dialect == "llmapi" else TritonGenerateWire()


@dataclass
class OpenAIWire(WireFormat):
    """OpenAI chat or completions bodies for `model`; token counts from the answer's `usage`.

    `length_fields` are the non-OpenAI extensions sent to force a fixed output length
    (`min_tokens`, `ignore_eos`: both accepted by trtllm-serve and vLLM); empty for a strict
    OpenAI endpoint, where the output may then stop early and osl_mismatch says so.
    """

    model: str
    api: str = "chat"
    length_fields: tuple[str, ...] = openai_api.DEFAULT_LENGTH_FIELDS
    done_marker = True

    def __post_init__(self) -> None:
        openai_api.check_api(self.api)
        openai_api.check_length_fields(self.length_fields)
        if not self.model:
            raise BenchInputError("the OpenAI body needs the served model name: pass --model (e.g. the "
                             "name trtllm-serve was started with, or its --served_model_name)")

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"openai_{self.api}"

    def body(self, spec: RequestSpec, caps: ModelCapabilities | None, stream: bool) -> dict[str, Any]:
        return openai_api.request_body(spec, self.model, self.api, stream, self.length_fields)

    def fold(self, record: RequestRecord, event: Any, now_ns: int) -> None:
        openai_api.apply_event(record, event, now_ns, self.api, streamed=record.streamed)


@dataclass
class SseEvent:
    """One dispatched event: its `event:` name (None if unnamed), joined data, first data line's time."""

    name: str | None
    data: bytes
    first_ns: int


class SseDecoder:
    """Feed raw lines (with or without their line end); complete events come back."""

    def __init__(self) -> None:
        self._data: list[bytes] = []
        self._name: str | None = None
        self._first_ns = 0

    def feed(self, raw: bytes, now_ns: int) -> SseEvent | None:
        line = raw.rstrip(b"\r\n")
        if not line:
            return self._dispatch()
        if line.startswith(b":"):
            return None
        field_name, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if field_name == b"data":
            if not self._data:
                self._first_ns = now_ns
            self._data.append(value)
        elif field_name == b"event":
            self._name = value.decode("utf-8", errors="replace")
        return None

    def flush(self) -> SseEvent | None:
        """The last event when the stream ends without its blank line."""
        return self._dispatch()

    def _dispatch(self) -> SseEvent | None:
        if not self._data:
            self._name = None
            return None
        event = SseEvent(self._name, b"\n".join(self._data), self._first_ns)
        self._data, self._name = [], None
        return event
