"""Transports that send one RequestSpec and record every chunk's arrival time.

- HTTP SSE: POST /v2/models/<m>/generate_stream (triton-inference-server/server:
  docs/protocol/extension_generate.md). The HTTP status belongs to the first event only, so
  later failures arrive as `data: {"error": ...}` inside a 200 stream: every event is checked.
- HTTP /generate: one JSON answer (TTFT == E2E, no per-token timing).
- gRPC: ModelStreamInfer with `triton_enable_empty_final_response`, ending on the response
  whose `triton_final_response` parameter is true (server:docs/user_guide/decoupled_models.md).
- OCI Model Deployment: the release's own route, signed by an OCI signer: /predictWithResponseStream[/<suffix>]
  for streaming releases (SSE passed through; a StreamFailure trailer fails the request), /predict[/<suffix>]
  for non-streaming ones (trtllm_oci.cloud.routes).
- OpenAI-compatible (trtllm-serve, vLLM, ...): POST /v1/chat/completions or /v1/completions.

What the body is and how an event is read is the transport's `wire` (trtllm_oci.bench.wire), so a
route can carry either dialect: the OCI transport with `wire=OpenAIWire(...)` posts OpenAI bodies to
a deployment running trtllm-serve.
"""

from __future__ import annotations

import abc
import asyncio
import json
import time
from typing import Any, Protocol

import aiohttp
import orjson

from trtllm_oci.bench import openai_api
from trtllm_oci.bench.errors import BenchInputError, TransportError
from trtllm_oci.bench.payload import ModelCapabilities
from trtllm_oci.bench.records import RequestRecord
from trtllm_oci.bench.wire import (
    DONE,
    LlmapiGenerateWire,
    OpenAIWire,
    SseDecoder,
    SseEvent,
    TritonGenerateWire,
    WireFormat,
    apply_generate_event,
    generate_wire,
)

_loads = orjson.loads
_dumps = orjson.dumps


# aiohttp's default 64 KiB read buffer throttles long streamed outputs (vllm-project/vllm#39963);
# SGLang's bench_serving uses 10 MiB.
READ_BUFSIZE = 10 * 1024 * 1024
_ERROR_BODY_CHARS = 500
# A probe is one small GET: a server that accepts and does not answer within this is reported at
# once instead of after the first request's full timeout.
PROBE_TIMEOUT_S = 30.0

# Kept importable under its old name (the generate extension's event folding lives in wire.py).
apply_event = apply_generate_event


class RequestSigner(Protocol):
    """What OCI signers offer (oci.signer.Signer and friends sign a requests.PreparedRequest)."""

    def do_request_sign(self, request: Any, enforce_content_headers: bool = True) -> Any: ...


class Transport(abc.ABC):
    """Async context manager; `send` never raises for request-level failures, it records them."""

    name: str = "abstract"
    streaming: bool = True

    def __init__(self, caps: ModelCapabilities | None = None, wire: WireFormat | None = None) -> None:
        self.caps = caps
        self.wire: WireFormat = wire if wire is not None else generate_wire(caps)

    def adopt(self, caps: ModelCapabilities) -> ModelCapabilities:
        """Take the probed capabilities; a generate-extension wire follows the model's dialect."""
        self.caps = caps
        if type(self.wire) in (TritonGenerateWire, LlmapiGenerateWire):
            self.wire = generate_wire(caps)
        return caps

    @property
    def label(self) -> str:
        """The `transport` column: the route, plus the body dialect where the route does not imply it."""
        if isinstance(self.wire, TritonGenerateWire) or self.name.startswith(self.wire.name):
            return self.name
        return f"{self.name}+{self.wire.name}"

    async def __aenter__(self) -> Transport:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:  # noqa: B027 - optional hook
        pass

    async def close(self) -> None:  # noqa: B027 - optional hook
        pass

    @abc.abstractmethod
    async def probe(self) -> ModelCapabilities:
        """Read the model config (or assume the ensemble where it cannot be read)."""

    @abc.abstractmethod
    async def send(self, record: RequestRecord) -> None:
        """Send record.spec, fill send/chunk/end timestamps, errors and server token counts."""

    def body(self, record: RequestRecord) -> dict[str, Any]:
        return self.wire.body(record.spec, self.caps, self.streaming)


class _AiohttpTransport(Transport):
    def __init__(
        self,
        caps: ModelCapabilities | None = None,
        max_connections: int = 256,
        request_timeout_s: float | None = 600.0,
        wire: WireFormat | None = None,
    ) -> None:
        super().__init__(caps, wire)
        if request_timeout_s is not None and not request_timeout_s > 0:
            raise BenchInputError(f"request timeout {request_timeout_s} s must be > 0 (--request-timeout-s)")
        if max_connections < 1:
            raise BenchInputError(f"max_connections={max_connections} must be >= 1 (use >= the concurrency)")
        self.max_connections = max_connections
        self.request_timeout_s = request_timeout_s
        self._session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        connector = aiohttp.TCPConnector(limit=self.max_connections, limit_per_host=self.max_connections)
        self._session = aiohttp.ClientSession(
            connector=connector,
            read_bufsize=READ_BUFSIZE,
            timeout=aiohttp.ClientTimeout(total=self.request_timeout_s),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("transport is not open; use `async with transport:`")
        return self._session

    @property
    def probe_timeout_s(self) -> float:
        return min(PROBE_TIMEOUT_S, self.request_timeout_s or PROBE_TIMEOUT_S)

    async def _read_sse(self, response: aiohttp.ClientResponse, record: RequestRecord) -> None:
        decoder = SseDecoder()
        async for raw in response.content:
            event = decoder.feed(raw, time.perf_counter_ns())
            if event is not None:
                self._dispatch(record, event)
        event = decoder.flush()
        if event is not None:
            self._dispatch(record, event)

    def _dispatch(self, record: RequestRecord, event: SseEvent) -> None:
        if record.saw_done:
            return
        if event.data == DONE:
            record.saw_done = True
            return
        if event.name == "error":
            record.fail(f"server error event in stream: {event.data[:_ERROR_BODY_CHARS]!r}")
            return
        try:
            payload = _loads(event.data)
        except ValueError:
            record.fail(f"unparseable SSE data: {event.data[:_ERROR_BODY_CHARS]!r}")
            return
        if not isinstance(payload, dict):
            record.fail(f"SSE data is not a JSON object: {event.data[:_ERROR_BODY_CHARS]!r}")
            return
        self._fold(record, payload, event.first_ns)

    def _fold(self, record: RequestRecord, payload: Any, now_ns: int) -> None:
        try:
            self.wire.fold(record, payload, now_ns)
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            record.fail(f"malformed event ({type(exc).__name__}: {exc}): {str(payload)[:_ERROR_BODY_CHARS]!r}")

    async def _post(self, url: str, data: bytes, headers: dict[str, str], record: RequestRecord) -> None:
        record.streamed = self.streaming
        record.send_ns = time.perf_counter_ns()
        try:
            async with self.session.post(url, data=data, headers=headers) as response:
                record.http_status = response.status
                if response.status != 200:
                    text = (await response.text(errors="replace"))[:_ERROR_BODY_CHARS]
                    record.fail(f"HTTP {response.status} from {url}: {text}")
                elif self.streaming:
                    await self._read_sse(response, record)
                else:
                    payload = await response.read()
                    now = time.perf_counter_ns()
                    try:
                        event = _loads(payload)
                    except ValueError:
                        record.fail(f"unparseable JSON from {url}: {payload[:_ERROR_BODY_CHARS]!r}")
                    else:
                        self._fold(record, event, now)
        except TimeoutError:
            record.timed_out = True
            record.fail(
                f"no complete answer from {url} within --request-timeout-s {self.request_timeout_s:g} s"
            )
        except (aiohttp.ClientError, OSError) as exc:
            record.fail(f"{type(exc).__name__} talking to {url}: {exc}")
        record.end_ns = time.perf_counter_ns()
        self.wire.finish(record, self.streaming)

    async def _get_json(self, url: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
        try:
            async with self.session.get(
                url, headers=headers, timeout=aiohttp.ClientTimeout(total=self.probe_timeout_s)
            ) as response:
                text = await response.text()
                if response.status != 200:
                    hint = "; check --model names a model this server has loaded" if response.status in (400, 404) else ""
                    raise TransportError(
                        f"GET {url} returned HTTP {response.status}: {text[:_ERROR_BODY_CHARS]}{hint}"
                    )
                try:
                    return json.loads(text)
                except ValueError as exc:
                    raise TransportError(f"GET {url} did not answer JSON: {text[:_ERROR_BODY_CHARS]!r}") from exc
        except TimeoutError as exc:
            raise TransportError(
                f"GET {url} got no answer within {self.probe_timeout_s:g} s: the server accepts connections "
                "but does not respond (still loading, or hung?)"
            ) from exc
        except aiohttp.ClientError as exc:
            raise TransportError(f"cannot reach {url}: {exc}; is the server up and the URL right?") from exc


class HttpTransport(_AiohttpTransport):
    """Triton's generate extension over HTTP; `streaming=False` uses /generate."""

    def __init__(self, base_url: str, model: str, streaming: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not base_url.startswith(("http://", "https://")):
            raise BenchInputError(f"--url {base_url!r} must start with http:// or https:// for the HTTP transport")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.streaming = streaming
        self.name = "http_sse" if streaming else "http_generate"
        suffix = "generate_stream" if streaming else "generate"
        self.url = f"{self.base_url}/v2/models/{model}/{suffix}"

    async def probe(self) -> ModelCapabilities:
        config = await self._get_json(f"{self.base_url}/v2/models/{self.model}/config")
        return self.adopt(ModelCapabilities.from_config(config))

    async def send(self, record: RequestRecord) -> None:
        data = _dumps(self.body(record))
        await self._post(self.url, data, {"Content-Type": "application/json"}, record)


class OpenAITransport(_AiohttpTransport):
    """POST <base>/v1/chat/completions or /v1/completions; `streaming=False` reads one JSON answer.

    `model` is the served model name; None takes the only model `GET /v1/models` lists. The probe
    checks the server speaks OpenAI at all (a Triton or other server answers 404 there).
    """

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        api: str = "chat",
        streaming: bool = True,
        length_fields: tuple[str, ...] = openai_api.DEFAULT_LENGTH_FIELDS,
        **kwargs: Any,
    ) -> None:
        openai_api.check_api(api)
        openai_api.check_length_fields(length_fields)
        if not base_url.startswith(("http://", "https://")):
            raise BenchInputError(f"--url {base_url!r} must start with http:// or https:// for the openai transport")
        base = base_url.rstrip("/")
        self.base_url = base[: -len("/v1")] if base.endswith("/v1") else base
        self.api = api
        self.length_fields = length_fields
        self.model = model
        super().__init__(wire=OpenAIWire(model, api, length_fields) if model else None, **kwargs)
        self.streaming = streaming
        self.url = f"{self.base_url}{openai_api.ROUTES[api]}"

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"openai_{self.api}{'_sse' if self.streaming else ''}"

    async def probe(self) -> ModelCapabilities:
        url = f"{self.base_url}{openai_api.MODELS_ROUTE}"
        try:
            payload = await self._get_json(url)
            models = openai_api.served_models(payload)
        except (TransportError, ValueError) as exc:
            raise TransportError(
                f"{exc}; --transport openai needs an OpenAI-compatible server (trtllm-serve, vLLM, ...) "
                f"at {self.base_url}: check --url (for Triton's /v2 routes use --transport http or grpc)"
            ) from exc
        if self.model is None:
            if len(models) != 1:
                raise TransportError(f"{url} lists models {models}: choose one with --model")
            self.model = models[0]
        elif self.model not in models:
            raise TransportError(f"--model {self.model!r} is not served at {self.base_url}: {url} lists {models}")
        self.wire = OpenAIWire(self.model, self.api, self.length_fields)
        self.caps = ModelCapabilities()
        return self.caps

    async def send(self, record: RequestRecord) -> None:
        if not isinstance(self.wire, OpenAIWire):
            raise RuntimeError("call probe() (or pass model=) before send()")
        data = _dumps(self.body(record))
        headers = {"Content-Type": "application/json"}
        if self.streaming:
            headers["Accept"] = "text/event-stream"
        await self._post(self.url, data, headers, record)


class OciModelDeploymentTransport(_AiohttpTransport):
    """A Model Deployment's own generation route, each request freshly signed.

    `routes` (trtllm_oci.cloud.routes.ServingRoutes, what `deploy` returns) decide the URL: a streaming release is
    read through `/predictWithResponseStream[/<suffix>]`, a non-streaming one is called on `/predict[/<suffix>]`
    (the streaming endpoint answers 409 ExternalServerIncorrectState for a container that does not stream:
    model-dep-response-streaming-endpoint.htm). Without `routes`, the Triton ensemble's routes are assumed.

    Streams are read with h11 (trtllm_oci.cloud.http_stream) because the service reports a failure after the 200
    only in the `StreamFailure` HTTP trailer, which aiohttp drops; a request whose stream ends with it is failed.
    `signer` is any object with `do_request_sign(prepared_request)` (oci.signer.Signer, instance principals, ...)
    or a requests-style auth callable.
    """

    name = "oci_md"

    def __init__(
        self,
        endpoint_url: str,
        signer: Any,
        caps: ModelCapabilities | None = None,
        *,
        routes: Any = None,
        streaming: bool = True,
        **kwargs: Any,
    ) -> None:
        from trtllm_oci.cloud.routes import invoke_url, triton_generate_routes

        super().__init__(caps=caps, **kwargs)
        if not endpoint_url.startswith("https://") and not endpoint_url.startswith("http://"):
            raise BenchInputError(f"OCI endpoint {endpoint_url!r} must be the deployment's https:// URL")
        if not (hasattr(signer, "do_request_sign") or callable(signer)):
            raise TypeError(
                f"signer {type(signer).__name__} has no do_request_sign() and is not callable; "
                "pass an oci.signer.Signer (oci.signer.Signer.from_config(oci.config.from_file()))"
            )
        base = endpoint_url.rstrip("/")
        for suffix in ("/predictWithResponseStream", "/predict"):
            if suffix in base:
                base = base[: base.index(suffix)]
        self.routes = routes or triton_generate_routes("ensemble", streaming=streaming)
        route = self.routes.for_requests(streaming)
        if self.routes.protocol == "openai" and isinstance(self.wire, OpenAIWire) \
                and route.path != openai_api.ROUTES[self.wire.api]:
            # Chat and completions bodies each go to their own path: MODEL_DEPLOY_PREDICT_ENDPOINT names one of them
            # (the bare /predict); the other is reached by its suffix, which the openai specification allowlists.
            route = route.model_copy(update={"path": openai_api.ROUTES[self.wire.api]})
        self.url = invoke_url(base, route, self.routes)
        self.signer = signer
        self.streaming = streaming
        self.name = "oci_md" if streaming else "oci_md_predict"
        self._pool: Any = None

    async def open(self) -> None:
        from trtllm_oci.cloud.http_stream import AsyncHttpStreamPool

        await super().open()
        self._pool = AsyncHttpStreamPool(self.max_connections)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
        await super().close()

    async def probe(self) -> ModelCapabilities:
        if self.caps is None:
            self.caps = ModelCapabilities.assumed_ensemble()
        return self.caps

    def signed_headers(self, data: bytes) -> dict[str, str]:
        from trtllm_oci.cloud.http_stream import signed_headers

        accept = "text/event-stream" if self.streaming else "application/json"
        return signed_headers("POST", self.url, data, {"Content-Type": "application/json", "Accept": accept},
                              self.signer)

    async def send(self, record: RequestRecord) -> None:
        data = _dumps(self.body(record))
        if not self.streaming:
            await self._post(self.url, data, self.signed_headers(data), record)
            return
        await self._post_stream(data, self.signed_headers(data), record)

    async def _post_stream(self, data: bytes, headers: dict[str, str], record: RequestRecord) -> None:
        from trtllm_oci.cloud.http_stream import HttpStreamError, aiter_lines

        if self._pool is None:
            raise RuntimeError("transport is not open; use `async with transport:`")
        record.streamed = True
        record.send_ns = time.perf_counter_ns()
        try:
            async with asyncio.timeout(self.request_timeout_s), \
                    self._pool.request("POST", self.url, data, headers) as (response, chunks):
                record.http_status = response.status
                if response.status != 200:
                    body = b"".join([chunk async for chunk in chunks])
                    record.fail(f"HTTP {response.status} from {self.url}: "
                                f"{body[:_ERROR_BODY_CHARS].decode('utf-8', 'replace')}")
                else:
                    decoder = SseDecoder()
                    async for line in aiter_lines(chunks):
                        event = decoder.feed(line, time.perf_counter_ns())
                        if event is not None:
                            self._dispatch(record, event)
                    event = decoder.flush()
                    if event is not None:
                        self._dispatch(record, event)
                    if response.stream_failure and record.error is None:
                        record.fail(f"stream broke after it started (StreamFailure trailer: "
                                    f"{response.stream_failure[:_ERROR_BODY_CHARS]})")
                    elif not response.complete and record.error is None:
                        record.fail("stream ended without its final chunk")
        except (TimeoutError, HttpStreamError, OSError) as exc:
            record.fail(f"{type(exc).__name__} talking to {self.url}: {exc}")
        record.end_ns = time.perf_counter_ns()
        if record.error is None and not record.chunk_ns:
            record.fail("stream ended without any output text")


def _grpc_dtype(config_type: str) -> str | None:
    """A model config's data_type (TYPE_INT32) as the protocol names it (INT32); STRING is BYTES on the wire
    (tritonclient's np_to_triton_dtype(np.object_))."""
    from tritonclient.utils import triton_to_np_dtype

    name = config_type.removeprefix("TYPE_")
    name = "BYTES" if name == "STRING" else name
    return name if config_type.startswith("TYPE_") and triton_to_np_dtype(name) is not None else None


class GrpcStreamTransport(Transport):
    """One ModelStreamInfer call per request on a shared channel.

    tritonclient.grpc.aio's stream_infer (tritonclient 2.73: grpc/aio/__init__.py) cannot ask for
    the empty final response and rejects `triton_*` parameters, so without it a client cannot tell
    when a decoupled stream has ended; the request is therefore built with tritonclient's
    InferInput and sent through the generated stub, setting the parameter as the sync client's
    async_stream_infer(enable_empty_final_response=True) does (grpc/_client.py).
    """

    name = "grpc"
    streaming = True

    def __init__(
        self,
        url: str,
        model: str,
        caps: ModelCapabilities | None = None,
        request_timeout_s: float | None = 600.0,
        wire: WireFormat | None = None,
    ) -> None:
        super().__init__(caps, wire)
        if "://" in url:
            raise BenchInputError(f"gRPC --url {url!r} must be host:port (e.g. localhost:8001), without a scheme")
        self.url = url
        self.model = model
        self.request_timeout_s = request_timeout_s
        self._channel: Any = None
        self._stub: Any = None

    async def open(self) -> None:
        import grpc
        from tritonclient.grpc import service_pb2_grpc

        options = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
        self._channel = grpc.aio.insecure_channel(self.url, options=options)
        self._stub = service_pb2_grpc.GRPCInferenceServiceStub(self._channel)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None

    async def probe(self) -> ModelCapabilities:
        from tritonclient.grpc.aio import InferenceServerClient
        from tritonclient.utils import InferenceServerException

        client = InferenceServerClient(self.url)
        try:
            config = await client.get_model_config(
                self.model, as_json=True, client_timeout=min(PROBE_TIMEOUT_S, self.request_timeout_s or PROBE_TIMEOUT_S)
            )
        except InferenceServerException as exc:
            raise TransportError(
                f"cannot read config of model {self.model!r} at grpc://{self.url}: {exc}"
            ) from exc
        finally:
            await client.close()
        return self.adopt(ModelCapabilities.from_config(config))

    def build_request(self, record: RequestRecord) -> Any:
        import numpy as np
        from tritonclient.grpc import InferInput, service_pb2
        from tritonclient.utils import triton_to_np_dtype

        assert self.caps is not None
        request = service_pb2.ModelInferRequest(model_name=self.model, id=str(record.index))
        shape = [1, 1] if self.caps.max_batch_size > 0 else [1]
        for name, value in self.body(record).items():
            dtype = _grpc_dtype(self.caps.input_dtypes.get(name, ""))
            if dtype is None:
                raise BenchInputError(
                    f"input {name!r} has type {self.caps.input_dtypes.get(name)!r}, unsupported here"
                )
            if dtype == "BYTES":
                array = np.array([str(value).encode()], dtype=np.object_)
            else:
                array = np.array([value], dtype=triton_to_np_dtype(dtype))
            infer_input = InferInput(name, shape, dtype)
            infer_input.set_data_from_numpy(array.reshape(shape))
            request.inputs.extend([infer_input._get_tensor()])
            request.raw_input_contents.extend([infer_input._get_content()])
        request.parameters["triton_enable_empty_final_response"].bool_param = True
        return request

    async def send(self, record: RequestRecord) -> None:
        from tritonclient.grpc import InferResult

        if self._stub is None:
            raise RuntimeError("transport is not open; use `async with transport:`")
        request = self.build_request(record)
        done = asyncio.Event()

        async def requests():
            yield request
            await done.wait()

        record.streamed = True
        record.send_ns = time.perf_counter_ns()
        call = self._stub.ModelStreamInfer(requests(), timeout=self.request_timeout_s)
        try:
            async for response in call:
                now = time.perf_counter_ns()
                if response.error_message:
                    record.fail(f"server error in stream: {response.error_message}")
                    break
                infer = response.infer_response
                if infer.outputs:
                    result = InferResult(infer)
                    event: dict[str, Any] = {}
                    for output in infer.outputs:
                        array = result.as_numpy(output.name)
                        if array is not None:
                            event[output.name] = array.reshape(-1).tolist()
                    self.wire.fold(record, event, now)
                if infer.parameters["triton_final_response"].bool_param:
                    break
        except Exception as exc:  # grpc.aio.AioRpcError and transport failures
            code = getattr(exc, "code", None)
            if callable(code) and getattr(code(), "name", "") == "DEADLINE_EXCEEDED":
                record.timed_out = True
                record.fail(f"no complete answer from grpc://{self.url} within --request-timeout-s "
                            f"{self.request_timeout_s:g} s")
            else:
                record.fail(f"{type(exc).__name__} on grpc://{self.url}: {exc}")
        finally:
            done.set()
            call.cancel()
        record.end_ns = time.perf_counter_ns()
        self.wire.finish(record, True)
