"""Which container routes a Model Deployment exposes, and how a client reaches each one.

Data Science forwards `/predict` (and `/predictWithResponseStream`) to the one container path named by
MODEL_DEPLOY_PREDICT_ENDPOINT, and `/predict/<suffix>` / `/predictWithResponseStream/<suffix>` to `<suffix>` on the
container when `<suffix>` is registered in `custom_http_endpoints` (InferenceHttpEndpoint in
oci/data_science/models/inference_http_endpoint.py@2.189.0; up to 15 suffixes, methods GET/POST/PUT/DELETE, `{}` a
one-segment wildcard; the router strips the prefix before forwarding: oracle-samples/oci-data-science-ai-samples
model-deployment/multiple_inference_endpoints/README.md@2624d1c). `predict_api_specification="openai"` allowlists
the OpenAI paths without listing them (.../supported_endpoints/frameworks/openai/README.md).

A backend describes its server as a `ServingRoutes` value: the Triton generate routes below, or an OpenAI-serving
backend (trtllm-serve) built with `openai_routes`. Nothing else in the deploy path knows route names.
"""

from __future__ import annotations

from typing import Literal

from oci.data_science.models import InferenceHttpEndpoint
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from trtllm_oci.cloud.errors import DeploymentLimitError

HttpMethod = Literal["GET", "POST", "PUT", "DELETE"]
MAX_CUSTOM_ENDPOINTS = 15
PREDICT = "/predict"
PREDICT_STREAM = "/predictWithResponseStream"


class HttpRoute(BaseModel):
    """One path the container answers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(description="Container path, e.g. /v2/models/ensemble/generate_stream")
    methods: tuple[HttpMethod, ...] = ("POST",)
    streaming: bool = Field(default=False, description="Answers text/event-stream: call it via /predictWithResponseStream")

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/") or "//" in value or any(c in value for c in " ?#"):
            raise ValueError(f"route {value!r} must be an absolute path without query, e.g. /v1/completions")
        return value


class ServingRoutes(BaseModel):
    """What a serving backend answers and how Data Science is told about it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    predict: HttpRoute = Field(description="MODEL_DEPLOY_PREDICT_ENDPOINT: where plain /predict goes")
    health: str = Field(description="MODEL_DEPLOY_HEALTH_ENDPOINT")
    generate: HttpRoute | None = Field(default=None, description="Non-streaming generation route, if any")
    generate_stream: HttpRoute | None = Field(default=None, description="Streaming generation route, if any")
    extra: tuple[HttpRoute, ...] = ()
    predict_api_specification: Literal["openai"] | None = None
    protocol: Literal["triton_generate", "llmapi_generate", "openai"] = Field(
        default="triton_generate", description="Request/answer schema of the generation routes: the ensemble's "
        "generate extension, the same extension with Triton's llmapi model's input names, or OpenAI's")

    @model_validator(mode="after")
    def _fits_the_service(self) -> ServingRoutes:
        if len(self.custom_suffixes()) > MAX_CUSTOM_ENDPOINTS:
            raise ValueError(f"{len(self.custom_suffixes())} custom endpoints; Data Science takes at most "
                             f"{MAX_CUSTOM_ENDPOINTS}")
        return self

    def _all(self) -> list[HttpRoute]:
        return [r for r in (self.predict, self.generate, self.generate_stream, *self.extra) if r is not None]

    def custom_suffixes(self) -> dict[str, tuple[str, ...]]:
        """suffix -> methods to register; the predict route is registered too, so /predict/<path> also works."""
        suffixes: dict[str, tuple[str, ...]] = {}
        for route in self._all():
            if self.predict_api_specification == "openai" and route.path in OPENAI_FRAMEWORK_PATHS:
                continue  # the framework already allowlists it
            methods = suffixes.get(route.path, ())
            suffixes[route.path] = tuple(sorted(set(methods) | set(route.methods)))
        return suffixes

    def custom_http_endpoints(self) -> list[InferenceHttpEndpoint]:
        return [InferenceHttpEndpoint(endpoint_uri_suffix=path, http_methods=list(methods))
                for path, methods in sorted(self.custom_suffixes().items())]

    def for_requests(self, streaming: bool) -> HttpRoute:
        """The generation route a client uses: streaming (SSE) or one JSON answer."""
        route = self.generate_stream if streaming else self.generate
        if route is None:
            raise DeploymentLimitError(
                f"this deployment serves no {'streaming' if streaming else 'non-streaming'} generation route; "
                f"use {'streaming' if not streaming else 'non-streaming'} requests")
        return route


def invoke_url(deployment_url: str, route: HttpRoute, routes: ServingRoutes) -> str:
    """The signed URL that reaches `route`: /predictWithResponseStream for SSE routes, /predict otherwise.

    The plain prefix is used when `route` is MODEL_DEPLOY_PREDICT_ENDPOINT itself (every deployment accepts it,
    with or without custom endpoints); any other route goes through its registered suffix.
    """
    base = deployment_url.rstrip("/")
    prefix = PREDICT_STREAM if route.streaming else PREDICT
    if route.path == routes.predict.path:
        return base + prefix
    return base + prefix + route.path


def triton_generate_routes(model: str, *, streaming: bool, llmapi: bool = False) -> ServingRoutes:
    """Triton's generate extension (triton-inference-server/server:docs/protocol/extension_generate.md).

    A decoupled model (streaming release) cannot answer /generate ("generate expects model to produce exactly 1
    response", shared/reference/trtllm_triton.md pain point 6), so /predict goes to generate_stream there and to
    generate otherwise. /v2/models/<m>/config is exposed so a client can read the model's inputs. `llmapi`: the
    model is Triton's llmapi model (the PyTorch backend), which takes the LLM API's input names.
    """
    generate = HttpRoute(path=f"/v2/models/{model}/generate")
    generate_stream = HttpRoute(path=f"/v2/models/{model}/generate_stream", streaming=True)
    return ServingRoutes(
        predict=generate_stream if streaming else generate,
        health="/v2/health/ready",
        generate=None if streaming else generate,
        generate_stream=generate_stream,
        extra=(HttpRoute(path="/v2/health/ready", methods=("GET",)),
               HttpRoute(path=f"/v2/models/{model}/config", methods=("GET",))),
        protocol="llmapi_generate" if llmapi else "triton_generate",
    )


# Paths the `openai` API specification allowlists (oracle-samples ...supported_endpoints/frameworks/openai/README.md).
OPENAI_FRAMEWORK_PATHS = frozenset({
    "/v1/models", "/v1/completions", "/v1/chat/completions", "/v1/embeddings", "/v1/responses", "/metrics",
    "/tokenize", "/detokenize", "/version", "/generate", "/generate_stream", "/info", "/invocations",
})


def openai_routes(*, health: str = "/health", chat: bool = True) -> ServingRoutes:
    """An OpenAI-compatible server such as `trtllm-serve` (/v1/completions, /v1/chat/completions, /v1/models,
    /metrics, /health: tensorrt_llm/serve/openai_server.py). Streaming and non-streaming share one path and differ
    by the body's `"stream"`, so both routes name the same path."""
    path = "/v1/chat/completions" if chat else "/v1/completions"
    return ServingRoutes(
        predict=HttpRoute(path=path),
        health=health,
        generate=HttpRoute(path=path),
        generate_stream=HttpRoute(path=path, streaming=True),
        extra=(HttpRoute(path="/v1/completions"), HttpRoute(path="/v1/models", methods=("GET",)),
               HttpRoute(path="/metrics", methods=("GET",)), HttpRoute(path=health, methods=("GET",))),
        predict_api_specification="openai",
        protocol="openai",
    )
