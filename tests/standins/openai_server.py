"""A strict stand-in of trtllm-serve's OpenAI-compatible routes (TEST CODE, never shipped).

An aiohttp server on 127.0.0.1 that answers like trtllm-serve and records, per request, when it
received the request and when it wrote each chunk, so tests compare the client's metrics with the
delays the server itself produced rather than with wall-clock constants.

What it follows, and where from:
- Routes `/v1/models`, `/v1/chat/completions`, `/v1/completions`, `/health`; any other path is
  FastAPI's 404 `{"detail": "Not Found"}` (NVIDIA/TensorRT-LLM tensorrt_llm/serve/openai_server.py
  register_routes; docs/source/commands/trtllm-serve.rst).
- Request bodies: trtllm-serve's pydantic models forbid unknown fields
  (`OpenAIBaseModel.model_config = ConfigDict(extra="forbid", populate_by_name=True)`,
  tensorrt_llm/serve/openai_protocol.py, the same at 54cf7be0 and in 2026 main), and its
  RequestValidationError handler answers 400 `{"error": "<pydantic message>"}` (openai_server.py).
  The field names accepted are the ChatCompletionRequest / CompletionRequest fields of
  openai_protocol.py@54cf7be0; those the stand-in does not implement must keep their defaults
  (else 400 naming the field, so a test never passes on an ignored option). The model validators
  kept: `stream_options` only with `stream: true`; completions reject `logprobs` and `suffix`.
  `max_tokens` is the chat request's `max_completion_tokens` (validation_alias).
- Stricter than trtllm-serve (which does not check it): a `model` other than the served name is
  404 with OpenAI's error object (`code: model_not_found`), so a client that sends the wrong name
  fails here too.
- Streams (tensorrt_llm/serve/postprocess_handlers.py): chat's first chunk has `delta: {role}` only,
  then one `delta.content` per token, the last with `finish_reason`; chunks are dumped with
  exclude_none (the first one as `data: {...} \\n\\n`, trtllm-serve's extra space included);
  completions chunks are dumped whole (nulls included). With `stream_options.include_usage` a
  final chunk with `choices: []` and the request's usage precedes `data: [DONE]` (also the OpenAI
  API reference, ChatCompletionStreamOptions); `continuous_usage_stats` adds a running usage to
  every chunk (its default was true at 54cf7be0, false in 2026 main: `continuous_usage_default`).
- Responses are validated against response models (extra="forbid") before they are written.
- Output: token i is the text `" w{i}"`; `max_tokens` of them when `ignore_eos` or
  `min_tokens >= max_tokens`, else `natural_output_len` (finish_reason "stop") when that is set.
  prompt_tokens = words of the prompt (+ `chat_template_tokens` for chat).

Faults, by arrival number (0-based) in `faults`, or for every request with `fault_all`:
`error_event` (after `fault_after_tokens` tokens, vLLM's in-stream `data: {"error": {...}}` then
[DONE]), `error_object` (trtllm-serve's ErrorResponse object as a chunk), `abort` (the connection
closes mid-stream without [DONE], as trtllm-serve does when its generator raises), `malformed` (a
`data:` line that is not JSON), `no_usage` (ignores include_usage), `hang` (accepts the request,
never answers).

Standalone (for benchmarks): `python -m tests.standins.openai_server --port 0 ...` prints
`listening on http://127.0.0.1:PORT` and serves until SIGTERM/SIGINT; `GET /_standin/requests`
returns what it recorded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

FAULTS = ("error_event", "error_object", "abort", "malformed", "no_usage", "hang")


# ------------------------------------------------------------------ request models


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class StreamOptions(_Strict):
    include_usage: bool | None = True
    continuous_usage_stats: bool | None = None  # None: the server's default (see module doc)


class _TextPart(_Strict):
    type: Literal["text"]
    text: str


class _Message(_Strict):
    role: str
    content: str | list[_TextPart] | None = None
    name: str | None = None


# Fields trtllm-serve accepts that the stand-in does not implement: allowed at their defaults only.
_CHAT_UNIMPLEMENTED = {
    "prompt_token_ids": None, "frequency_penalty": 0.0, "logit_bias": None, "logprobs": False,
    "top_logprobs": 0, "presence_penalty": 0.0, "response_format": None, "seed": None, "stop": [],
    "tools": None, "tool_choice": "none", "user": None, "reasoning_effort": None, "best_of": None,
    "use_beam_search": False, "top_k": 0, "top_p_min": 0.0, "min_p": 0.0, "repetition_penalty": 1.0,
    "length_penalty": 1.0, "early_stopping": False, "stop_token_ids": [], "include_stop_str_in_output": False,
    "skip_special_tokens": True, "spaces_between_special_tokens": True, "truncate_prompt_tokens": None,
    "lora_request": None, "echo": False, "add_generation_prompt": True, "add_special_tokens": False,
    "documents": None, "chat_template": None, "chat_template_kwargs": None, "disaggregated_params": None,
    "cache_salt": None,
}
_COMPLETION_UNIMPLEMENTED = {
    "best_of": None, "echo": False, "frequency_penalty": 0.0, "logit_bias": None, "presence_penalty": 0.0,
    "seed": None, "stop": [], "user": None, "lora_request": None, "use_beam_search": False, "top_k": 0,
    "top_p_min": 0.0, "min_p": 0.0, "repetition_penalty": 1.0, "length_penalty": 1.0, "early_stopping": False,
    "stop_token_ids": [], "include_stop_str_in_output": False, "skip_special_tokens": True,
    "spaces_between_special_tokens": True, "truncate_prompt_tokens": None, "return_context_logits": False,
    "detokenize": True, "add_special_tokens": True, "response_format": None, "disaggregated_params": None,
}


class _Common(_Strict):
    model: str
    n: Literal[1] = 1
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(default=None, ge=0.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    ignore_eos: bool = False
    min_tokens: int = Field(default=0, ge=0)


def _only_defaults(data: dict[str, Any], known: dict[str, Any]) -> dict[str, Any]:
    """Valid trtllm-serve fields the stand-in does not implement: at their defaults, else refused."""
    for name, default in known.items():
        if name in data and data[name] != default:
            raise ValueError(f"{name}={data[name]!r}: the stand-in implements only its default {default!r}")
    return {k: v for k, v in data.items() if k not in known}


class ChatCompletionRequest(_Common):
    messages: list[_Message] = Field(min_length=1)
    # Read from `max_tokens` (validation_alias) or by its own name (populate_by_name).
    max_completion_tokens: int | None = Field(default=None, ge=1, validation_alias="max_tokens")

    @model_validator(mode="before")
    @classmethod
    def _checks(cls, data: Any) -> Any:
        if isinstance(data, dict):
            if data.get("stream_options") is not None and not data.get("stream"):
                raise ValueError("stream_options can only be set if stream is true")
            data = _only_defaults(data, _CHAT_UNIMPLEMENTED)
        return data


class CompletionRequest(_Common):
    prompt: str | list[str]
    max_tokens: int | None = Field(default=None, ge=1)
    logprobs: int | None = None
    suffix: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _checks(cls, data: Any) -> Any:
        if isinstance(data, dict):
            if data.get("logprobs"):
                raise ValueError("logprobs is not supported")
            if data.get("stream_options") and not data.get("stream"):
                raise ValueError("Stream options can only be defined when stream is true.")
            if data.get("suffix"):
                raise ValueError("suffix is not supported")
            data = _only_defaults(data, _COMPLETION_UNIMPLEMENTED)
        return data


# ------------------------------------------------------------------ response models (validated before sending)


class UsageInfo(_Strict):
    prompt_tokens: int = 0
    total_tokens: int = 0
    completion_tokens: int | None = 0
    prompt_tokens_details: dict[str, int] | None = None


class DeltaMessage(_Strict):
    role: str | None = None
    content: str | None = None


class ChatStreamChoice(_Strict):
    index: int
    delta: DeltaMessage
    logprobs: None = None
    finish_reason: str | None = None
    stop_reason: int | str | None = None


class ChatCompletionStreamResponse(_Strict):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChatStreamChoice]
    usage: UsageInfo | None = None


class CompletionStreamChoice(_Strict):
    index: int
    text: str
    token_ids: list[int] | None = None
    logprobs: None = None
    finish_reason: str | None = None
    stop_reason: int | str | None = None
    avg_decoded_tokens_per_iter: float | None = None


class CompletionStreamResponse(_Strict):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionStreamChoice]
    usage: UsageInfo | None = None


class ChatMessage(_Strict):
    role: str
    content: str | None = None
    reasoning_content: str | None = None
    tool_calls: list[Any] = Field(default_factory=list)


class ChatChoice(_Strict):
    index: int
    message: ChatMessage
    logprobs: None = None
    finish_reason: str | None = None
    stop_reason: int | str | None = None


class ChatCompletionResponse(_Strict):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: UsageInfo


class CompletionChoice(_Strict):
    index: int
    text: str
    logprobs: None = None
    finish_reason: str | None = None
    stop_reason: int | str | None = None


class CompletionResponse(_Strict):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: UsageInfo


# ------------------------------------------------------------------ the server


@dataclass
class ServedRequest:
    """What the server saw and did for one request; times are time.perf_counter_ns() of this process."""

    index: int
    route: str
    body: dict[str, Any]
    received_ns: int
    fault: str | None = None
    status: int = 200
    #: When each content chunk was handed to the connection (just before its write).
    emit_ns: list[int] = field(default_factory=list)
    end_ns: int = 0
    completion_tokens: int = 0
    prompt_tokens: int = 0

    @property
    def first_token_ms(self) -> float:
        """Server-side TTFT: receipt to the write of the first content chunk."""
        return (self.emit_ns[0] - self.received_ns) / 1e6

    @property
    def gaps_ms(self) -> list[float]:
        return [(b - a) / 1e6 for a, b in zip(self.emit_ns, self.emit_ns[1:], strict=False)]

    @property
    def last_token_ms(self) -> float:
        return (self.emit_ns[-1] - self.received_ns) / 1e6


class OpenAIStandIn:
    """Start with `with OpenAIStandIn(...) as server:`; `server.url` is the base URL (no /v1)."""

    def __init__(
        self,
        served_model: str = "standin-model",
        first_token_delay_ms: float = 50.0,
        inter_token_delay_ms: float = 10.0,
        natural_output_len: int | None = None,
        chat_template_tokens: int = 4,
        continuous_usage_default: bool = False,
        faults: dict[int, str] | None = None,
        fault_all: str | None = None,
        fault_after_tokens: int = 2,
    ) -> None:
        for fault in [*(faults or {}).values(), fault_all]:
            if fault is not None and fault not in FAULTS:
                raise ValueError(f"fault {fault!r}: choose from {FAULTS}")
        self.served_model = served_model
        self.first_token_delay_ms = first_token_delay_ms
        self.inter_token_delay_ms = inter_token_delay_ms
        self.natural_output_len = natural_output_len
        self.chat_template_tokens = chat_template_tokens
        self.continuous_usage_default = continuous_usage_default
        self.faults = dict(faults or {})
        self.fault_all = fault_all
        self.fault_after_tokens = fault_after_tokens
        self.requests: list[ServedRequest] = []
        self.url = ""
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._stopping: asyncio.Event | None = None

    # -------------------------------------------------------------- lifecycle

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._fastapi_errors])
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/health", self._health)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/completions", self._completions)
        app.router.add_get("/_standin/requests", self._recorded)
        return app

    async def start_async(self, port: int = 0) -> str:
        self._stopping = asyncio.Event()
        self._runner = web.AppRunner(self.app(), handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{bound}"
        return self.url

    async def stop_async(self) -> None:
        if self._stopping is not None:
            self._stopping.set()  # releases hung handlers
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def __enter__(self) -> OpenAIStandIn:
        started = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self.start_async())
            except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
                failure.append(exc)
                started.set()
                return
            started.set()
            loop.run_forever()
            loop.run_until_complete(self.stop_async())
            loop.close()

        self._thread = threading.Thread(target=run, name="openai-standin", daemon=True)
        self._thread.start()
        started.wait(30)
        if failure:
            raise failure[0]
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(30)

    # -------------------------------------------------------------- helpers

    @web.middleware
    async def _fastapi_errors(self, request: web.Request, handler):
        try:
            return await handler(request)
        except web.HTTPNotFound:
            return web.json_response({"detail": "Not Found"}, status=404)
        except web.HTTPMethodNotAllowed:
            return web.json_response({"detail": "Method Not Allowed"}, status=405)

    def _admit(self, route: str, body: dict[str, Any]) -> ServedRequest:
        with self._lock:
            index = len(self.requests)
            served = ServedRequest(index, route, body, time.perf_counter_ns())
            served.fault = self.faults.get(index, self.fault_all)
            self.requests.append(served)
        return served

    def _output_len(self, max_tokens: int | None, ignore_eos: bool, min_tokens: int) -> tuple[int, str]:
        limit = max_tokens if max_tokens is not None else 16
        if ignore_eos or min_tokens >= limit or self.natural_output_len is None:
            return limit, "length"
        n = max(min_tokens, min(limit, self.natural_output_len))
        return n, "length" if n == limit else "stop"

    async def _sleep_until(self, deadline_ns: int) -> None:
        delay = (deadline_ns - time.perf_counter_ns()) / 1e9
        if delay > 0:
            await asyncio.sleep(delay)

    def _deadline(self, served: ServedRequest, i: int) -> int:
        return served.received_ns + int((self.first_token_delay_ms + i * self.inter_token_delay_ms) * 1e6)

    async def _hang(self) -> web.StreamResponse:
        assert self._stopping is not None
        await self._stopping.wait()
        return web.Response(status=503)

    async def _parse(self, request: web.Request, model_cls: type[BaseModel], route: str):
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            return None, None, web.json_response({"error": "Expecting value: request body is not JSON"}, status=400)
        served = self._admit(route, body if isinstance(body, dict) else {"_raw": body})
        try:
            parsed = model_cls.model_validate(body)
        except ValidationError as exc:
            served.status = 400
            return served, None, web.json_response({"error": str(exc)}, status=400)
        if parsed.model != self.served_model:
            served.status = 404
            error = {"message": f"The model `{parsed.model}` does not exist.", "type": "invalid_request_error",
                     "param": "model", "code": "model_not_found"}
            return served, None, web.json_response({"error": error}, status=404)
        return served, parsed, None

    # -------------------------------------------------------------- routes

    async def _health(self, request: web.Request) -> web.Response:
        return web.Response(status=200)

    async def _models(self, request: web.Request) -> web.Response:
        card = {"id": self.served_model, "object": "model", "created": int(time.time()), "owned_by": "tensorrt_llm"}
        return web.json_response({"object": "list", "data": [card]})

    async def _recorded(self, request: web.Request) -> web.Response:
        with self._lock:
            rows = [asdict(r) for r in self.requests]
        return web.json_response(rows)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        served, req, error = await self._parse(request, ChatCompletionRequest, "chat")
        if error is not None:
            return error
        assert served is not None and isinstance(req, ChatCompletionRequest)
        words = sum(len(_message_text(m).split()) for m in req.messages)
        served.prompt_tokens = words + self.chat_template_tokens
        n, finish = self._output_len(req.max_completion_tokens, req.ignore_eos, req.min_tokens)
        if served.fault == "hang":
            return await self._hang()
        if req.stream:
            return await self._stream(request, served, req, n, finish, "chat")
        return await self._answer(served, req, n, finish, "chat")

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        served, req, error = await self._parse(request, CompletionRequest, "completions")
        if error is not None:
            return error
        assert served is not None and isinstance(req, CompletionRequest)
        prompt = req.prompt if isinstance(req.prompt, str) else " ".join(req.prompt)
        served.prompt_tokens = len(prompt.split())
        n, finish = self._output_len(req.max_tokens, req.ignore_eos, req.min_tokens)
        if served.fault == "hang":
            return await self._hang()
        if req.stream:
            return await self._stream(request, served, req, n, finish, "completions")
        return await self._answer(served, req, n, finish, "completions")

    async def _answer(self, served: ServedRequest, req: Any, n: int, finish: str, api: str) -> web.Response:
        await self._sleep_until(self._deadline(served, n - 1))
        text = "".join(f" w{i}" for i in range(n))
        usage = UsageInfo(prompt_tokens=served.prompt_tokens, completion_tokens=n,
                          total_tokens=served.prompt_tokens + n, prompt_tokens_details={"cached_tokens": 0})
        common = {"id": f"{'chatcmpl' if api == 'chat' else 'cmpl'}-{uuid.uuid4().hex}", "created": int(time.time()),
                  "model": req.model, "usage": usage}
        if api == "chat":
            answer: BaseModel = ChatCompletionResponse(
                choices=[ChatChoice(index=0, message=ChatMessage(role="assistant", content=text),
                                    finish_reason=finish)], **common)
        else:
            answer = CompletionResponse(choices=[CompletionChoice(index=0, text=text, finish_reason=finish)], **common)
        served.emit_ns.append(time.perf_counter_ns())
        served.completion_tokens, served.end_ns = n, time.perf_counter_ns()
        return web.json_response(answer.model_dump())

    async def _stream(
        self, request: web.Request, served: ServedRequest, req: Any, n: int, finish: str, api: str
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8"})
        await response.prepare(request)
        options = req.stream_options
        include_usage = bool(options and options.include_usage) and served.fault != "no_usage"
        continuous = include_usage and (
            options.continuous_usage_stats if options.continuous_usage_stats is not None
            else self.continuous_usage_default)
        stream_id = f"{'chatcmpl' if api == 'chat' else 'cmpl'}-{uuid.uuid4().hex}"
        created = int(time.time())

        def usage(completion: int) -> UsageInfo:
            return UsageInfo(prompt_tokens=served.prompt_tokens, completion_tokens=completion,
                             total_tokens=served.prompt_tokens + completion, prompt_tokens_details={"cached_tokens": 0})

        def chunk(choices: list[Any], completion: int | None) -> BaseModel:
            cls = ChatCompletionStreamResponse if api == "chat" else CompletionStreamResponse
            return cls(id=stream_id, created=created, model=req.model, choices=choices,
                       usage=usage(completion) if continuous and completion is not None else None)

        async def write(model: BaseModel, exclude_none: bool, extra_space: bool = False) -> None:
            data = model.model_dump_json(exclude_none=exclude_none)
            await response.write(f"data: {data}{' ' if extra_space else ''}\n\n".encode())

        if api == "chat":
            await write(chunk([ChatStreamChoice(index=0, delta=DeltaMessage(role="assistant"))], 0), True,
                        extra_space=True)
        for i in range(n):
            await self._sleep_until(self._deadline(served, i))
            if served.fault in ("error_event", "error_object", "abort", "malformed") and i == self.fault_after_tokens:
                return await self._fail_stream(request, response, served)
            last = i == n - 1
            # Stamped before the write: the client can read the chunk before write() returns here.
            served.emit_ns.append(time.perf_counter_ns())
            if api == "chat":
                choice: Any = ChatStreamChoice(index=0, delta=DeltaMessage(content=f" w{i}"),
                                               finish_reason=finish if last else None)
                await write(chunk([choice], i + 1), True)
            else:
                choice = CompletionStreamChoice(index=0, text=f" w{i}", finish_reason=finish if last else None)
                await write(chunk([choice], i + 1), False)
        served.completion_tokens = n
        if include_usage:
            cls = ChatCompletionStreamResponse if api == "chat" else CompletionStreamResponse
            await write(cls(id=stream_id, created=created, model=req.model, choices=[], usage=usage(n)), False)
        served.end_ns = time.perf_counter_ns()
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def _fail_stream(
        self, request: web.Request, response: web.StreamResponse, served: ServedRequest
    ) -> web.StreamResponse:
        message = f"injected {served.fault} after {self.fault_after_tokens} tokens"
        served.end_ns = time.perf_counter_ns()
        if served.fault == "abort":
            # What a generator that raises inside StreamingResponse leaves: no [DONE], connection closed.
            assert request.transport is not None
            request.transport.close()
            return response
        if served.fault == "malformed":
            await response.write(b'data: {"choices": [{"index": 0, "delta": {"content": " w\n\n')
        elif served.fault == "error_event":
            error = {"message": message, "type": "InternalServerError", "param": None, "code": 500}
            await response.write(f"data: {json.dumps({'error': error})}\n\n".encode())
        else:
            error_object = {"object": "error", "message": message, "type": "InternalServerError", "param": None,
                            "code": 500}
            await response.write(f"data: {json.dumps(error_object)}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response


def _message_text(message: _Message) -> str:
    if isinstance(message.content, list):
        return " ".join(part.text for part in message.content)
    return message.content or ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve the OpenAI stand-in on 127.0.0.1 (test code).")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--model", default="standin-model")
    parser.add_argument("--first-token-delay-ms", type=float, default=50.0)
    parser.add_argument("--inter-token-delay-ms", type=float, default=10.0)
    args = parser.parse_args(argv)
    server = OpenAIStandIn(args.model, args.first_token_delay_ms, args.inter_token_delay_ms)

    async def serve() -> None:
        url = await server.start_async(args.port)
        print(f"listening on {url}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await server.stop_async()

    asyncio.run(serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
