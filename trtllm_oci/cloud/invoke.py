"""Signed smoke tests of a deployed endpoint, on the route the release serves.

A non-streaming release is called on `/predict` (one JSON answer); `/predictWithResponseStream` would answer 409
ExternalServerIncorrectState for it. A streaming release is called on its SSE route through
`/predictWithResponseStream`, and a `StreamFailure` trailer (a stream that broke after the 200) fails the test
(https://docs.oracle.com/en-us/iaas/Content/data-science/using/model-dep-response-streaming-endpoint.htm).
Any OCI signer is a `requests` auth object (oci/signer.py@2.189.0); the invoke limits (60 s, 10 MB) are from
https://docs.oracle.com/en-us/iaas/data-science/using/model-dep-invoke.htm.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from trtllm_oci.cloud.http_stream import HttpStreamError, iter_lines, open_request, signed_headers
from trtllm_oci.cloud.routes import ServingRoutes, invoke_url, triton_generate_routes
from trtllm_oci.errors import InputError, ServiceError

INVOKE_TIMEOUT_SECONDS = 60
_BODY_CHARS = 500


class SmokeTestError(ServiceError):
    """The deployed endpoint did not answer a signed generate request as expected."""


@dataclass(frozen=True)
class SmokeResult:
    text: str
    seconds: float
    chunks: int
    url: str = ""


def _explain(status: int, url: str, body: bytes) -> SmokeTestError:
    hint = {
        409: " The container answered without streaming: call a non-streaming release on /predict, or check that "
             "the route really streams (Triton: generate_stream with a decoupled model).",
        404: " The route is not an inference endpoint of this deployment (custom_http_endpoints), the URL is not its "
             "model_deployment_url, or the signer's principal lacks 'manage data-science-model-deployments'.",
        401: " The request signature was refused; check the auth profile and the host clock.",
    }.get(status, " 5xx means the container failed (see the predict log)." if status >= 500 else "")
    return SmokeTestError(f"POST {url} returned HTTP {status}: {body[:_BODY_CHARS]!r}.{hint}")


def generate_body(prompt: str, max_tokens: int, *, stream: bool = False, protocol: str = "triton_generate",
                  model: str | None = None, chat: bool = True) -> dict[str, Any]:
    """`chat`: an OpenAI route's body is /v1/chat/completions' (messages) or /v1/completions' (prompt)."""
    if protocol == "openai":
        if not model:
            # An OpenAI server answers for the name it serves (404 model_not_found for another, as vLLM does).
            raise InputError("an OpenAI route needs the served model name in the body: pass model=<served name>")
        text = {"messages": [{"role": "user", "content": prompt}]} if chat else {"prompt": prompt}
        return {"model": model, **text, "max_tokens": max_tokens, "stream": stream}
    if protocol == "llmapi_generate":
        # Triton's llmapi model (NVIDIA/TensorRT-LLM:triton_backend/all_models/llmapi/tensorrt_llm/config.pbtxt
        # @c8c6df08bd0ead54cd47f7973e1e425c28a174cd): text_input, sampling_param_max_tokens, streaming.
        return {"text_input": prompt, "sampling_param_max_tokens": max_tokens, "streaming": stream}
    # Input names of the TensorRT-LLM backend ensemble (triton-inference-server/tensorrtllm_backend:
    # all_models/inflight_batcher_llm/ensemble/config.pbtxt): text_input, max_tokens, stream.
    return {"text_input": prompt, "max_tokens": max_tokens, "stream": stream}


def _text_of(event: dict[str, Any], protocol: str) -> str:
    if protocol == "openai":
        parts = []
        for choice in event.get("choices") or []:
            message = choice.get("delta") or choice.get("message") or {}
            parts.append(message.get("content") or choice.get("text") or "")
        return "".join(parts)
    value = event.get("text_output", "")
    return "".join(value) if isinstance(value, list) else str(value)


def _post(url: str, body: dict[str, Any], signer: Any, timeout: float, accept: str):
    data = json.dumps(body).encode()
    headers = signed_headers("POST", url, data, {"Content-Type": "application/json", "Accept": accept}, signer)
    return open_request("POST", url, data, headers, timeout=timeout)


def predict(url: str, body: dict[str, Any], signer: Any, *, timeout: float = INVOKE_TIMEOUT_SECONDS) -> dict[str, Any]:
    """POST one request to `url` (a /predict URL) and return its JSON answer."""
    try:
        with _post(url, body, signer, timeout, "application/json") as (response, chunks):
            payload = b"".join(chunks)
    except HttpStreamError as exc:
        raise SmokeTestError(f"POST {url} failed: {exc}") from None
    if response.status != 200:
        raise _explain(response.status, url, payload)
    try:
        return json.loads(payload)
    except ValueError:
        raise SmokeTestError(f"POST {url} answered non-JSON: {payload[:200]!r}") from None


def predict_stream(url: str, body: dict[str, Any], signer: Any, *,
                   timeout: float = INVOKE_TIMEOUT_SECONDS) -> Iterator[dict[str, Any]]:
    """Yield each server-sent event's JSON `data`; a StreamFailure trailer raises SmokeTestError at the end."""
    try:
        with _post(url, body, signer, timeout, "text/event-stream") as (response, chunks):
            if response.status != 200:
                raise _explain(response.status, url, b"".join(chunks))
            data_lines: list[bytes] = []
            for line in iter_lines(chunks):
                if line.startswith(b"data:"):
                    data_lines.append(line[5:].lstrip(b" "))
                elif not line and data_lines:
                    yield from _parse_event(b"\n".join(data_lines), url)
                    data_lines = []
            if data_lines:
                yield from _parse_event(b"\n".join(data_lines), url)
            if response.stream_failure:
                raise SmokeTestError(f"the stream from {url} broke after it started: StreamFailure "
                                     f"{response.stream_failure[:_BODY_CHARS]}. The text received is incomplete.")
            if not response.complete:
                raise SmokeTestError(f"the stream from {url} ended without its final chunk; the text is incomplete.")
    except HttpStreamError as exc:
        raise SmokeTestError(f"POST {url} failed: {exc}") from None


def _parse_event(data: bytes, target: str) -> Iterator[dict[str, Any]]:
    if data == b"[DONE]":
        return
    try:
        event = json.loads(data)
    except ValueError:
        raise SmokeTestError(f"stream from {target} sent a non-JSON event: {data[:200]!r}") from None
    if isinstance(event, dict) and "error" in event:
        raise SmokeTestError(f"stream from {target} reported an error: {str(event['error'])[:_BODY_CHARS]}")
    yield event


def smoke_test(url: str, signer: Any, *, prompt: str = "What is the capital of France?", max_tokens: int = 16,
               streaming: bool = False, routes: ServingRoutes | None = None, model: str | None = None,
               timeout: float = INVOKE_TIMEOUT_SECONDS) -> SmokeResult:
    """One signed generate request on the release's own route; fails unless text comes back whole.

    `model`: the served model name an OpenAI server is asked for (the body's `model`); unused by Triton's routes.
    """
    routes = routes or triton_generate_routes("ensemble", streaming=streaming)
    protocol = routes.protocol
    route = routes.for_requests(streaming)
    target = invoke_url(url, route, routes)
    body = generate_body(prompt, max_tokens, stream=streaming, protocol=protocol, model=model,
                         chat=route.path.endswith("/chat/completions"))
    start = time.perf_counter()
    if streaming:
        pieces = [_text_of(event, protocol) for event in predict_stream(target, body, signer, timeout=timeout)]
        # The llmapi model streams the whole text so far in each response (model.py sends CompletionOutput.text).
        text = (pieces[-1] if pieces else "") if protocol == "llmapi_generate" else "".join(pieces)
        chunks = len(pieces)
    else:
        text, chunks = _text_of(predict(target, body, signer, timeout=timeout), protocol), 1
    if not text:
        raise SmokeTestError(f"{target} answered without text for prompt {prompt!r}; check the served model.")
    return SmokeResult(text=text, seconds=time.perf_counter() - start, chunks=chunks, url=target)
