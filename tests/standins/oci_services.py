"""A local stand-in of the OCI services trtllm-oci calls (TEST CODE, never shipped).

One threaded HTTP server on 127.0.0.1 serves, under their real base paths:
  /20190101  Data Science: models, model artifacts (+ export), model deployments, shapes, work requests
  /20160918  Artifacts: container repositories
  /n         Object Storage: namespace, put/get(Range)/head/delete/list/rename object (if-match, if-none-match),
             multipart uploads
  /20180419  OCIR docker token
  /<md-ocid>/predict, /<md-ocid>/predictWithResponseStream: the deployment's inference endpoint

It checks what OCI checks: draft-cavage HTTP signatures as the SDK makes them (oci/signer.py@2.189.0), the body
hash (x-content-sha256), request bodies against the SDK's own model classes (swagger_types, attribute_map,
"**[Required]**" property docs, enum setters), Data Science limits, retry-token idempotency, and lifecycle
rules. Resources move through states via work requests that complete after `lifecycle_delay` seconds.
Faults are injected per route with `inject(...)`.
"""

from __future__ import annotations

import base64
import contextlib
import email.utils
import functools
import hashlib
import io
import json
import logging
import re
import threading
import time
import urllib.error
import urllib.request
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import oci.artifacts.models as artifacts_models
import oci.data_science.models as ds_models
import oci.limits.models as limits_models
import oci.object_storage.models as os_models
import oci.regions as oci_regions
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from oci.base_client import BaseClient

MAX_CLOCK_SKEW_SECONDS = 300
MOUNT = "/opt/ds/model/deployed_model"  # where the artifact appears in the container (mod-dep-byoc.htm)
DEFAULT_SHAPES = [("VM.GPU.A10.1", 15, 240, "NVIDIA_GPU"), ("VM.GPU.A10.2", 30, 480, "NVIDIA_GPU"),
                  ("BM.GPU.A10.4", 64, 1024, "NVIDIA_GPU"), ("BM.GPU4.8", 64, 2048, "NVIDIA_GPU"),
                  ("BM.GPU.H100.8", 112, 2048, "NVIDIA_GPU"),
                  ("VM.Standard.E4.Flex", 1, 16, "AMD_ROME")]
FORBIDDEN_PORTS = {24224, 8446, 8447}
# Data Science GPU service limits count GPUs per shape family (ADS ads/aqua/ui.py@2.15.2 get_shape_availability;
# names from ads/aqua/verify_policies/constants.py and tests/unitary/with_extras/aqua/test_ui.py).
SHAPE_LIMITS = {"VM.GPU.A10.1": ("ds-gpu-a10-count", 1), "VM.GPU.A10.2": ("ds-gpu-a10-count", 2),
                "BM.GPU.A10.4": ("ds-gpu-a10-count", 4), "BM.GPU4.8": ("ds-gpu4-count", 8)}
# Shapes without a limit name Oracle's code gives (BM.GPU.H100.8, ...) are not limited by the stand-in.
RESERVED_ENV = {"MODEL_DEPLOYMENT_OCID", "TENANCY_OCID", "CONTAINER_CUSTOM_IMAGE"}
_ACTION_DONE = {"CREATE": "CREATED", "DELETE": "DELETED"}  # WorkRequestResource.action_type
ZERO_DOWNTIME_FIELDS = {"modelId", "instanceConfiguration", "scalingPolicy", "bandwidthMbps", "maximumBandwidthMbps"}


# What a registry answers a pull with (distribution/distribution:docs/spec/manifest-v2-2.md, OCI image-spec).
_MANIFEST_TYPES = ("application/vnd.docker.distribution.manifest.v2+json",
                   "application/vnd.docker.distribution.manifest.list.v2+json",
                   "application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json")
DIRECT_ARTIFACT_LIMIT_BYTES = 2 * 1024**3  # ADS ads/model/datascience_model.py@2.15.2 _MAX_ARTIFACT_SIZE_IN_BYTES


@dataclass(frozen=True)
class SparseBody:
    """A large body after its checks: its size and digests, not its bytes (a 3 GiB artifact stays out of RAM)."""

    size: int
    md5_b64: str | None
    sha256: str | None

    @classmethod
    def of(cls, data: bytes) -> SparseBody:
        return cls(len(data), base64.b64encode(hashlib.md5(data).digest()).decode(), hashlib.sha256(data).hexdigest())

    @classmethod
    def join(cls, parts: list) -> SparseBody:
        return cls(sum(len(p) for p in parts), None, None)

    def __len__(self) -> int:
        return self.size


def _jwt_exp(token: str) -> float | None:
    try:
        payload = token.split(".")[1]
        return float(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["exp"])
    except (IndexError, KeyError, TypeError, ValueError):
        return None


def session_token(seconds: float, subject: str = "standin-user") -> str:
    """A JWT-shaped session token valid for `seconds` (the stand-in checks only its exp and its key)."""
    def part(obj: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")
    return f"{part({'alg': 'RS256'})}.{part({'sub': subject, 'exp': int(time.time() + seconds)})}.c2ln"


def _md5_b64(data) -> str | None:
    if isinstance(data, SparseBody):
        return data.md5_b64
    return base64.b64encode(hashlib.md5(data).digest()).decode()


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _ocid(kind: str) -> str:
    return f"ocid1.{kind}.oc1.iad.{uuid.uuid4().hex}"


# ------------------------------------------------------------------ body validation against the SDK models

# One type mapping per service: names collide across services (Object Storage and Data Science both have a
# WorkRequest, with different states), exactly as each SDK client keeps its own mapping.
MAPPINGS: dict[str, dict[str, type]] = {
    "data_science": ds_models.data_science_type_mapping,
    "artifacts": artifacts_models.artifacts_type_mapping,
    "object_storage": os_models.object_storage_type_mapping,
    "limits": limits_models.limits_type_mapping,
}


# InferenceHttpEndpoint.http_methods: GET, POST, PUT, DELETE (oracle-samples/oci-data-science-ai-samples
# model-deployment/multiple_inference_endpoints/README.md@2624d1c).
STRING_ENUMS = {"HttpMethod": frozenset({"GET", "POST", "PUT", "DELETE"})}


def service_of(path: str) -> str:
    if path.startswith("/n"):
        return "object_storage"
    if path.startswith("/20160918/"):
        return "artifacts"
    if path.startswith("/20190729/"):
        return "limits"
    return "data_science"


def _required_attrs(cls: type) -> set[str]:
    required = set()
    for klass in cls.__mro__:
        for name, value in vars(klass).items():
            if isinstance(value, property) and value.fget.__doc__ and "**[Required]**" in value.fget.__doc__:
                required.add(name)
    return required


def _shape_errors(value: Any, type_name: str, where: str, mapping: dict[str, type], response: bool) -> list[str]:
    """Unknown/missing fields, wrong types and unknown enum values of wire JSON against an SDK model.

    Requests: a required field must be non-null. Responses: a required field must be present (the service always
    returns it; null allowed), and an enum value the model does not know is an error (the SDK would turn it into
    UNKNOWN_ENUM_VALUE and every comparison against the documented constants would fail).
    """
    if type_name == "object" or (response and value is None):
        return []
    if type_name.startswith("list["):
        if not isinstance(value, list):
            return [f"{where} must be a list"]
        return [e for i, item in enumerate(value)
                for e in _shape_errors(item, type_name[5:-1], f"{where}[{i}]", mapping, response)]
    if type_name.startswith("dict("):
        if not isinstance(value, dict):
            return [f"{where} must be an object"]
        inner = type_name[5:-1].split(",", 1)[1].strip()
        return [e for key, item in value.items() for e in _shape_errors(item, inner, f"{where}.{key}", mapping, response)]
    primitive = {"str": str, "int": int, "float": (int, float), "bool": bool, "datetime": str}
    if type_name in primitive:
        ok = isinstance(value, primitive[type_name]) and not (type_name in ("int", "float") and isinstance(value, bool))
        return [] if ok else [f"{where} must be {type_name}, got {type(value).__name__}"]
    cls = mapping.get(type_name)
    if cls is None and type_name in STRING_ENUMS:
        # Enum types the SDK keeps out of its type mapping and passes through as strings (base_client.py
        # __deserialize: "Enums are not present in type mappings").
        if not isinstance(value, str) or value not in STRING_ENUMS[type_name]:
            return [f"{where} must be one of {sorted(STRING_ENUMS[type_name])}, got {value!r}"]
        return []
    if cls is None:
        return [f"{where}: stand-in does not know model {type_name}"]
    if not isinstance(value, dict):
        return [f"{where} must be an object ({type_name})"]
    if "get_subtype" in vars(cls):
        subtype = cls.get_subtype(value)
        if subtype not in mapping:
            return [f"{where}: discriminator value selects unknown subtype {subtype}"]
        cls = mapping[subtype]
    instance = cls()
    by_wire = {wire: attr for attr, wire in instance.attribute_map.items()}
    errors = [f"{where}.{key} is not a field of {cls.__name__}" for key in value if key not in by_wire]
    for attr in _required_attrs(cls):
        wire = instance.attribute_map[attr]
        if (wire not in value) if response else (value.get(wire) is None):
            errors.append(f"{where}.{wire} is required" + (f" in {cls.__name__}" if response else ""))
    for key, item in value.items():
        if key not in by_wire or item is None:
            continue
        attr = by_wire[key]
        errors += _shape_errors(item, instance.swagger_types[attr], f"{where}.{key}", mapping, response)
        if instance.swagger_types[attr] == "str" and isinstance(item, str):
            setattr(instance, attr, item)
            if getattr(instance, attr) == "UNKNOWN_ENUM_VALUE":
                errors.append(f"{where}.{key} has invalid value {item!r}" if not response else
                              f"{where}.{key} has value {item!r}, which {cls.__name__} does not know")
    return errors


def validate_body(value: Any, type_name: str, where: str = "body", service: str = "data_science") -> list[str]:
    """Errors of a request body (wire JSON) against the SDK model `type_name`: unknown/missing fields, types, enums."""
    return _shape_errors(value, type_name, where, MAPPINGS[service], response=False)


def validate_response(value: Any, type_name: str, where: str = "response", service: str = "data_science") -> list[str]:
    """Errors of a response the stand-in is about to send, judged as the SDK's client would read it.

    Besides the shape rules of `_shape_errors`, the SDK's own deserializer (oci/base_client.py@2.189.0
    deserialize_response_data, the code every client call runs) must accept it.
    """
    errors = _shape_errors(value, type_name, where, MAPPINGS[service], response=True)
    try:
        _SdkReader(MAPPINGS[service]).deserialize_response_data(json.dumps(value).encode(), type_name)
    except Exception as exc:  # noqa: BLE001 - any failure of the SDK's reader is a stand-in bug
        errors.append(f"{where}: the SDK cannot deserialize it as {type_name}: {exc}")
    return errors


class _SdkReader(BaseClient):
    """The SDK's response deserializer without a client: it needs only the type mappings and a logger."""

    def __init__(self, type_mapping: dict[str, type]):  # noqa: D107 - deliberately skips BaseClient.__init__
        self.type_mappings = type_mapping
        self.skip_deserialization = False
        self._allow_control_chars = None
        self.logger = logging.getLogger("tests.standins.oci_services.sdk_reader")


# ------------------------------------------------------------------ state


@dataclass
class Fault:
    method: str
    path: re.Pattern
    kind: str  # "status" | "slow" | "fail_work_request" | "needs_attention" | "stream_failure" (delay = events kept)
    times: int
    status: int = 500
    delay: float = 0.0
    hits: int = 0


@dataclass
class WorkRequest:
    id: str
    operation_type: str
    compartment_id: str
    resource_id: str
    entity_type: str
    accepted: float
    due: float
    on_success: Any
    fail_reason: str | None = None
    outcome_state: str | None = None  # resource state when the fault fires
    outcome_on_error: str | None = None  # resource state when on_success finds the work impossible
    status: str = "ACCEPTED"
    finished: str | None = None
    errors: list[dict] = field(default_factory=list)
    logs: list[dict] = field(default_factory=list)


class OciStandIn:
    """Start with `start()`, point SDK clients at `.url`, stop with `stop()`."""

    def __init__(self, keys: dict[str, Any], *, lifecycle_delay: float = 0.2, namespace: str = "standinns",
                 shapes=DEFAULT_SHAPES, region: str = "us-ashburn-1", buckets: set[str] | None = None,
                 list_page_size: int = 3):
        self.keys = dict(keys)  # keyId (or "ST$<token>") -> RSA public key
        self.lifecycle_delay = lifecycle_delay
        self.namespace = namespace
        self.shapes = list(shapes)
        self.region = region
        self.lock = threading.RLock()
        self.faults: list[Fault] = []
        self.received: list[dict[str, Any]] = []
        self.models: dict[str, dict] = {}
        self.artifacts: dict[str, bytes] = {}
        self.deployments: dict[str, dict] = {}
        self.work_requests: dict[str, WorkRequest] = {}
        self.repositories: dict[str, dict] = {}
        self.objects: dict[tuple[str, str], bytes] = {}
        self.object_meta: dict[tuple[str, str], dict] = {}  # etag, last-modified (epoch seconds)
        self.buckets = buckets  # None: every bucket name exists
        self.list_page_size = list_page_size  # OCI's default is 1000; small so clients must follow nextStartWith
        self.uploads: dict[str, dict] = {}
        self.retry_tokens: dict[tuple[str, str], tuple[str, tuple]] = {}
        self.auth_failures = 0
        self.containers: dict[str, Any] = {}  # image repository -> container model
        self.default_container: Any = TritonContainer()
        self.response_errors: list[str] = []
        self.keep_body_bytes = 64 * 1024**2  # bodies above are kept as SparseBody summaries
        # Buckets the Data Science service itself may read (export, by-reference, bootstrap). None: every bucket.
        # Without the policy "allow service datascience to manage object-family ... where target.bucket.name=..."
        # (oracle-samples model-deployment/containers/llm/llama2/README.md) the service cannot read it.
        self.service_readable_buckets: set[str] | None = None
        self.references: dict[str, list[dict]] = {}  # model id -> OSS references registered as its artifact
        self.image_sizes: dict[str, int] = {}  # image digest -> uncompressed bytes, for the boot-volume check
        self.bootstrap_minutes = 0.0  # how long the container takes to answer its health check
        self.container_check = None  # optional (deployment, mounted paths) -> problem | None
        self.quotas: dict[str, int] = {}  # service-limit name -> GPUs the tenancy may use (absent: unlimited)
        # The registry behind `<region-key>.ocir.io`: with it, bootstrap pulls the deployment's image by digest and
        # fails as the service does when the manifest is not there. None: images are not checked.
        self.registry_url: str | None = None
        # How the service authenticates its pull: repository path -> Authorization header (None: anonymous).
        self.registry_authorization: Callable[[str], str] | None = None
        self.ocir_token_seconds = 300  # lifetime of the docker login JWTs /20180419/docker/token issues
        self.ocir_login_tokens: dict[str, float] = {}  # issued login JWT -> expiry (epoch seconds)
        self.server: ThreadingHTTPServer | None = None

    # --------------------------------------------------------------- lifecycle of the server

    def start(self) -> str:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep pytest output clean
                pass

            def _any(self):
                try:
                    standin._handle(self)
                except Exception as exc:  # a stand-in bug: answer (so no client hangs) and fail the test
                    with standin.lock:
                        standin.response_errors.append(f"stand-in crashed on {self.command} {self.path}: {exc!r}")
                    self.close_connection = True
                    with contextlib.suppress(OSError):
                        self.send_error(500, "stand-in crashed")

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        return self.url

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    # --------------------------------------------------------------- test API

    def inject(self, method: str, path: str, kind: str, *, times: int = 1, status: int = 500,
               delay: float = 0.0) -> Fault:
        fault = Fault(method.upper(), re.compile(path), kind, times, status, delay)
        with self.lock:
            self.faults.append(fault)
        return fault

    def requests_to(self, method: str, path_regex: str) -> list[dict[str, Any]]:
        pattern = re.compile(path_regex)
        with self.lock:
            return [r for r in self.received if r["method"] == method and pattern.search(r["path"])]

    def live_models(self) -> list[dict]:
        with self.lock:
            self._advance()
            return [m for m in self.models.values() if m["lifecycleState"] != "DELETED"]

    def live_deployments(self) -> list[dict]:
        with self.lock:
            self._advance()
            return [d for d in self.deployments.values() if d["lifecycleState"] != "DELETED"]

    # --------------------------------------------------------------- request handling

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        request_id = uuid.uuid4().hex.upper()
        split = urlsplit(h.path)
        path = unquote(split.path)
        query = {k: v[0] for k, v in parse_qs(split.query).items()}
        length = int(h.headers.get("content-length") or 0)
        if h.command == "POST" and re.match(r"^/20190101/models/[^/]+/artifact$", path) \
                and length > DIRECT_ARTIFACT_LIMIT_BYTES:
            # Refused from the headers, before a byte of the body is read (ADS _MAX_ARTIFACT_SIZE_IN_BYTES).
            with self.lock:
                self.received.append({"method": h.command, "path": path, "query": query, "headers": {},
                                      "body_bytes": 0, "refused_length": length})
            h.close_connection = True
            self._reply(h, 400, {}, {"code": "InvalidParameter", "message": f"artifact of {length} bytes is above the "
                                                                           "2 GiB direct-upload limit; export it from "
                                                                           "Object Storage"}, request_id)
            return
        body = h.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in h.headers.items()}
        record = {"method": h.command, "path": path, "query": query, "headers": headers, "body_bytes": len(body)}
        if headers.get("content-type", "").startswith("application/json") and body:
            try:
                record["json"] = json.loads(body)
            except ValueError:
                record["json"] = None
        with self.lock:
            self.received.append(record)
        if len(body) > self.keep_body_bytes and not record.get("json"):
            body = SparseBody.of(body)  # the bytes are checked (MD5, signature) here and then only summarised
        slow = 0.0
        try:
            self._verify_signature(h.command, h.path, headers, body)
            fault = self._take_fault(h.command, path, ("status", "slow"))
            if fault and fault.kind == "status":
                code = {429: "TooManyRequests", 500: "InternalServerError", 503: "ServiceUnavailable"}
                raise ApiError(fault.status, code.get(fault.status, "InternalServerError"), "injected fault")
            if fault and fault.kind == "slow":
                slow = fault.delay
            status, out_headers, payload = self._dispatch(h.command, path, query, headers, body, record)
        except ApiError as err:
            status, out_headers = err.status, {}
            payload = json.dumps({"code": err.code, "message": err.message}).encode()
        if slow:
            time.sleep(slow)  # the work is done; only the answer is late, like a lost response
        self._reply(h, status, out_headers, payload, request_id)

    def _reply(self, h, status: int, headers: dict, payload, request_id: str) -> None:
        if hasattr(payload, "__next__"):  # server-sent events, chunked, with the StreamFailure trailer declared
            h.send_response(status)
            h.send_header("content-type", "text/event-stream")
            h.send_header("opc-request-id", request_id)
            h.send_header("transfer-encoding", "chunked")
            h.send_header("trailer", "StreamFailure")
            h.end_headers()
            failure = None
            for chunk in payload:
                if isinstance(chunk, StreamFailure):
                    failure = chunk
                    break
                data = chunk.encode()
                h.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                h.wfile.flush()
            trailer = f"StreamFailure: {json.dumps(failure.as_value())}\r\n" if failure else ""
            h.wfile.write(f"0\r\n{trailer}\r\n".encode())
            return
        data = payload if isinstance(payload, bytes) else (json.dumps(payload).encode() if payload is not None else b"")
        headers = dict(headers)
        head_length = headers.pop("x-len", len(data))
        h.send_response(status)
        h.send_header("opc-request-id", request_id)
        h.send_header("content-type", headers.pop("content-type", "application/json"))
        for key, value in headers.items():
            h.send_header(key, str(value))
        if h.command == "HEAD":
            h.send_header("content-length", str(head_length))
            h.end_headers()
            return
        h.send_header("content-length", str(len(data)))
        h.end_headers()
        if data:
            h.wfile.write(data)

    def _take_fault(self, method: str, path: str, kinds) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.kind in kinds and fault.method == method and fault.path.search(path) and fault.hits < fault.times:
                    fault.hits += 1
                    return fault
        return None

    # --------------------------------------------------------------- signatures

    def _unauthorized(self, why: str) -> ApiError:
        with self.lock:
            self.auth_failures += 1
        return ApiError(401, "NotAuthenticated", f"The required information to complete authentication was not "
                                                 f"provided or was incorrect. ({why})")

    def _verify_signature(self, method: str, raw_path: str, headers: dict, body: bytes) -> None:
        auth = headers.get("authorization", "")
        if not auth.startswith("Signature "):
            raise self._unauthorized("missing Signature authorization")
        params = dict(re.findall(r'(\w+)="([^"]*)"', auth[len("Signature "):]))
        if params.get("algorithm") != "rsa-sha256" or params.get("version") != "1":
            raise self._unauthorized("unsupported algorithm or version")
        signed = params.get("headers", "").split()
        needed = {"date", "(request-target)", "host"}
        ctype = headers.get("content-type", "")
        path_only = raw_path.split("?", 1)[0]
        # Object data (PutObject, UploadPart) and model artifacts are exempt from body signing in OCI; the SDK
        # sends them with enforce_content_headers=False.
        raw_body_operation = ((method == "PUT" and path_only.startswith("/n/"))
                              or (method == "POST" and path_only.endswith("/artifact")))
        if method in ("POST", "PUT", "PATCH") and ctype.startswith("application/json") and not raw_body_operation:
            needed |= {"content-length", "content-type", "x-content-sha256"}
        if not needed <= set(signed):
            raise self._unauthorized(f"signed headers lack {sorted(needed - set(signed))}")
        if "x-content-sha256" in headers:
            if "x-content-sha256" not in signed:
                raise self._unauthorized("x-content-sha256 present but not signed")
            if base64.b64encode(hashlib.sha256(body).digest()).decode() != headers["x-content-sha256"]:
                raise self._unauthorized("x-content-sha256 does not match the body")
        if "content-length" in signed and int(headers.get("content-length", -1)) != len(body):
            raise self._unauthorized("content-length does not match the body")
        try:
            sent = email.utils.parsedate_to_datetime(headers["date"]).timestamp()
        except (KeyError, TypeError, ValueError):
            raise self._unauthorized("missing or malformed date header") from None
        if abs(time.time() - sent) > MAX_CLOCK_SKEW_SECONDS:
            raise self._unauthorized("date header outside the allowed clock skew")
        lines = []
        for name in signed:
            if name == "(request-target)":
                lines.append(f"(request-target): {method.lower()} {raw_path}")
            elif name in headers:
                lines.append(f"{name}: {headers[name]}")
            else:
                raise self._unauthorized(f"signed header {name} missing from request")
        key_id = params.get("keyId", "")
        key = self.keys.get(key_id)
        if key is None:
            raise self._unauthorized("unknown keyId")
        if key_id.startswith("ST$"):
            # Session tokens are JWTs; the service refuses one past its exp (oci session authenticate: 1 h).
            expires = _jwt_exp(key_id[3:])
            if expires is not None and expires <= time.time():
                raise self._unauthorized("the session token has expired")
        try:
            key.verify(base64.b64decode(params.get("signature", "")), "\n".join(lines).encode("ascii"),
                       padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, ValueError):
            raise self._unauthorized("signature does not verify") from None

    # --------------------------------------------------------------- routing

    def _dispatch(self, method, path, query, headers, body, record):
        # (method, path, handler, response model): the model is what the SDK's operation declares as
        # response_type (oci/<service>/<service>_client.py@2.189.0); every 2xx JSON answer is checked against it.
        routes = [
            ("GET", r"^/20180419/docker/token$", self._ocir_token, None),
            ("GET", r"^/n/?$", self._namespace, "str"),
            ("PUT", r"^/n/([^/]+)/b/([^/]+)/o/(.+)$", self._put_object, None),
            ("GET", r"^/n/([^/]+)/b/([^/]+)/o/?$", self._list_objects, "ListObjects"),
            ("GET", r"^/n/([^/]+)/b/([^/]+)/o/(.+)$", self._get_object, None),
            ("POST", r"^/n/([^/]+)/b/([^/]+)/actions/renameObject$", self._rename_object, None),
            ("HEAD", r"^/n/([^/]+)/b/([^/]+)/o/(.+)$", self._head_object, None),
            ("DELETE", r"^/n/([^/]+)/b/([^/]+)/o/(.+)$", self._delete_object, None),
            ("POST", r"^/n/([^/]+)/b/([^/]+)/u$", self._create_upload, "MultipartUpload"),
            ("PUT", r"^/n/([^/]+)/b/([^/]+)/u/(.+)$", self._upload_part, None),
            ("POST", r"^/n/([^/]+)/b/([^/]+)/u/(.+)$", self._commit_upload, None),
            ("DELETE", r"^/n/([^/]+)/b/([^/]+)/u/(.+)$", self._abort_upload, None),
            ("POST", r"^/20160918/container/repositories$", self._create_repo, "ContainerRepository"),
            ("GET", r"^/20160918/container/repositories$", self._list_repos, "ContainerRepositoryCollection"),
            ("GET", r"^/20190101/modelDeploymentShapes$", self._list_shapes, "list[ModelDeploymentShapeSummary]"),
            ("GET", r"^/20190729/services/([^/]+)/limits/([^/]+)/resourceAvailability$", self._availability,
             "ResourceAvailability"),
            ("POST", r"^/20190101/models$", self._create_model, "Model"),
            ("GET", r"^/20190101/models$", self._list_models, "list[ModelSummary]"),
            ("GET", r"^/20190101/models/([^/]+)$", self._get_model, "Model"),
            ("DELETE", r"^/20190101/models/([^/]+)$", self._delete_model, None),
            ("POST", r"^/20190101/models/([^/]+)/artifact$", self._create_artifact, None),
            ("HEAD", r"^/20190101/models/([^/]+)/artifact/content$", self._head_artifact, None),
            ("POST", r"^/20190101/models/([^/]+)/actions/exportArtifact$", self._export_artifact, None),
            ("POST", r"^/20190101/models/([^/]+)/actions/registerArtifactReference$", self._register_reference,
             None),
            ("POST", r"^/20190101/modelDeployments$", self._create_md, "ModelDeployment"),
            ("GET", r"^/20190101/modelDeployments$", self._list_mds, "list[ModelDeploymentSummary]"),
            ("GET", r"^/20190101/modelDeployments/([^/]+)$", self._get_md, "ModelDeployment"),
            ("PUT", r"^/20190101/modelDeployments/([^/]+)$", self._update_md, None),
            ("DELETE", r"^/20190101/modelDeployments/([^/]+)$", self._delete_md, None),
            ("POST", r"^/20190101/modelDeployments/([^/]+)/actions/activate$", self._activate_md, None),
            ("POST", r"^/20190101/modelDeployments/([^/]+)/actions/deactivate$", self._deactivate_md, None),
            ("GET", r"^/20190101/workRequests/([^/]+)$", self._get_wr, "WorkRequest"),
            ("GET", r"^/20190101/workRequests/([^/]+)/errors$", self._wr_errors, "list[WorkRequestError]"),
            ("GET", r"^/20190101/workRequests/([^/]+)/logs$", self._wr_logs, "list[WorkRequestLogEntry]"),
            (method, r"^/(ocid1\.datasciencemodeldeployment[^/]+)/(predict|predictWithResponseStream)(/.*)?$",
             self._invoke, None),
        ]
        for route_method, pattern, handler, response_type in routes:
            match = re.match(pattern, path)
            if match and route_method == method:
                ctx = {"query": query, "headers": headers, "body": body, "json": record.get("json"),
                       "path": path, "method": method}
                with self.lock:
                    self._advance()
                    token = headers.get("opc-retry-token")
                    if token and method == "POST":
                        answer = self._idempotent(token, path, body, functools.partial(handler, ctx, *match.groups()))
                    else:
                        answer = handler(ctx, *match.groups())
                return self._checked(answer, response_type, f"{method} {path}")
        raise ApiError(404, "NotAuthorizedOrNotFound", f"{method} {path} is not a known operation")

    def _idempotent(self, token, path, body, run):
        key = (token, path)
        digest = hashlib.sha256(body).hexdigest()
        if key in self.retry_tokens:
            seen_digest, response = self.retry_tokens[key]
            if seen_digest != digest:
                raise ApiError(409, "Conflict", "opc-retry-token was already used for a different request")
            status, headers, payload = response
            return status, dict(headers), payload
        response = run()
        if response[0] < 300:
            self.retry_tokens[key] = (digest, (response[0], dict(response[1]), response[2]))
        return response

    def _checked(self, answer: tuple, response_type: str | None, what: str) -> tuple:
        """Refuse to send a 2xx JSON answer the SDK would misread; the test then fails on the 500 and the record."""
        status, headers, payload = answer
        if response_type is None or status >= 300 or isinstance(payload, bytes) or hasattr(payload, "__next__"):
            return answer
        errors = validate_response(payload, response_type, what, service_of(what.split(' ', 1)[1]))
        if errors:
            with self.lock:
                self.response_errors.extend(errors)
            raise ApiError(500, "StandInResponseInvalid", "; ".join(errors))
        return answer

    @staticmethod
    def _body(ctx, type_name: str) -> dict:
        if ctx["json"] is None:
            raise ApiError(400, "InvalidParameter", "request body must be JSON")
        errors = validate_body(ctx["json"], type_name, service=service_of(ctx["path"]))
        if errors:
            raise ApiError(400, "InvalidParameter", "; ".join(errors))
        return ctx["json"]

    @staticmethod
    def _page(items: list, query: dict):
        start = int(query.get("page") or 0)
        limit = int(query.get("limit") or 2)  # small default page so clients must paginate
        headers = {"opc-next-page": str(start + limit)} if start + limit < len(items) else {}
        return 200, headers, items[start:start + limit]

    # --------------------------------------------------------------- work requests

    def _new_wr(self, operation: str, compartment_id: str, resource_id: str, entity_type: str, on_success,
                path: str, method: str, failure_state: str = "FAILED") -> WorkRequest:
        now = time.monotonic()
        wr = WorkRequest(_ocid("datascienceworkrequest"), operation, compartment_id, resource_id,
                         entity_type, now, now + self.lifecycle_delay, on_success)
        wr.logs.append({"message": f"{operation} accepted", "timestamp": _now()})
        fault = self._take_fault(method, path, ("fail_work_request", "needs_attention"))
        if fault:
            wr.fail_reason = ("Errors occurred while bootstrapping the Model Deployment: container did not "
                              "answer the health check" if fault.kind == "fail_work_request" else
                              "Update could not be applied; the previous configuration keeps serving")
            wr.outcome_state = failure_state if fault.kind == "fail_work_request" else "NEEDS_ATTENTION"
        self.work_requests[wr.id] = wr
        return wr

    def _advance(self) -> None:
        now = time.monotonic()
        for wr in self.work_requests.values():
            if wr.status in ("SUCCEEDED", "FAILED"):
                continue
            if now >= wr.due:
                wr.finished = _now()
                if wr.fail_reason:
                    wr.status = "FAILED"
                    wr.errors.append({"code": "InternalError", "message": wr.fail_reason, "timestamp": _now()})
                    wr.logs.append({"message": f"{wr.operation_type} failed: {wr.fail_reason}", "timestamp": _now()})
                    if wr.resource_id in self.deployments and wr.outcome_state:
                        self.deployments[wr.resource_id]["lifecycleState"] = wr.outcome_state
                        self.deployments[wr.resource_id]["lifecycleDetails"] = wr.fail_reason
                else:
                    try:
                        wr.on_success()
                        wr.status = "SUCCEEDED"
                        wr.logs.append({"message": f"{wr.operation_type} succeeded", "timestamp": _now()})
                    except ApiError as err:
                        wr.status = "FAILED"
                        wr.errors.append({"code": err.code, "message": err.message, "timestamp": _now()})
                        wr.logs.append({"message": f"{wr.operation_type} failed: {err.message}", "timestamp": _now()})
                        if wr.resource_id in self.deployments and wr.outcome_on_error:
                            self.deployments[wr.resource_id]["lifecycleState"] = wr.outcome_on_error
                            self.deployments[wr.resource_id]["lifecycleDetails"] = err.message
            elif now >= (wr.accepted + wr.due) / 2 and wr.status == "ACCEPTED":
                wr.status = "IN_PROGRESS"
                wr.logs.append({"message": f"{wr.operation_type} in progress", "timestamp": _now()})

    def _wr_json(self, wr: WorkRequest) -> dict:
        return {"id": wr.id, "operationType": wr.operation_type, "status": wr.status,
                "compartmentId": wr.compartment_id,
                "percentComplete": 100.0 if wr.status in ("SUCCEEDED", "FAILED") else 50.0,
                "resources": [{"actionType": "IN_PROGRESS" if wr.status != "SUCCEEDED" else _ACTION_DONE.get(
                                   wr.operation_type.rsplit("_", 1)[-1], "UPDATED"),
                               "entityType": wr.entity_type, "identifier": wr.resource_id}],
                "timeAccepted": _now(), **({"timeFinished": wr.finished} if wr.finished else {})}

    def _get_wr(self, ctx, wr_id):
        if wr_id not in self.work_requests:
            raise ApiError(404, "NotAuthorizedOrNotFound", f"work request {wr_id} not found")
        return 200, {}, self._wr_json(self.work_requests[wr_id])

    def _wr_errors(self, ctx, wr_id):
        return self._page(list(self.work_requests[wr_id].errors), ctx["query"])

    def _wr_logs(self, ctx, wr_id):
        return self._page(list(self.work_requests[wr_id].logs), ctx["query"])

    # --------------------------------------------------------------- OCIR, Object Storage, Artifacts

    def _ocir_token(self, ctx):
        # Signed like every request (checked before dispatch); the JWT "expires automatically and must be
        # regenerated" (https://www.ateam-oracle.com/authentication-mechanisms-for-oci-container-registry-ocir).
        lifetime = self.ocir_token_seconds
        expires = time.time() + lifetime
        claims = base64.urlsafe_b64encode(json.dumps({"sub": "standin", "exp": int(expires) + 1,
                                                      "jti": uuid.uuid4().hex}).encode())
        token = f"eyJhbGciOiJub25lIn0.{claims.decode().rstrip('=')}."
        with self.lock:
            self.ocir_login_tokens[token] = expires
        return 200, {}, {"token": token, "expires_in": lifetime}

    def ocir_login_valid(self, token: str) -> bool:
        """Whether `token` came from this stand-in's /20180419/docker/token and has not expired (no leeway)."""
        with self.lock:
            expires = self.ocir_login_tokens.get(token)
        return expires is not None and time.time() < expires

    def _namespace(self, ctx):
        return 200, {}, self.namespace

    def _check_ns(self, ns, bucket: str | None = None):
        if ns != self.namespace:
            raise ApiError(404, "NamespaceNotFound", f"namespace {ns} not found")
        if bucket is not None and self.buckets is not None and bucket not in self.buckets:
            raise ApiError(404, "BucketNotFound", f"Either the bucket named '{bucket}' does not exist in the "
                                                  f"namespace '{ns}' or you are not authorized to access it")

    def _store_object(self, bucket: str, obj: str, data: bytes) -> dict:
        self.objects[(bucket, obj)] = data
        meta = {"etag": uuid.uuid4().hex, "mtime": time.time()}
        self.object_meta[(bucket, obj)] = meta
        return meta

    def _existing(self, bucket: str, obj: str) -> bytes:
        if (bucket, obj) not in self.objects:
            raise ApiError(404, "ObjectNotFound", f"The object '{obj}' was not found in the bucket '{bucket}'")
        return self.objects[(bucket, obj)]

    def _preconditions(self, ctx, bucket: str, obj: str) -> None:
        """if-match / if-none-match as Object Storage evaluates them on writes (412 when they fail)."""
        headers = ctx["headers"]
        meta = self.object_meta.get((bucket, obj))
        if "if-none-match" in headers:
            if headers["if-none-match"] != "*":
                raise ApiError(400, "InvalidParameter", "The only valid value of if-none-match is '*'")
            if meta is not None:
                raise ApiError(412, "IfNoneMatchFailed", f"The object '{obj}' already exists")
        if "if-match" in headers and (meta is None or meta["etag"] != headers["if-match"]):
            raise ApiError(412, "IfMatchFailed", f"The If-Match header '{headers['if-match']}' does not match the "
                                                 f"ETag of object '{obj}'")

    def _object_headers(self, bucket: str, obj: str) -> dict:
        meta = self.object_meta[(bucket, obj)]
        return {"etag": meta["etag"], "last-modified": email.utils.formatdate(meta["mtime"], usegmt=True),
                "content-type": "application/octet-stream"}

    def _put_object(self, ctx, ns, bucket, obj):
        self._check_ns(ns, bucket)
        self._preconditions(ctx, bucket, obj)
        meta = self._store_object(bucket, obj, ctx["body"])
        md5 = _md5_b64(ctx["body"])
        return 200, {"etag": meta["etag"], "opc-content-md5": md5,
                     "last-modified": email.utils.formatdate(meta["mtime"], usegmt=True)}, None

    def _get_object(self, ctx, ns, bucket, obj):
        self._check_ns(ns, bucket)
        data = self._existing(bucket, obj)
        headers = self._object_headers(bucket, obj)
        wanted = ctx["headers"].get("range")
        if wanted is None:
            return 200, headers, data
        match = re.fullmatch(r"bytes=(\d*)-(\d*)", wanted)
        if not match or match.groups() == ("", ""):
            raise ApiError(400, "InvalidRange", f"Range header {wanted!r} is not bytes=<first>-<last>")
        first_text, last_text = match.groups()
        if first_text == "":  # suffix range: the last N bytes
            first, last = max(0, len(data) - int(last_text)), len(data) - 1
        else:
            first = int(first_text)
            last = min(int(last_text), len(data) - 1) if last_text else len(data) - 1
        if first >= len(data) or first > last:
            raise ApiError(416, "InvalidRange", f"Range {wanted} is not satisfiable for {len(data)} bytes")
        headers["content-range"] = f"bytes {first}-{last}/{len(data)}"
        if isinstance(data, SparseBody):
            raise ApiError(501, "StandInSummaryOnly", f"the stand-in kept only a summary of {obj}")
        return 206, headers, data[first:last + 1]

    _LIST_FIELDS = {"name", "size", "etag", "timeCreated", "md5", "timeModified", "storageTier", "archivalState"}

    def _list_objects(self, ctx, ns, bucket):
        self._check_ns(ns, bucket)
        query = ctx["query"]
        fields = [f for f in query.get("fields", "name").split(",") if f]
        if unknown := set(fields) - self._LIST_FIELDS:
            raise ApiError(400, "InvalidParameter", f"fields has unknown values {sorted(unknown)}")
        limit = int(query.get("limit") or self.list_page_size)
        prefix, start, end = query.get("prefix", ""), query.get("start", ""), query.get("end")
        names = sorted(o for (b, o) in self.objects if b == bucket and o.startswith(prefix) and o >= start
                       and (end is None or o < end))
        page, rest = names[:limit], names[limit:]
        objects = []
        for name in page:
            entry = {"name": name}
            if "size" in fields:
                entry["size"] = len(self.objects[(bucket, name)])
            if "md5" in fields:
                entry["md5"] = _md5_b64(self.objects[(bucket, name)])
            if "etag" in fields:
                entry["etag"] = self.object_meta[(bucket, name)]["etag"]
            objects.append(entry)
        return 200, {}, {"objects": objects, "prefixes": [], **({"nextStartWith": rest[0]} if rest else {})}

    def _rename_object(self, ctx, ns, bucket):
        self._check_ns(ns, bucket)
        details = self._body(ctx, "RenameObjectDetails")
        source, new = details["sourceName"], details["newName"]
        data = self._existing(bucket, source)
        if details.get("newObjIfNoneMatchETag") == "*" and (bucket, new) in self.objects:
            raise ApiError(412, "IfNoneMatchFailed", f"The object '{new}' already exists")
        self.objects[(bucket, new)] = data
        self.object_meta[(bucket, new)] = self.object_meta.pop((bucket, source))
        del self.objects[(bucket, source)]
        return 200, {}, None

    def _head_object(self, ctx, ns, bucket, obj):
        self._check_ns(ns, bucket)
        data = self._existing(bucket, obj)
        return 200, {"x-len": len(data), **self._object_headers(bucket, obj)}, b""

    def _delete_object(self, ctx, ns, bucket, obj):
        self._check_ns(ns, bucket)
        self._existing(bucket, obj)
        self._preconditions(ctx, bucket, obj)
        del self.objects[(bucket, obj)]
        self.object_meta.pop((bucket, obj), None)
        return 204, {}, None

    def _create_upload(self, ctx, ns, bucket):
        self._check_ns(ns, bucket)
        details = self._body(ctx, "CreateMultipartUploadDetails")
        upload_id = uuid.uuid4().hex
        self.uploads[upload_id] = {"bucket": bucket, "object": details["object"], "parts": {}}
        return 200, {}, {"namespace": ns, "bucket": bucket, "object": details["object"], "uploadId": upload_id,
                         "timeCreated": _now()}

    def _upload(self, ctx, bucket, obj):
        upload = self.uploads.get(ctx["query"].get("uploadId", ""))
        if upload is None or upload["bucket"] != bucket or upload["object"] != obj:
            raise ApiError(404, "NoSuchUpload", "multipart upload not found")
        return upload

    def _upload_part(self, ctx, ns, bucket, obj):
        self._check_ns(ns)
        upload = self._upload(ctx, bucket, obj)
        md5 = _md5_b64(ctx["body"])
        if "content-md5" in ctx["headers"] and ctx["headers"]["content-md5"] != md5:
            raise ApiError(400, "InvalidContentMD5", "The computed MD5 of the request body does not match Content-MD5")
        etag = uuid.uuid4().hex
        upload["parts"][int(ctx["query"]["uploadPartNum"])] = (etag, ctx["body"])
        return 200, {"etag": etag, "opc-content-md5": md5}, None

    def _commit_upload(self, ctx, ns, bucket, obj):
        self._check_ns(ns)
        upload = self._upload(ctx, bucket, obj)
        details = self._body(ctx, "CommitMultipartUploadDetails")
        chunks = []
        for part in sorted(details["partsToCommit"], key=lambda p: p["partNum"]):
            etag, chunk = upload["parts"].get(part["partNum"], (None, b""))
            if etag != part["etag"]:
                raise ApiError(400, "InvalidPart", f"part {part['partNum']} etag does not match")
            chunks.append(chunk)
        data = SparseBody.join(chunks) if any(isinstance(c, SparseBody) for c in chunks) else b"".join(chunks)
        self._store_object(bucket, obj, data)
        del self.uploads[ctx["query"]["uploadId"]]
        return 200, {"opc-multipart-md5": _md5_b64(data)}, None

    def _abort_upload(self, ctx, ns, bucket, obj):
        self._upload(ctx, bucket, obj)
        del self.uploads[ctx["query"]["uploadId"]]
        return 204, {}, None

    def _create_repo(self, ctx):
        details = self._body(ctx, "CreateContainerRepositoryDetails")
        if any(r["displayName"] == details["displayName"] for r in self.repositories.values()):
            raise ApiError(409, "NAMESPACE_CONFLICT", f"repository {details['displayName']} already exists")
        repo = {"compartmentId": details["compartmentId"], "displayName": details["displayName"],
                "id": _ocid("containerrepo"), "imageCount": 0, "isImmutable": details.get("isImmutable", False),
                "isPublic": details.get("isPublic", False), "layerCount": 0, "layersSizeInBytes": 0,
                "lifecycleState": "AVAILABLE", "timeCreated": _now(), "namespace": self.namespace,
                "billableSizeInGBs": 0, "createdBy": "ocid1.user.oc1..standin", "freeformTags": {},
                "definedTags": {}, "systemTags": {}}
        self.repositories[repo["id"]] = repo
        return 200, {}, repo

    def _list_repos(self, ctx):
        q = ctx["query"]
        items = [{k: v for k, v in r.items() if k not in ("isImmutable", "createdBy")}
                 for r in self.repositories.values()
                 if r["compartmentId"] == q.get("compartmentId")
                 and (not q.get("displayName") or r["displayName"] == q["displayName"])]
        return 200, {}, {"items": items, "repositoryCount": len(items), "imageCount": 0, "layerCount": 0,
                         "layersSizeInBytes": 0, "remainingItemsCount": 0}

    # --------------------------------------------------------------- Data Science: models

    def _list_shapes(self, ctx):
        if not ctx["query"].get("compartmentId"):
            raise ApiError(400, "MissingParameter", "compartmentId is required")
        return self._page([{"name": n, "coreCount": c, "memoryInGBs": m, "shapeSeries": s}
                           for n, c, m, s in self.shapes], ctx["query"])

    def _create_model(self, ctx):
        details = self._body(ctx, "CreateModelDetails")
        # Fields the Model response always carries ("**[Required]**" in oci/data_science/models/model.py@2.189.0);
        # the values are what a model without version set, retention or backup settings shows.
        model = {"freeformTags": {}, "definedTags": {}, **details, "id": _ocid("datasciencemodel"),
                 "lifecycleState": "ACTIVE", "lifecycleDetails": "", "timeCreated": _now(),
                 "createdBy": "ocid1.user.oc1..standin", "category": "USER", "isModelByReference": False,
                 "displayName": details.get("displayName") or "model", "modelVersionSetId": "",
                 "modelVersionSetName": "", "versionId": 0, "versionLabel": details.get("versionLabel") or "",
                 "retentionSetting": {"archiveAfterDays": 0}, "backupSetting": {"backupRegion": self.region,
                                                                                "isBackupEnabled": False},
                 "retentionOperationDetails": {"archiveState": "PENDING", "archiveStateDetails": "",
                                               "deleteState": "PENDING", "deleteStateDetails": "",
                                               "timeArchivalScheduled": _now(), "timeDeletionScheduled": _now()},
                 "backupOperationDetails": {"backupState": "PENDING", "backupStateDetails": ""}}
        self.models[model["id"]] = model
        return 200, {"etag": uuid.uuid4().hex}, model

    def _model(self, model_id) -> dict:
        model = self.models.get(model_id)
        if model is None or model["lifecycleState"] == "DELETED":
            raise ApiError(404, "NotAuthorizedOrNotFound", f"model {model_id} not found")
        return model

    def _get_model(self, ctx, model_id):
        return 200, {"etag": "x"}, self._model(model_id)

    def _list_models(self, ctx):
        q = ctx["query"]
        summary_keys = set(ds_models.ModelSummary().attribute_map.values())
        items = [{k: v for k, v in m.items() if k in summary_keys} for m in self.models.values()
                 if m["compartmentId"] == q.get("compartmentId")
                 and (not q.get("projectId") or m["projectId"] == q["projectId"])
                 and (not q.get("lifecycleState") or m["lifecycleState"] == q["lifecycleState"])
                 and m["lifecycleState"] != "DELETED"]
        return self._page(items, q)

    def _delete_model(self, ctx, model_id):
        self._model(model_id)
        for md in self.deployments.values():
            cfg = md["modelDeploymentConfigurationDetails"]["modelConfigurationDetails"]
            if cfg["modelId"] == model_id and md["lifecycleState"] != "DELETED":
                raise ApiError(409, "Conflict", f"model {model_id} is used by model deployment {md['id']}")
        self.models[model_id]["lifecycleState"] = "DELETED"
        self.artifacts.pop(model_id, None)
        return 204, {}, None

    def _create_artifact(self, ctx, model_id):
        self._model(model_id)
        if "content-length" not in ctx["headers"]:
            raise ApiError(411, "LengthRequired", "Content-Length is required")
        if model_id in self.artifacts:
            raise ApiError(409, "Conflict", f"model {model_id} already has an artifact")
        self.artifacts[model_id] = ctx["body"]
        return 204, {"etag": uuid.uuid4().hex}, None

    def _head_artifact(self, ctx, model_id):
        self._model(model_id)
        if model_id not in self.artifacts:
            raise ApiError(404, "NotAuthorizedOrNotFound", f"model {model_id} has no artifact")
        return 200, {"x-len": len(self.artifacts[model_id]), "content-type": "application/octet-stream"}, b""

    def _service_may_read(self, bucket: str) -> bool:
        return self.service_readable_buckets is None or bucket in self.service_readable_buckets

    def _export_artifact(self, ctx, model_id):
        model = self._model(model_id)
        src = self._body(ctx, "ExportModelArtifactDetails")["artifactExportDetails"]

        def finish():
            key = (src.get("sourceBucket"), src.get("sourceObjectName"))
            if not self._service_may_read(key[0]):
                raise ApiError(404, "NotAuthorizedOrNotFound", f"the Data Science service may not read bucket {key[0]}")
            if src.get("namespace") != self.namespace or key not in self.objects:
                raise ApiError(404, "ObjectNotFound", f"object {key[1]} not found in bucket {key[0]}")
            self.artifacts[model_id] = self.objects[key]

        wr = self._new_wr("EXPORT_MODEL_ARTIFACT", model["compartmentId"], model_id, "model", finish,
                          ctx["path"], "POST")
        return 202, {"opc-work-request-id": wr.id}, None

    def _referenced_objects(self, ref: dict) -> list[str]:
        prefix = (ref.get("prefix") or "").rstrip("/")
        return [name for (bucket, name) in self.objects
                if bucket == ref["bucketName"] and (not prefix or name == prefix or name.startswith(prefix + "/"))]

    def _register_reference(self, ctx, model_id):
        """registerArtifactReference: OSS prefixes become the model's artifact (model by reference)."""
        model = self._model(model_id)
        details = self._body(ctx, "RegisterModelArtifactReferenceDetails")
        if model_id in self.artifacts or model_id in self.references:
            raise ApiError(409, "Conflict", f"model {model_id} already has an artifact")
        for ref in details["modelArtifactReferences"]:
            if ref["namespace"] != self.namespace:
                raise ApiError(404, "NamespaceNotFound", f"namespace {ref['namespace']} not found")
            if (self.buckets is not None and ref["bucketName"] not in self.buckets) or \
                    not self._service_may_read(ref["bucketName"]):
                raise ApiError(404, "NotAuthorizedOrNotFound", f"bucket {ref['bucketName']} does not exist or the "
                                                               "Data Science service may not read it")
            if not self._referenced_objects(ref):
                raise ApiError(400, "InvalidParameter", f"no objects under oci://{ref['bucketName']}@"
                                                        f"{ref['namespace']}/{ref.get('prefix', '')}")
        self.references[model_id] = [dict(r) for r in details["modelArtifactReferences"]]
        model["isModelByReference"] = True
        return 204, {}, None

    def mounted_files(self, model_id: str) -> dict[str, Any]:
        """What the container sees under MOUNT: container path -> a reader of its bytes (None for a byte body the
        stand-in kept only a summary of). Zip artifacts are unzipped there; referenced objects keep their names."""
        files: dict[str, Any] = {}
        if model_id in self.references:
            for ref in self.references[model_id]:
                for name in self._referenced_objects(ref):
                    data = self.objects[(ref["bucketName"], name)]
                    files[f"{MOUNT}/{name}"] = (lambda d=data: None if isinstance(d, SparseBody) else d)
            return files
        data = self.artifacts.get(model_id, b"")
        if isinstance(data, bytes) and data:
            with contextlib.suppress(zipfile.BadZipFile):
                archive = zipfile.ZipFile(io.BytesIO(data))
                for name in archive.namelist():
                    if not name.endswith("/"):
                        files[f"{MOUNT}/{name}"] = functools.partial(archive.read, name)
        return files

    def _image_pull_problem(self, env: dict) -> str | None:
        """The service pulls `image@imageDigest` from the region's OCIR (mod-dep-byoc.htm: "the full path to the
        Oracle Container Registry"); a manifest that is not there fails the bootstrap."""
        if self.registry_url is None:
            return None
        image, digest = env.get("image") or "", env.get("imageDigest") or ""
        host, _, rest = image.partition("/")
        region_key = {long: short for short, long in oci_regions.REGIONS_SHORT_NAMES.items()}.get(self.region)
        if host != f"{region_key}.ocir.io":
            return f"Errors occurred while bootstrapping the Model Deployment: image {image} is not in {region_key}.ocir.io"
        path = rest.split("@", 1)[0]
        if ":" in path.rsplit("/", 1)[-1]:
            path = path.rsplit(":", 1)[0]  # the tag; the pull is by digest
        headers = {"Accept": ", ".join(_MANIFEST_TYPES)}
        if self.registry_authorization is not None:
            headers["Authorization"] = self.registry_authorization(path)
        request = urllib.request.Request(f"{self.registry_url}/v2/{path}/manifests/{digest}", method="HEAD",
                                         headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10):
                return None
        except urllib.error.HTTPError as exc:
            return (f"Errors occurred while bootstrapping the Model Deployment: image {image}@{digest} could not be "
                    f"pulled (registry answered {exc.code})")
        except OSError as exc:
            return f"Errors occurred while bootstrapping the Model Deployment: image {image} could not be pulled ({exc})"

    def _artifact_volume(self, model_id: str) -> tuple[int, list[str]]:
        """(bytes the volume holds for the model's artifact, paths the container sees under the mount)."""
        if model_id in self.references:
            names = [n for ref in self.references[model_id] for n in self._referenced_objects(ref)]
            return sum(len(self.objects[(ref["bucketName"], n)]) for ref in self.references[model_id]
                       for n in self._referenced_objects(ref)), [f"{MOUNT}/{n}" for n in names]
        data = self.artifacts.get(model_id, b"")
        paths = []
        if isinstance(data, bytes):
            try:
                with zipfile.ZipFile(io.BytesIO(data)) as archive:
                    paths = [f"{MOUNT}/{n}" for n in archive.namelist()]
            except zipfile.BadZipFile:
                paths = []
        return 2 * len(data), paths  # downloaded, then unzipped beside itself

    def _bootstrap_problem(self, md: dict) -> str | None:
        """Why the container would not come up healthy, as the service reports it (llama2 README Troubleshooting)."""
        cfg = md["modelDeploymentConfigurationDetails"]
        model_id = cfg["modelConfigurationDetails"]["modelId"]
        env = cfg.get("environmentConfigurationDetails") or {}
        variables = env.get("environmentVariables") or {}
        for ref in self.references.get(model_id, []):
            if not self._service_may_read(ref["bucketName"]) or not self._referenced_objects(ref):
                return (f"Errors occurred while bootstrapping the Model Deployment: the model artifact at "
                        f"oci://{ref['bucketName']}@{ref['namespace']}/{ref.get('prefix', '')} cannot be read")
        volume, paths = self._artifact_volume(model_id)
        image = self.image_sizes.get(env.get("imageDigest") or "")
        if image is not None:
            storage = int(variables.get("STORAGE_SIZE_IN_GB", 0) or 0) * 10**9
            if storage < image + volume:
                return (f"Errors occurred while bootstrapping the Model Deployment: the boot volume "
                        f"(STORAGE_SIZE_IN_GB={variables.get('STORAGE_SIZE_IN_GB')}) cannot hold the image "
                        f"({image / 1e9:.0f} GB) and the artifact ({volume / 1e9:.0f} GB)")
        timeout = variables.get("DEPLOYMENT_TIMEOUT_IN_MINUTES")
        if timeout and self.bootstrap_minutes > float(timeout):
            return f"Workflow timed out. Maximum runtime was: {timeout} minutes."
        pull = self._image_pull_problem(env)
        if pull:
            return pull
        if self.container_check is not None:
            problem = self.container_check(md, paths)
            if problem:
                return problem
        container = self.container_for(md)
        if hasattr(container, "load"):
            loaded = container.load(self, md)
            if isinstance(loaded, str):
                return ("Errors occurred while bootstrapping the Model Deployment: the container did not answer "
                        f"its health check: {loaded}")
        return None

    # --------------------------------------------------------------- Data Science: deployments

    def _service_checks(self, config: dict, *, creating: bool) -> None:
        model_cfg = config.get("modelConfigurationDetails") or {}
        if "modelId" in model_cfg:
            model = self._model(model_cfg["modelId"])
            if model["id"] not in self.artifacts and model["id"] not in self.references:
                raise ApiError(400, "InvalidParameter", f"model {model['id']} has no artifact")
        shape = (model_cfg.get("instanceConfiguration") or {}).get("instanceShapeName")
        if shape and shape not in {s[0] for s in self.shapes}:
            raise ApiError(400, "InvalidParameter", f"shape {shape} is not available")
        policy = model_cfg.get("scalingPolicy") or {}
        if policy.get("policyType") == "AUTOSCALING":
            # oci/data_science/models/auto_scaling_policy.py, scaling_configuration.py @2.189.0
            if policy.get("coolDownInSeconds", 300) < 300:
                raise ApiError(400, "InvalidParameter", "coolDownInSeconds must be at least 300")
            for details in policy["autoScalingPolicies"]:
                lo, hi = details["minimumInstanceCount"], details["maximumInstanceCount"]
                if not 1 <= lo <= details["initialInstanceCount"] <= hi:
                    raise ApiError(400, "InvalidParameter", "instance counts must satisfy 1 <= min <= initial <= max")
                for rule in details["rules"]:
                    for side in ("scaleInConfiguration", "scaleOutConfiguration"):
                        pending = rule[side].get("pendingDuration", "PT3M")
                        minutes = re.fullmatch(r"PT(\d+)M", pending)
                        if pending != "PT1H" and not (minutes and 3 <= int(minutes.group(1)) <= 60):
                            raise ApiError(400, "InvalidParameter", f"pendingDuration {pending} is not PT3M..PT1H")
        env = config.get("environmentConfigurationDetails")
        if not env:
            return
        if env.get("environmentConfigurationType") == "OCIR_CONTAINER" and creating and not env.get("image"):
            raise ApiError(400, "InvalidParameter", "image is required for OCIR_CONTAINER")
        for port_key in ("serverPort", "healthCheckPort"):
            port = env.get(port_key)
            if port is not None and (not 1024 <= port <= 65535 or port in FORBIDDEN_PORTS):
                raise ApiError(400, "InvalidParameter", f"{port_key} {port} is not allowed")
        cmd_size = sum(len(json.dumps(env.get(k) or [], separators=(",", ":")).encode()) for k in ("cmd", "entrypoint"))
        if cmd_size >= 2048:
            raise ApiError(400, "InvalidParameter", "cmd and entrypoint exceed 2048 bytes")
        variables = env.get("environmentVariables") or {}
        if len(json.dumps(variables, separators=(",", ":")).encode()) >= 2048:
            raise ApiError(400, "InvalidParameter", "environmentVariables exceed 2048 bytes")
        for key in variables:
            if (not re.match(r"^[A-Za-z][A-Za-z0-9_]*$", key) or len(key) < 2 or len(key) >= 32
                    or key.endswith("_") or key in RESERVED_ENV):
                raise ApiError(400, "InvalidParameter", f"environment variable key {key} is not allowed")
        endpoints = env.get("customHttpEndpoints") or []
        if len(endpoints) > 15:  # "Up to 15 suffixes" (multiple_inference_endpoints/README.md)
            raise ApiError(400, "InvalidParameter", f"{len(endpoints)} customHttpEndpoints; at most 15 are allowed")
        if env.get("imageDigest") and not re.match(r"^sha256:[0-9a-f]{64}$", env["imageDigest"]):
            raise ApiError(400, "InvalidParameter", "imageDigest is malformed")

    def _md(self, md_id) -> dict:
        md = self.deployments.get(md_id)
        if md is None or md["lifecycleState"] == "DELETED":
            raise ApiError(404, "NotAuthorizedOrNotFound", f"model deployment {md_id} not found")
        return md

    def _gpus_in_use(self, limit: str) -> int:
        used = 0
        for md in self.deployments.values():
            if md["lifecycleState"] in ("DELETED", "FAILED", "INACTIVE"):
                continue
            name, gpus = self._shape_limit(md["modelDeploymentConfigurationDetails"])
            if name == limit:
                used += gpus
        return used

    @staticmethod
    def _shape_limit(config: dict) -> tuple[str | None, int]:
        model_cfg = config.get("modelConfigurationDetails") or {}
        shape = (model_cfg.get("instanceConfiguration") or {}).get("instanceShapeName")
        name, per_instance = SHAPE_LIMITS.get(shape, (None, 0))
        policy = model_cfg.get("scalingPolicy") or {}
        if policy.get("policyType") == "AUTOSCALING":
            count = max(p.get("maximumInstanceCount", 1) for p in policy.get("autoScalingPolicies") or [{}])
        else:
            count = policy.get("instanceCount", 1)
        return name, per_instance * count

    def _availability(self, ctx, service, limit):
        if service != "data-science":
            raise ApiError(404, "NotAuthorizedOrNotFound", f"service {service} not found")
        if not ctx["query"].get("compartmentId"):
            raise ApiError(400, "MissingParameter", "compartmentId is required")
        if limit not in {name for name, _ in SHAPE_LIMITS.values()}:
            raise ApiError(404, "NotAuthorizedOrNotFound", f"limit {limit} not found for service {service}")
        used = self._gpus_in_use(limit)
        total = self.quotas.get(limit, 1000)
        return 200, {}, {"used": used, "available": max(0, total - used), "fractionalUsage": float(used),
                         "fractionalAvailability": float(max(0, total - used)), "effectiveQuotaValue": float(total)}

    def _create_md(self, ctx):
        details = self._body(ctx, "CreateModelDeploymentDetails")
        self._service_checks(details["modelDeploymentConfigurationDetails"], creating=True)
        limit, gpus = self._shape_limit(details["modelDeploymentConfigurationDetails"])
        if limit in self.quotas and self._gpus_in_use(limit) + gpus > self.quotas[limit]:
            raise ApiError(400, "LimitExceeded", f"the request needs {gpus} GPU(s) of {limit}; "
                                                 f"{self.quotas[limit] - self._gpus_in_use(limit)} available")
        md_id = _ocid("datasciencemodeldeployment")
        details = json.loads(json.dumps(details))
        env = details["modelDeploymentConfigurationDetails"].get("environmentConfigurationDetails")
        if env is not None:
            # What the service fills in and echoes back: empty lists for an unset cmd/entrypoint/endpoints, and the
            # variables it injects itself as defaultEnvironmentVariables (OcirModelDeploymentEnvironment...Details).
            for key in ("cmd", "entrypoint", "customHttpEndpoints"):
                env.setdefault(key, [])
            env.setdefault("environmentVariables", {})
            env["defaultEnvironmentVariables"] = {"MODEL_DEPLOYMENT_OCID": md_id, "TENANCY_OCID": "ocid1.tenancy.oc1..x"}
        md = {**details, "id": md_id, "lifecycleState": "CREATING", "timeCreated": _now(),
              "createdBy": "ocid1.user.oc1..standin", "modelDeploymentUrl": f"{self.url}/{md_id}",
              "modelDeploymentSystemData": {"systemInfraType": "INSTANCE_POOL", "currentInstanceCount": 0}}
        self.deployments[md_id] = md

        def finish():
            problem = self._bootstrap_problem(md)
            if problem:
                raise ApiError(500, "InternalError", problem)
            md["lifecycleState"] = "ACTIVE"
            count = details["modelDeploymentConfigurationDetails"]["modelConfigurationDetails"].get(
                "scalingPolicy", {}).get("instanceCount", 1)
            md["modelDeploymentSystemData"]["currentInstanceCount"] = count

        wr = self._new_wr("MODEL_DEPLOYMENT_CREATE", details["compartmentId"], md_id, "modelDeployment", finish,
                          ctx["path"], "POST")
        wr.outcome_on_error = "FAILED"
        return 200, {"opc-work-request-id": wr.id, "etag": uuid.uuid4().hex}, md

    def _get_md(self, ctx, md_id):
        return 200, {"etag": "x"}, self._md(md_id)

    def _list_mds(self, ctx):
        q = ctx["query"]
        summary_keys = set(ds_models.ModelDeploymentSummary().attribute_map.values())
        items = [{k: v for k, v in d.items() if k in summary_keys} for d in self.deployments.values()
                 if d["compartmentId"] == q.get("compartmentId")
                 and (not q.get("projectId") or d["projectId"] == q["projectId"])
                 and d["lifecycleState"] != "DELETED"]
        return self._page(items, q)

    @staticmethod
    def _groups_changed(md: dict, details: dict) -> list[str]:
        """Option groups an update changes (values compared to the deployment's, None/[]/{} alike)."""
        current = md["modelDeploymentConfigurationDetails"]
        config = details.get("modelDeploymentConfigurationDetails") or {}
        model_now, model_new = current.get("modelConfigurationDetails") or {}, config.get("modelConfigurationDetails") or {}
        env_now, env_new = current.get("environmentConfigurationDetails") or {}, \
            config.get("environmentConfigurationDetails") or {}

        def differs(now: dict, new: dict, keys) -> bool:
            return any(k in new and new[k] is not None and _same_value(now.get(k)) != _same_value(new[k]) for k in keys)

        groups = []
        if differs(env_now, env_new, [k for k in env_new if k != "environmentConfigurationType"]):
            groups.append("environment")
        if differs(model_now, model_new, ("modelId", "instanceConfiguration", "scalingPolicy")):
            groups.append("model")
        if differs(model_now, model_new, ("bandwidthMbps", "maximumBandwidthMbps")):
            groups.append("load balancer")
        if "categoryLogDetails" in details and details["categoryLogDetails"] is not None and \
                _same_value(md.get("categoryLogDetails")) != _same_value(details["categoryLogDetails"]):
            groups.append("logs")
        return groups

    def _update_md(self, ctx, md_id):
        md = self._md(md_id)
        details = self._body(ctx, "UpdateModelDeploymentDetails")
        state = md["lifecycleState"]
        if state not in ("ACTIVE", "NEEDS_ATTENTION", "INACTIVE"):
            raise ApiError(409, "IncorrectState", f"model deployment {md_id} is {state}; it cannot be updated now")
        config = details.get("modelDeploymentConfigurationDetails") or {}
        if state != "INACTIVE":
            # While ACTIVE: model/shape/count, the load balancer, the logs, or the container environment, each
            # "independently" (update_model_deployment docstring, oci 2.189.0; model-dep-edit.htm; MIE samples).
            bad = set(config.get("modelConfigurationDetails") or {}) - ZERO_DOWNTIME_FIELDS
            if bad:
                raise ApiError(400, "InvalidParameter", f"{sorted(bad)} can only be updated while INACTIVE")
            groups = self._groups_changed(md, details)
            if len(groups) > 1:
                raise ApiError(400, "InvalidParameter", f"while {state}, update one option group at a time; this "
                                                        f"request changes {', '.join(groups)}")
        self._service_checks(config, creating=False)
        md["lifecycleState"] = "UPDATING"

        def finish():
            candidate = json.loads(json.dumps(md))
            current = candidate["modelDeploymentConfigurationDetails"]
            current["modelConfigurationDetails"].update(
                {k: v for k, v in (config.get("modelConfigurationDetails") or {}).items() if v is not None})
            if config.get("environmentConfigurationDetails"):
                current["environmentConfigurationDetails"].update(
                    {k: v for k, v in config["environmentConfigurationDetails"].items() if v is not None})
            # A rolling update boots new instances on the new configuration; the old ones serve until they are up.
            problem = self._bootstrap_problem(candidate) if state != "INACTIVE" else None
            if problem:
                md["lifecycleState"] = state
                raise ApiError(500, "InternalError", problem)
            md["modelDeploymentConfigurationDetails"] = current
            for key in ("displayName", "description", "freeformTags", "categoryLogDetails"):
                if details.get(key) is not None:
                    md[key] = details[key]
            md["lifecycleState"] = "INACTIVE" if state == "INACTIVE" else "ACTIVE"

        wr = self._new_wr("MODEL_DEPLOYMENT_UPDATE", md["compartmentId"], md_id, "modelDeployment", finish,
                          ctx["path"], "PUT")
        wr.outcome_on_error = "NEEDS_ATTENTION"
        if wr.outcome_state == "FAILED":
            wr.outcome_state = "NEEDS_ATTENTION"  # a failed update leaves the old configuration serving
        return 202, {"opc-work-request-id": wr.id}, None

    def _transition(self, ctx, md_id, allowed: set, operation: str, final: str):
        md = self._md(md_id)
        if md["lifecycleState"] not in allowed:
            raise ApiError(409, "IncorrectState", f"model deployment {md_id} is {md['lifecycleState']}; "
                                                  f"{operation} needs one of {sorted(allowed)}")
        md["lifecycleState"] = "DELETING" if final == "DELETED" else "UPDATING"

        def finish():
            problem = self._bootstrap_problem(md) if final == "ACTIVE" else None
            if problem:
                raise ApiError(500, "InternalError", problem)
            md["lifecycleState"] = final

        wr = self._new_wr(operation, md["compartmentId"], md_id, "modelDeployment", finish, ctx["path"],
                          ctx["method"])
        wr.outcome_on_error = "FAILED"
        return 202, {"opc-work-request-id": wr.id}, None

    def _activate_md(self, ctx, md_id):
        return self._transition(ctx, md_id, {"INACTIVE"}, "MODEL_DEPLOYMENT_ACTIVATE", "ACTIVE")

    def _deactivate_md(self, ctx, md_id):
        return self._transition(ctx, md_id, {"ACTIVE", "NEEDS_ATTENTION"}, "MODEL_DEPLOYMENT_DEACTIVATE", "INACTIVE")

    def _delete_md(self, ctx, md_id):
        # ADS deletes only from these states (ads/model/service/oci_datascience_model_deployment.py@2.15.2 delete).
        return self._transition(ctx, md_id, {"ACTIVE", "INACTIVE", "FAILED"}, "MODEL_DEPLOYMENT_DELETE", "DELETED")

    # --------------------------------------------------------------- inference endpoint

    def _active_md_for_predict(self, md_id) -> dict:
        md = self._md(md_id)
        if md["lifecycleState"] not in ("ACTIVE", "UPDATING", "NEEDS_ATTENTION"):
            raise ApiError(404, "NotAuthorizedOrNotFound", f"model deployment {md_id} is {md['lifecycleState']}")
        return md

    @staticmethod
    def _suffix_registered(suffix: str, method: str, endpoints: list[dict]) -> bool:
        """customHttpEndpoints matching, `{}` standing for one path segment (multiple_inference_endpoints/README.md)."""
        for endpoint in endpoints:
            pattern = "^" + re.escape(endpoint["endpointUriSuffix"]).replace(r"\{\}", "[^/]+") + "$"
            if re.match(pattern, suffix) and method in endpoint["httpMethods"]:
                return True
        return False

    def _invoke(self, ctx, md_id, prefix, suffix):
        """The service router: /predict -> MODEL_DEPLOY_PREDICT_ENDPOINT, /predict/<suffix> -> <suffix> when
        registered; the prefix is stripped before the container sees the path (multiple_inference_endpoints)."""
        md = self._active_md_for_predict(md_id)
        env = md["modelDeploymentConfigurationDetails"].get("environmentConfigurationDetails") or {}
        variables = env.get("environmentVariables") or {}
        if suffix:
            allowed = env.get("customHttpEndpoints") or []
            openai = (env.get("predictApiSpecification") or "").lower() == "openai"
            if not (self._suffix_registered(suffix, ctx["method"], allowed)
                    or (openai and suffix in OPENAI_ALLOWLIST and ctx["method"] in ("GET", "POST"))):
                raise ApiError(404, "NotAuthorizedOrNotFound", f"{ctx['method']} {suffix} is not an inference endpoint "
                                                               f"of model deployment {md_id}")
            path = suffix
        else:
            if ctx["method"] != "POST":
                raise ApiError(405, "MethodNotAllowed", "Method not allowed.")
            path = variables.get("MODEL_DEPLOY_PREDICT_ENDPOINT", "/predict")
        if "content-length" not in ctx["headers"] and ctx["method"] == "POST":
            raise ApiError(411, "LengthRequired", "Missing content length header.")
        if len(ctx["body"]) > 10 * 1024 * 1024:
            raise ApiError(413, "PayloadTooLarge", "The payload size limit is 10 MB.")
        container = self.container_for(md)
        if hasattr(container, "load"):
            container = container.load(self, md)
            if isinstance(container, str):
                raise ApiError(503, "ServiceUnavailable", f"the model server is not running: {container}")
        status, payload = container.answer(ctx["method"], path, ctx["json"])
        if prefix == "predict":
            if hasattr(payload, "__next__"):
                payload = "".join(c for c in payload if isinstance(c, str)).encode()
                return status, {"content-type": "text/event-stream"}, payload
            return status, {}, payload
        if not hasattr(payload, "__next__"):
            if status >= 400:
                return status, {}, payload
            # model-dep-response-streaming-endpoint.htm: 409 when the container answers without streaming.
            raise ApiError(409, "ExternalServerIncorrectState", "Unexpected nonstreaming response detected from the "
                                                                "deployed model. Check if the inference server returns "
                                                                "the streaming response.")
        fault = self._take_fault(ctx["method"], ctx["path"], ("stream_failure",))
        if fault:
            payload = _cut_short(payload, fault.delay)
        return status, {}, payload

    def container_for(self, md: dict) -> Any:
        env = md["modelDeploymentConfigurationDetails"].get("environmentConfigurationDetails") or {}
        image = (env.get("image") or "").split("@", 1)[0].rsplit(":", 1)[0]
        return self.containers.get(image, self.default_container)


@dataclass
class StreamFailure:
    """What the service appends as the StreamFailure trailer when a stream breaks after the 200 went out."""

    error_code: str = "RequestTimeout"
    http_code: int = 408
    message: str = "The model server did not finish the response in time."

    def as_value(self) -> dict:
        return {"ErrorCode": self.error_code, "HttpCode": self.http_code, "Message": self.message}


def _same_value(value: Any) -> Any:
    if value in (None, [], {}, ""):
        return None
    if isinstance(value, dict):
        kept = {k: _same_value(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v is not None} or None
    if isinstance(value, list):
        return sorted((_same_value(v) for v in value), key=repr)
    return value


def _cut_short(events, after: float):
    kept = int(after) if after else 1
    for i, event in enumerate(events):
        if i >= kept:
            yield StreamFailure()
            return
        yield event


# Paths `predictApiSpecification: openai` allowlists (oracle-samples ...supported_endpoints/frameworks/openai/README.md).
OPENAI_ALLOWLIST = frozenset({"/v1/models", "/v1/completions", "/v1/chat/completions", "/v1/embeddings",
                              "/v1/responses", "/tokenize", "/detokenize", "/version", "/metrics", "/generate",
                              "/generate_stream", "/info", "/invocations"})


@dataclass
class TritonContainer:
    """What tritonserver with the TensorRT-LLM ensemble answers (server:docs/protocol/extension_generate.md).

    A decoupled (streaming) model refuses /generate ("generate expects model to produce exactly 1 response",
    shared/reference/trtllm_triton.md pain point 6); /generate_stream answers SSE either way.
    """

    decoupled: bool = True
    models: tuple[str, ...] = ("ensemble", "tensorrt_llm_bls")

    def answer(self, method: str, path: str, body: Any):
        if path == "/v2/health/ready" and method == "GET":
            return 200, b""
        match = re.fullmatch(r"/v2/models/([^/]+)/(generate|generate_stream|config)", path)
        if not match or match.group(1) not in self.models:
            return 404, {"error": f"no route {path}"}
        model, action = match.groups()
        if action == "config":
            if method != "GET":
                return 405, {"error": "method not allowed"}
            return 200, {"name": model, "platform": "ensemble", "max_batch_size": 64,
                         "input": [{"name": "text_input", "data_type": "TYPE_STRING"},
                                   {"name": "max_tokens", "data_type": "TYPE_INT32"},
                                   {"name": "stream", "data_type": "TYPE_BOOL"}],
                         "output": [{"name": "text_output", "data_type": "TYPE_STRING"}],
                         "model_transaction_policy": {"decoupled": self.decoupled}}
        prompt = (body or {}).get("text_input", "")
        if action == "generate":
            if self.decoupled:
                return 400, {"error": "generate expects model to produce exactly 1 response, use generate stream "
                                      "for model with decoupled transaction policy"}
            return 200, {"model_name": model, "model_version": "1", "text_output": f"echo: {prompt}"}
        # A model that is not decoupled sends its one response as one event; a decoupled one, token by token.
        words = ["echo:"] + prompt.split() if self.decoupled else [f"echo: {prompt}"]

        def events():
            for i, word in enumerate(words):
                yield "data: " + json.dumps({"model_name": model, "text_output": (" " if i else "") + word}) + "\n\n"

        return 200, events()


@dataclass
class OpenAiContainer:
    """An OpenAI-compatible server (trtllm-serve: /v1/completions, /v1/chat/completions, /v1/models, /health,
    /metrics; shared/reference/2026-update.md). `"stream": true` answers SSE ending in `data: [DONE]`."""

    model: str = "served-model"

    def answer(self, method: str, path: str, body: Any):
        if path == "/health" and method == "GET":
            return 200, b""
        if path == "/v1/models" and method == "GET":
            return 200, {"object": "list", "data": [{"id": self.model, "object": "model"}]}
        if path == "/metrics" and method == "GET":
            return 200, b"# HELP requests_total\n"
        if path not in ("/v1/completions", "/v1/chat/completions") or method != "POST":
            return 404, {"error": f"no route {path}"}
        body = body or {}
        prompt = body.get("prompt") or " ".join(m.get("content", "") for m in body.get("messages", []))
        words = ["echo:"] + str(prompt).split()
        chat = path.endswith("chat/completions")
        if not body.get("stream"):
            text = " ".join(words)
            choice = {"index": 0, "message": {"role": "assistant", "content": text}} if chat else {"index": 0,
                                                                                                  "text": text}
            return 200, {"id": "cmpl-1", "object": "chat.completion" if chat else "text_completion",
                         "choices": [choice]}

        def events():
            for i, word in enumerate(words):
                piece = (" " if i else "") + word
                choice = {"index": 0, "delta": {"content": piece}} if chat else {"index": 0, "text": piece}
                yield "data: " + json.dumps({"id": "cmpl-1", "choices": [choice]}) + "\n\n"
            yield "data: [DONE]\n\n"

        return 200, events()


# Generated text: the ids of this filler, cycled, so a benchmark gets exactly max_tokens tokens of real vocabulary.
_FILLER = " the quick brown fox jumps over the lazy dog"
_PYTHON_TYPES = {"TYPE_STRING": (str,), "TYPE_BOOL": (bool,), "TYPE_FP16": (int, float), "TYPE_FP32": (int, float),
                 "TYPE_FP64": (int, float), "TYPE_BF16": (int, float)}


@dataclass(frozen=True)
class DeploymentLaunch:
    """What a serving container sees of a deployment: the model it mounts, its argv (ENTRYPOINT + CMD, Docker
    semantics per the SDK's OcirModelDeploymentEnvironmentConfigurationDetails docstrings) and its environment;
    `key` says when two loads are the same one."""

    model_id: str
    cmd: list[str]
    env: dict[str, Any]

    @classmethod
    def of(cls, md: dict) -> DeploymentLaunch:
        config = md["modelDeploymentConfigurationDetails"]
        env = config.get("environmentConfigurationDetails") or {}
        return cls(model_id=config["modelConfigurationDetails"]["modelId"],
                   cmd=list(env.get("entrypoint") or []) + list(env.get("cmd") or []), env=env)

    @property
    def key(self) -> str:
        return json.dumps([self.model_id, self.cmd, self.env.get("environmentVariables")])


class _ContainerFiles:
    """The container's view of the model artifact: MOUNT as the service mounts it, plus the serving root the image's
    launcher links together (`--serving-root` with `--link NAME=TARGET`, trtllm_oci/serving/launch.py)."""

    def __init__(self, mounted: dict[str, Any], serving_root: str | None, links: dict[str, str]):
        self.mounted, self.serving_root, self.links = mounted, serving_root, links

    def real(self, path: str) -> str:
        path = path.rstrip("/")
        if self.serving_root:
            for name, target in self.links.items():
                link = f"{self.serving_root.rstrip('/')}/{name}"
                if path == link or path.startswith(link + "/"):
                    return target.rstrip("/") + path[len(link):]
        return path

    def exists(self, path: str) -> bool:
        real = self.real(path)
        return real in self.mounted or any(f.startswith(real + "/") for f in self.mounted)

    def read(self, path: str) -> bytes | None:
        reader = self.mounted.get(self.real(path))
        return reader() if reader is not None else None

    def children(self, path: str) -> set[str]:
        real = self.real(path) + "/"
        return {f[len(real):].split("/", 1)[0] for f in self.mounted if f.startswith(real)}


@dataclass
class _LoadedRepository:
    """A model repository tritonserver loaded, answering the generate extension for what its configs declare."""

    configs: dict[str, Any]  # model name -> tritonclient model_config_pb2.ModelConfig
    tokenizer: Any  # tokenizers.Tokenizer of the preprocessing model's tokenizer_dir

    def _decoupled(self, model: str) -> bool:
        config = self.configs[model]
        steps = [s.model_name for s in config.ensemble_scheduling.step] or [model]
        return any(self.configs[m].model_transaction_policy.decoupled for m in steps if m in self.configs)

    def _exclude_input(self, body: dict) -> bool:
        if "exclude_input_in_output" in body:
            return bool(body["exclude_input_in_output"])
        for config in self.configs.values():
            if "exclude_input_in_output" in config.parameters:
                return config.parameters["exclude_input_in_output"].string_value.lower() == "true"
        return False

    def answer(self, method: str, path: str, body: Any):
        from google.protobuf import json_format

        if path == "/v2/health/ready" and method == "GET":
            return 200, b""
        match = re.fullmatch(r"/v2/models/([^/]+)/(generate|generate_stream|config)", path)
        if not match:
            return 404, {"error": f"Not Found: {path}"}
        model, action = match.groups()
        if model not in self.configs:
            return 400, {"error": f"Request for unknown model: '{model}' is not found"}
        config = self.configs[model]
        if action == "config":
            if method != "GET":
                return 405, {"error": "method not allowed"}
            return 200, json_format.MessageToDict(config, preserving_proto_field_name=True)
        if method != "POST":
            return 405, {"error": "method not allowed"}
        problem = self._request_problem(model, config, body)
        if problem:
            return 400, {"error": problem}
        if action == "generate" and self._decoupled(model):
            return 400, {"error": "generate expects model to produce exactly 1 response, use generate stream for "
                                  "model with decoupled transaction policy"}
        return self._generate(model, config, body, stream=action == "generate_stream")

    def _request_problem(self, model: str, config: Any, body: Any) -> str | None:
        """The generate extension's request rules: `text_input` a string; keys naming the model's inputs become
        tensors of their declared type; the others (and `parameters`) become request parameters, which are only
        strings, numbers or booleans (extension_generate.md, "Any additional properties ... are passed either as
        parameters or tensors based on model specification"). Inputs without `optional: true` are required
        (model_configuration.md)."""
        from tritonclient.grpc import model_config_pb2 as mc

        if not isinstance(body, dict):
            return "the request body must be a JSON object ($generate_request)"
        if not isinstance(body.get("text_input"), str):
            return "text_input must be a string"
        inputs = {i.name: i for i in config.input}
        for key, value in body.items():
            if key == "parameters":
                if not isinstance(value, dict) or any(isinstance(v, dict | list) or v is None for v in value.values()):
                    return "parameters must be an object of string, number or boolean values"
            elif key in inputs:
                dtype = mc.DataType.Name(inputs[key].data_type)
                allowed = _PYTHON_TYPES.get(dtype, (int,))  # the integer types
                if isinstance(value, bool) != (dtype == "TYPE_BOOL") or not isinstance(value, allowed):
                    return f"input '{key}' of model '{model}' is {dtype}; got {json.dumps(value)}"
            elif isinstance(value, dict | list) or value is None:
                return f"'{key}' is not an input of model '{model}' and a parameter must be a string, number or boolean"
        missing = sorted(n for n, i in inputs.items() if not i.optional and n not in body)
        if missing:
            return f"model '{model}' requires input(s) {missing}"
        return None

    def _generate(self, model: str, config: Any, body: dict, *, stream: bool):
        """Exactly max_tokens tokens (this model never stops early): the filler's ids, decoded token by token.
        num_input_tokens / num_output_tokens come back only where the model declares them and the request asks."""
        outputs = {o.name for o in config.output}
        prompt, n = body["text_input"], int(body.get("max_tokens", 16))
        filler = self.tokenizer.encode(_FILLER, add_special_tokens=False).ids
        ids = [filler[i % len(filler)] for i in range(n)]
        pieces = [self.tokenizer.decode(ids[:i + 1])[len(self.tokenizer.decode(ids[:i])):] for i in range(n)]
        counts: dict[str, int] = {}
        if "num_input_tokens" in outputs and body.get("return_num_input_tokens") is True:
            counts["num_input_tokens"] = len(self.tokenizer.encode(prompt).ids)
        count_output = "num_output_tokens" in outputs and body.get("return_num_output_tokens") is True
        head = "" if self._exclude_input(body) else prompt
        if not stream:
            answer = {"model_name": model, "model_version": "1", "text_output": head + "".join(pieces), **counts}
            if count_output:
                answer["num_output_tokens"] = n
            return 200, answer
        decoupled = self._decoupled(model)
        events = [pieces] if not decoupled else [[p] for p in pieces]

        def sse():
            for group in events:
                event = {"model_name": model, "model_version": "1", "text_output": "".join(group), **counts}
                if count_output:
                    event["num_output_tokens"] = len(group)  # this response's tokens
                yield "data: " + json.dumps(event) + "\n\n"

        return 200, sse()


@dataclass
class TritonRepositoryContainer:
    """The serving image as it starts in a Model Deployment (TEST CODE): the image's launcher reads the deployment's
    cmd (trtllm_oci/serving/launch.py parse_args: --model-repository, --world-size, --serving-root, --link), links its
    serving root, and tritonserver loads that model repository from the mounted artifact. What it answers follows the
    repository's own configs, so a repository that would not load fails the bootstrap instead of echoing.

    A repository does not load (tritonserver or a backend refuses it) when:
    - a --link target is missing (launch.py build_serving_root);
    - a config.pbtxt does not parse as a ModelConfig, or an ensemble step names a model the repository lacks;
    - a string parameter names a path under the artifact mount or the serving root that does not exist
      (pre/postprocessing tokenizer_dir, tensorrt_llm gpt_model_path, the reference model's model_dir);
    - a `tensorrtllm` model's engine config.json has another world size than the launcher's --world-size, or a
      rank's rank{r}.engine is missing (TensorRT-LLM loads one engine per rank).
    """

    _loaded: dict[str, Any] = field(default_factory=dict)

    def load(self, standin: OciStandIn, md: dict) -> _LoadedRepository | str:
        from google.protobuf import text_format
        from tokenizers import Tokenizer
        from tritonclient.grpc import model_config_pb2 as mc

        from trtllm_oci.serving.launch import parse_args

        config = md["modelDeploymentConfigurationDetails"]
        model_id = config["modelConfigurationDetails"]["modelId"]
        env = config.get("environmentConfigurationDetails") or {}
        cmd = list(env.get("cmd") or [])
        key = json.dumps([model_id, cmd])
        if key in self._loaded:
            return self._loaded[key]
        if cmd[:2] != ["python3", "/opt/trtllm_oci/launch.py"]:
            return f"cmd {cmd[:2]} is not the serving image's launcher (python3 /opt/trtllm_oci/launch.py)"
        try:
            args = parse_args(cmd[2:])
        except SystemExit:
            return f"launch.py refused its arguments {cmd[2:]}"
        links = dict(link.partition("=")[::2] for link in args.link)
        files = _ContainerFiles(standin.mounted_files(model_id), args.serving_root, links)
        for name, target in links.items():
            if not files.exists(target):
                return f"launch.py: --link {name}: {target} does not exist in this container"
        repository = args.model_repository.rstrip("/")
        configs = {}
        for name in sorted(files.children(repository)):
            text = files.read(f"{repository}/{name}/config.pbtxt")
            if text is None:
                continue
            try:
                configs[name] = text_format.Parse(text.decode(), mc.ModelConfig())
            except text_format.ParseError as exc:
                return f"failed to load '{name}': {exc}"
        if not configs:
            return f"no model configuration found in {repository}"
        roots = tuple(r for r in (MOUNT, args.serving_root) if r)
        tokenizer_json = None
        for name, model in configs.items():
            for step in model.ensemble_scheduling.step:
                if step.model_name not in configs:
                    return f"ensemble '{name}' depends on '{step.model_name}' which is not in {repository}"
            for param, value in model.parameters.items():
                path = value.string_value
                if path.startswith(tuple(f"{r}/" for r in roots)) and not files.exists(path):
                    return f"failed to load '{name}': parameter {param} names {path}, which does not exist"
                if param == "tokenizer_dir" and tokenizer_json is None:
                    tokenizer_json = files.read(f"{path.rstrip('/')}/tokenizer.json")
            if model.backend == "tensorrtllm":
                problem = self._engine_problem(files, name, model, args.world_size)
                if problem:
                    return problem
        if tokenizer_json is None:
            return "no model names a tokenizer_dir holding tokenizer.json; preprocessing cannot load"
        loaded = _LoadedRepository(configs=configs, tokenizer=Tokenizer.from_str(tokenizer_json.decode()))
        self._loaded[key] = loaded
        return loaded

    @staticmethod
    def _engine_problem(files: _ContainerFiles, name: str, model: Any, world_size: int) -> str | None:
        engine_dir = model.parameters["gpt_model_path"].string_value.rstrip("/") if \
            "gpt_model_path" in model.parameters else ""
        raw = files.read(f"{engine_dir}/config.json")
        if raw is None:
            return f"failed to load '{name}': no engine config.json in gpt_model_path {engine_dir!r}"
        engine = json.loads(raw)
        mapping = (engine.get("pretrained_config") or {}).get("mapping")
        if mapping is None:
            return None  # a legacy engine layout; its rank files are named per version
        if int(mapping.get("world_size", 1)) != world_size:
            return (f"failed to load '{name}': the engine was built for world size {mapping.get('world_size')}, the "
                    f"launcher starts {world_size} ranks")
        missing = [r for r in range(world_size) if not files.exists(f"{engine_dir}/rank{r}.engine")]
        if missing:
            return f"failed to load '{name}': {engine_dir} has no rank{missing[0]}.engine"
        return None
