"""OpenAI-compatible request bodies and answers (`/v1/chat/completions`, `/v1/completions`).

Shapes, as trtllm-serve builds them (NVIDIA/TensorRT-LLM tensorrt_llm/serve/openai_protocol.py and
postprocess_handlers.py; the same in 2026 main) and the OpenAI API reference describes them:
- a chat stream's first chunk carries `delta.role` only, then `delta.content` pieces, the last one
  with `finish_reason`; a completions stream carries `choices[].text`;
- with `stream_options: {include_usage: true}` one more chunk with `choices: []` and the whole
  request's `usage` comes before `data: [DONE]` (OpenAI openapi.yaml ChatCompletionStreamOptions;
  trtllm-serve's `continuous_usage_stats` also puts a running `usage` on every chunk, so the last
  one seen wins);
- errors inside a 200 stream: vLLM sends `data: {"error": {...}}` (vllm/entrypoints/openai/engine/
  serving.py create_streaming_error_response) and the OpenAI SDK raises on any event with an
  `error` (openai-python src/openai/_streaming.py); trtllm-serve's ErrorResponse is
  `{"object": "error", "message": ...}`; trtllm-serve itself re-raises inside the generator, which
  cuts the stream before `data: [DONE]` (openai_server.py chat_stream_generator).

Output length: OpenAI has no minimum-length parameter; trtllm-serve and vLLM accept the
`min_tokens` and `ignore_eos` extensions (openai_protocol.py "doc: begin-chat-completion-sampling-params").
"""

from __future__ import annotations

from typing import Any

from trtllm_oci.bench.records import RequestRecord, RequestSpec

APIS = ("chat", "completions")
ROUTES = {"chat": "/v1/chat/completions", "completions": "/v1/completions"}
MODELS_ROUTE = "/v1/models"
LENGTH_FIELDS = ("min_tokens", "ignore_eos")
DEFAULT_LENGTH_FIELDS: tuple[str, ...] = LENGTH_FIELDS
_CHUNK_OBJECTS = {"chat": "chat.completion.chunk", "completions": "text_completion"}
_ANSWER_OBJECTS = {"chat": "chat.completion", "completions": "text_completion"}
_SHOWN = 300


def check_api(api: str) -> str:
    if api not in APIS:
        raise ValueError(f"--api {api!r}: use one of {APIS} (/v1/chat/completions or /v1/completions)")
    return api


def check_length_fields(fields: tuple[str, ...]) -> tuple[str, ...]:
    unknown = [f for f in fields if f not in LENGTH_FIELDS]
    if unknown:
        raise ValueError(
            f"output-length fields {unknown}: use a subset of {LENGTH_FIELDS} (or none for a strict OpenAI endpoint)"
        )
    return fields


def parse_length_fields(text: str) -> tuple[str, ...]:
    """'min_tokens,ignore_eos' -> ('min_tokens', 'ignore_eos'); 'none' or '' -> ()."""
    if text.strip().lower() in ("", "none"):
        return ()
    return check_length_fields(tuple(f.strip() for f in text.split(",") if f.strip()))


def request_body(
    spec: RequestSpec,
    model: str,
    api: str,
    stream: bool,
    length_fields: tuple[str, ...] = DEFAULT_LENGTH_FIELDS,
) -> dict[str, Any]:
    """Greedy, `max_tokens` long (exactly, with the length fields), usage requested when streaming."""
    body: dict[str, Any] = {"model": model}
    if check_api(api) == "chat":
        body["messages"] = [{"role": "user", "content": spec.prompt}]
    else:
        body["prompt"] = spec.prompt
    # `max_tokens` on both routes: trtllm-serve's chat request reads it as max_completion_tokens
    # (validation_alias), vLLM and OpenAI accept it too.
    body["max_tokens"] = spec.output_len
    body["temperature"] = 0.0
    body["stream"] = stream
    if stream:
        # Only with stream: trtllm-serve rejects stream_options on a non-streaming request.
        body["stream_options"] = {"include_usage": True}
    if spec.fixed_output_len:
        if "min_tokens" in length_fields:
            body["min_tokens"] = spec.output_len
        if "ignore_eos" in length_fields:
            body["ignore_eos"] = True
    body.update(spec.extra_inputs)
    return body


def _error_text(event: dict[str, Any]) -> str | None:
    error = event.get("error")
    if error:
        if isinstance(error, dict):
            message = error.get("message") or error
            code = error.get("code")
            return f"{message}" + (f" (code {code})" if code is not None else "")
        return str(error)
    if event.get("object") == "error":
        return f"{event.get('message', event)} (code {event.get('code')})"
    return None


def _choice_text(choice: dict[str, Any], api: str, streamed: bool) -> str:
    if api == "completions":
        text = choice.get("text")
        return text if isinstance(text, str) else ""
    part = choice.get("delta" if streamed else "message")
    if not isinstance(part, dict):
        return ""
    # Reasoning models stream their thinking as reasoning_content (trtllm-serve, vLLM) or
    # reasoning (gpt-oss); those are generated tokens too, so they count for TTFT and ITL.
    pieces = (part.get("reasoning_content"), part.get("reasoning"), part.get("content"))
    return "".join(p for p in pieces if isinstance(p, str))


def apply_event(record: RequestRecord, event: Any, now_ns: int, api: str, streamed: bool) -> None:
    """Fold one chunk (streaming) or the whole answer (non-streaming) into the record."""
    if not isinstance(event, dict):
        record.fail(f"OpenAI answer is not a JSON object: {str(event)[:_SHOWN]!r}")
        return
    error = _error_text(event)
    if error is not None:
        record.fail(f"server error{' in stream' if streamed else ''}: {error}")
        return
    choices = event.get("choices")
    expected = (_CHUNK_OBJECTS if streamed else _ANSWER_OBJECTS)[api]
    if not isinstance(choices, list) or event.get("object") not in (expected, None):
        record.fail(
            f"not an OpenAI {expected} (is this an OpenAI-compatible server, and --api right?): "
            f"{str(event)[:_SHOWN]!r}"
        )
        return
    text = "".join(_choice_text(c, api, streamed) for c in choices if isinstance(c, dict))
    record.add_chunk(now_ns, text)
    usage = event.get("usage")
    if isinstance(usage, dict):
        completion = usage.get("completion_tokens")
        prompt = usage.get("prompt_tokens")
        if isinstance(completion, int):
            # One total per request; a running total (continuous usage) is replaced, not summed.
            record.server_output_tokens = [completion]
        if isinstance(prompt, int):
            record.server_input_tokens = prompt


def served_models(payload: Any) -> list[str]:
    """Model ids from a `GET /v1/models` answer (`{"object": "list", "data": [{"id": ...}]}`)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
        raise ValueError(f"not an OpenAI model list: {str(payload)[:_SHOWN]!r}")
    return [str(m["id"]) for m in payload["data"] if isinstance(m, dict) and "id" in m]
