"""Signed smoke tests of a deployed endpoint: `<url>/predict` and `<url>/predictWithResponseStream` (SSE).

Any OCI signer is a `requests` auth object (oci/signer.py@2.189.0 AbstractBaseSigner); the invoke limits (60 s,
10 MB) are from https://docs.oracle.com/en-us/iaas/data-science/using/model-dep-invoke.htm.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import requests

from trtllm_oci.errors import ServiceError

INVOKE_TIMEOUT_SECONDS = 60


class SmokeTestError(ServiceError):
    """The deployed endpoint did not answer a signed generate request as expected."""


@dataclass(frozen=True)
class SmokeResult:
    text: str
    seconds: float
    chunks: int


def _check(response: requests.Response, url: str) -> None:
    if response.status_code != 200:
        body = response.text[:500]
        raise SmokeTestError(
            f"POST {url} returned HTTP {response.status_code}: {body!r}. 401/404 usually mean the signer's "
            "principal lacks 'manage data-science-model-deployments' or the URL is not the deployment's "
            "model_deployment_url; 5xx means the container's predict endpoint failed (see the predict log)."
        )


def generate_body(prompt: str, max_tokens: int, *, stream: bool = False) -> dict[str, Any]:
    # Input names of the TensorRT-LLM backend ensemble (triton-inference-server/tensorrtllm_backend:
    # all_models/inflight_batcher_llm/ensemble/config.pbtxt): text_input, max_tokens, stream.
    return {"text_input": prompt, "max_tokens": max_tokens, "stream": stream}


def predict(url: str, body: dict[str, Any], signer: Any, *, timeout: float = INVOKE_TIMEOUT_SECONDS) -> dict[str, Any]:
    target = url.rstrip("/") + "/predict"
    response = requests.post(target, json=body, auth=signer, timeout=timeout)
    _check(response, target)
    try:
        return response.json()
    except ValueError:
        raise SmokeTestError(f"POST {target} answered non-JSON: {response.text[:200]!r}") from None


def predict_stream(url: str, body: dict[str, Any], signer: Any, *,
                   timeout: float = INVOKE_TIMEOUT_SECONDS) -> Iterator[dict[str, Any]]:
    """Yield each server-sent event's JSON `data` payload."""
    target = url.rstrip("/") + "/predictWithResponseStream"
    with requests.post(target, json=body, auth=signer, timeout=timeout, stream=True,
                       headers={"Accept": "text/event-stream"}) as response:
        _check(response, target)
        data_lines: list[str] = []
        for raw in response.iter_lines(decode_unicode=True):
            if raw is None:
                continue
            if raw == "":
                if data_lines:
                    yield _parse_event("\n".join(data_lines), target)
                    data_lines = []
                continue
            if raw.startswith("data:"):
                data_lines.append(raw[5:].lstrip(" "))
        if data_lines:
            yield _parse_event("\n".join(data_lines), target)


def _parse_event(data: str, target: str) -> dict[str, Any]:
    try:
        return json.loads(data)
    except ValueError:
        raise SmokeTestError(f"stream from {target} sent a non-JSON event: {data[:200]!r}") from None


def smoke_test(url: str, signer: Any, *, prompt: str = "What is the capital of France?", max_tokens: int = 16,
               streaming: bool = False, timeout: float = INVOKE_TIMEOUT_SECONDS) -> SmokeResult:
    """One signed generate request; fails unless some text comes back."""
    start = time.perf_counter()
    if streaming:
        pieces = [event.get("text_output", "") for event in
                  predict_stream(url, generate_body(prompt, max_tokens, stream=True), signer, timeout=timeout)]
        text, chunks = "".join(pieces), len(pieces)
    else:
        text, chunks = predict(url, generate_body(prompt, max_tokens), signer, timeout=timeout).get("text_output", ""), 1
    if not text:
        raise SmokeTestError(f"{url} answered without text_output for prompt {prompt!r}; check the ensemble model.")
    return SmokeResult(text=text, seconds=time.perf_counter() - start, chunks=chunks)
