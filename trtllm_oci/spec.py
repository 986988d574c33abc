"""The release spec: the one schema a user writes, shared by the CLI, flow parameters and prefect.yaml.

Everything is checked when the spec is loaded, so a typo or an impossible combination fails before any
download or GPU time: the error names the field, the value and the allowed choices.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from trtllm_oci.cloud.autoscaling import Autoscaling
from trtllm_oci.engine.cache_location import CacheLocation, parse_engine_cache_uri
from trtllm_oci.engine.versions import DEFAULT_TRTLLM_VERSION, UnsupportedVersionError, get_version
from trtllm_oci.errors import SpecError, UnknownShapeError
from trtllm_oci.shapes import Shape, load_catalog


class Quantization(StrEnum):
    NONE = "none"
    FP8 = "fp8"
    INT8_SQ = "int8_sq"
    INT4_AWQ = "int4_awq"
    W4A8_AWQ = "w4a8_awq"
    INT8_WO = "int8_wo"
    INT4_WO = "int4_wo"

    @property
    def needs_fp8_hardware(self) -> bool:
        # w4a8_awq runs its activations in FP8 (ModelOpt W4A8_AWQ), so it needs Ada/Hopper like fp8.
        return self in (Quantization.FP8, Quantization.W4A8_AWQ)


class KvCacheDtype(StrEnum):
    AUTO = "auto"
    FP8 = "fp8"
    INT8 = "int8"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


_HF_REPO_RE = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")


class ModelSource(_Strict):
    """A Hugging Face repo at a revision (branch, tag or commit sha), or a local model directory."""

    hf_repo: str | None = Field(default=None, description="Hugging Face repo id, e.g. meta-llama/Llama-2-7b-hf")
    revision: str = Field(default="main", description="Branch, tag or commit sha; resolved to a sha before use")
    local_dir: Path | None = Field(default=None, description="A directory with config.json, weights and tokenizer")

    @field_validator("hf_repo")
    @classmethod
    def _repo_id_form(cls, value: str | None) -> str | None:
        if value is not None and not _HF_REPO_RE.match(value):
            raise ValueError(f"{value!r} is not a Hugging Face repo id; use the form '<org>/<name>'")
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> ModelSource:
        if (self.hf_repo is None) == (self.local_dir is None):
            raise ValueError("set exactly one of model.hf_repo (a Hugging Face repo id) or model.local_dir")
        return self

    @classmethod
    def parse(cls, text: str, revision: str = "main") -> ModelSource:
        """`--model` on the CLI: an existing directory (or a path-looking string) is local, else a repo id."""
        path = Path(text).expanduser()
        if path.exists() or text.startswith((".", "/", "~")):
            return cls(local_dir=path)
        return cls(hf_repo=text, revision=revision)

    @property
    def label(self) -> str:
        if self.hf_repo:
            return f"{self.hf_repo}@{self.revision}"
        return str(self.local_dir)

    @property
    def short_name(self) -> str:
        name = self.hf_repo.split("/")[-1] if self.hf_repo else Path(str(self.local_dir)).name
        return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "model"


class QuantizationSpec(_Strict):
    method: Quantization = Field(default=Quantization.NONE, description="Weight (and activation) quantization")
    kv_cache_dtype: KvCacheDtype = Field(default=KvCacheDtype.AUTO, description="auto = the model's dtype")
    calib_size: int = Field(default=512, ge=1, le=100_000, description="Calibration samples for quantize.py")


class Parallelism(_Strict):
    tp: int = Field(default=1, ge=1, le=64, description="Tensor parallel size")
    pp: int = Field(default=1, ge=1, le=64, description="Pipeline parallel size")

    @property
    def world_size(self) -> int:
        return self.tp * self.pp


class BuildLimits(_Strict):
    """trtllm-build's shape limits; they size the engine's activation memory and its maximum requests."""

    max_batch_size: int = Field(default=64, ge=1, le=4096)
    max_input_len: int = Field(default=2048, ge=1)
    max_seq_len: int = Field(default=4096, ge=2)
    max_num_tokens: int = Field(default=8192, ge=1)

    @model_validator(mode="after")
    def _consistent(self) -> BuildLimits:
        if self.max_input_len >= self.max_seq_len:
            raise ValueError(
                f"build.max_input_len ({self.max_input_len}) must be below build.max_seq_len "
                f"({self.max_seq_len}), which counts prompt plus generated tokens; raise max_seq_len"
            )
        return self


class LocalTarget(_Strict):
    kind: Literal["local"] = "local"
    gpu_shape: str | None = Field(
        default=None,
        description="Catalog shape whose GPUs this host has (for planning); omit on a machine without GPUs",
    )


_REGION_RE = re.compile(r"^[a-z]{2,}-[a-z]+-\d+$")


def check_region(value: str) -> str:
    if not _REGION_RE.match(value):
        raise ValueError(f"{value!r} is not an OCI region identifier; use the form 'us-ashburn-1'")
    return value


class OciTarget(_Strict):
    kind: Literal["oci"] = "oci"
    region: str = Field(description="OCI region identifier, e.g. us-ashburn-1")
    compartment_id: str = Field(description="OCID of the compartment for models and deployments")
    project_id: str = Field(description="OCID of the Data Science project")
    shape: str = Field(description="Model Deployment shape, e.g. VM.GPU.A10.2")
    instance_count: int = Field(default=1, ge=1, le=100)
    bandwidth_mbps: int = Field(default=10, ge=10, le=8000)
    ocir_namespace: str | None = Field(default=None, description="Tenancy Object Storage namespace (OCIR)")
    ocir_repository: str = Field(default="trtllm-oci/triton-trtllm", description="Container repository name")
    auth: Literal["api_key", "instance_principal", "resource_principal", "security_token"] = "api_key"
    profile: str = Field(default="DEFAULT", description="~/.oci/config profile for api_key/security_token auth")
    log_group_id: str | None = None
    access_log_id: str | None = None
    predict_log_id: str | None = None
    deployment_timeout_minutes: int = Field(default=60, ge=10, le=240)
    artifact_bucket: str | None = Field(
        default=None,
        description="oci://<bucket>@<namespace>/<prefix> where the model artifact is staged (configs and tokenizer "
                    "beside referenced engines, or a zip above 2 GiB); default: <engine_cache>/releases when the "
                    "engine cache is in Object Storage")
    extra_env: dict[str, str] = Field(
        default_factory=dict, description="Environment variables added to the serving container (e.g. NCCL_DEBUG)")
    autoscaling: Autoscaling | None = Field(
        default=None, description="Scale between min and max instances on CPU/memory/custom-metric thresholds "
                                  "(the service's AutoScalingPolicy); when set, instance_count is not used")

    @field_validator("region")
    @classmethod
    def _region_form(cls, value: str) -> str:
        return check_region(value)

    @field_validator("artifact_bucket")
    @classmethod
    def _artifact_bucket_form(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("oci://"):
            raise ValueError(f"{value!r} is not an Object Storage location; use oci://<bucket>@<namespace>/<prefix>")
        if value is not None:
            parse_engine_cache_uri(value)
        return value

    @field_validator("compartment_id")
    @classmethod
    def _compartment_ocid(cls, value: str) -> str:
        if not value.startswith(("ocid1.compartment.", "ocid1.tenancy.")):
            raise ValueError(f"{value!r} is not a compartment OCID (ocid1.compartment.... or ocid1.tenancy....)")
        return value

    @field_validator("project_id")
    @classmethod
    def _project_ocid(cls, value: str) -> str:
        if not value.startswith("ocid1.datascienceproject."):
            raise ValueError(f"{value!r} is not a Data Science project OCID (ocid1.datascienceproject....)")
        return value


Target = Annotated[LocalTarget | OciTarget, Field(discriminator="kind")]


class EngineCacheSpec(_Strict):
    """Where built engines are kept. Every host that builds or serves a release must reach the same place:
    with builds on a GPU pool and serving elsewhere, use an Object Storage bucket."""

    uri: str = Field(description="A directory (/path or file:///path) or oci://<bucket>@<namespace>/<prefix>")
    auth: Literal["api_key", "instance_principal", "resource_principal", "security_token"] = Field(
        default="api_key", description="OCI auth for an oci:// cache")
    profile: str = Field(default="DEFAULT", description="~/.oci/config profile for api_key/security_token auth")
    region: str | None = Field(default=None, description="Region of the bucket; default: the auth profile's region")

    @field_validator("uri")
    @classmethod
    def _uri_form(cls, value: str) -> str:
        parse_engine_cache_uri(value)
        return value

    @field_validator("region")
    @classmethod
    def _region_form(cls, value: str | None) -> str | None:
        return None if value is None else check_region(value)

    @property
    def location(self) -> CacheLocation:
        return parse_engine_cache_uri(self.uri)


class ServingSpec(_Strict):
    backend: Literal["tensorrtllm", "reference"] = Field(
        default="tensorrtllm",
        description="tensorrtllm = TensorRT-LLM engines; reference = the CPU reference backend (smoke tests only)",
    )
    streaming: bool = Field(default=True, description="Serve generate_stream (decoupled mode)")
    triton_max_batch_size: int | None = Field(default=None, ge=1, description="Default: build.max_batch_size")
    kv_cache_free_gpu_mem_fraction: float = Field(default=0.9, gt=0, le=1)
    max_tokens_in_paged_kv_cache: int | None = Field(default=None, ge=1)
    batch_scheduler_policy: Literal["guaranteed_no_evict", "max_utilization"] = "guaranteed_no_evict"
    enable_kv_cache_reuse: bool = False
    exclude_input_in_output: bool = True
    max_queue_delay_microseconds: int = Field(default=0, ge=0)
    preprocessing_instance_count: int = Field(default=1, ge=1)
    postprocessing_instance_count: int = Field(default=1, ge=1)
    include_bls: bool = False
    http_port: int = Field(default=8000, ge=1024, le=65535)
    grpc_port: int = Field(default=8001, ge=1024, le=65535)


class BenchmarkSpec(_Strict):
    enabled: bool = True
    transport: Literal["http", "grpc"] = "http"
    concurrency: list[Annotated[int, Field(ge=1)]] = Field(default_factory=lambda: [1, 4, 16], min_length=1)
    input_len: int = Field(default=128, ge=1)
    output_len: int = Field(default=128, ge=1)
    num_requests: int = Field(default=100, ge=1)
    warmup_requests: int = Field(default=4, ge=0)
    slo_ttft_ms: float = Field(default=1000.0, gt=0)
    slo_tpot_ms: float = Field(default=50.0, gt=0)


class ReleaseSpec(_Strict):
    """One release: which model, how to quantize and split it, which TRT-LLM, where to serve and measure it."""

    name: str | None = Field(default=None, description="Release name; default derived from model and build")
    model: ModelSource
    quantization: QuantizationSpec = Field(default_factory=QuantizationSpec)
    parallelism: Parallelism = Field(default_factory=Parallelism)
    build: BuildLimits = Field(default_factory=BuildLimits)
    trtllm_version: str = Field(default=DEFAULT_TRTLLM_VERSION, description="TensorRT-LLM version (version table)")
    target: Target = Field(default_factory=LocalTarget)
    serving: ServingSpec = Field(default_factory=ServingSpec)
    benchmark: BenchmarkSpec = Field(default_factory=BenchmarkSpec)
    engine_cache: EngineCacheSpec | None = Field(
        default=None, description="Engine cache location; default: the local directory $TRTLLM_OCI_CACHE")

    @field_validator("trtllm_version")
    @classmethod
    def _known_version(cls, value: str) -> str:
        try:
            get_version(value)
        except UnsupportedVersionError as exc:  # its message lists the supported versions
            raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _fits_target(self) -> ReleaseSpec:
        shape_field, shape = self.target_shape_field()
        if shape_field is not None and shape is not None:
            check_parallelism_fits(self.parallelism, shape, shape_field)
            check_quantization_supported(self.quantization, shape, shape_field)
        tmbs = self.serving.triton_max_batch_size
        if tmbs is not None and tmbs > self.build.max_batch_size:
            raise ValueError(
                f"serving.triton_max_batch_size ({tmbs}) is above build.max_batch_size "
                f"({self.build.max_batch_size}); the engine caps batches at its build-time size, so lower "
                f"serving.triton_max_batch_size or raise build.max_batch_size"
            )
        return self

    def target_shape_field(self) -> tuple[str | None, Shape | None]:
        """The field naming a catalog shape and the shape (raises UnknownShapeError naming the field)."""
        if isinstance(self.target, OciTarget):
            field, name = "target.shape", self.target.shape
        elif self.target.gpu_shape:
            field, name = "target.gpu_shape", self.target.gpu_shape
        else:
            return None, None
        try:
            return field, load_catalog().get(name)
        except UnknownShapeError as exc:
            raise ValueError(f"{field}: {exc}") from None

    @property
    def shape(self) -> Shape | None:
        return self.target_shape_field()[1]

    @property
    def release_id(self) -> str:
        """Stable id used in run names, cloud tags and directory names."""
        if self.name:
            return self.name
        q = self.quantization.method.value
        p = self.parallelism
        return f"{self.model.short_name}-{q}-tp{p.tp}pp{p.pp}-trt{self.trtllm_version}"

    @property
    def effective_triton_max_batch_size(self) -> int:
        return self.serving.triton_max_batch_size or self.build.max_batch_size


def check_parallelism_fits(parallelism: Parallelism, shape: Shape, field: str = "target.shape") -> None:
    if parallelism.world_size > shape.gpu_count:
        bigger = sorted(
            (s for s in load_catalog().shapes.values() if s.gpu_count >= parallelism.world_size),
            key=lambda s: s.price_per_hour_usd,
        )
        raise ValueError(
            f"parallelism: tp×pp = {parallelism.tp}×{parallelism.pp} = {parallelism.world_size} is larger than the "
            f"{shape.gpu_count} GPU(s) of {shape.name} ({field}); choose tp×pp ≤ {shape.gpu_count} or a shape "
            f"with ≥ {parallelism.world_size} GPUs: {', '.join(s.name for s in bigger) or 'none in the catalog'}"
        )


def check_quantization_supported(quant: QuantizationSpec, shape: Shape, field: str = "target.shape") -> None:
    gpu = shape.gpu
    if gpu.supports_fp8:
        return
    if quant.method.needs_fp8_hardware:
        raise ValueError(
            f"quantization.method: {quant.method.value!r} needs FP8 support (compute capability ≥ 8.9), but "
            f"{shape.name} ({field}) has {gpu.name} GPUs (SM {gpu.compute_capability}); choose one of "
            f"int8_sq, int4_awq, int8_wo, int4_wo, none, or an L40S/H100/H200 shape"
        )
    if quant.kv_cache_dtype is KvCacheDtype.FP8:
        raise ValueError(
            f"quantization.kv_cache_dtype: 'fp8' needs FP8 support (compute capability ≥ 8.9), but {shape.name} "
            f"({field}) has {gpu.name} GPUs (SM {gpu.compute_capability}); use 'int8' or 'auto'"
        )


def format_validation_error(exc: ValidationError, source: str) -> str:
    lines = [f"invalid release spec ({source}):"]
    for err in exc.errors():
        # Drop the discriminator tag pydantic inserts for the target union: users write target.shape.
        parts = [str(p) for p in err["loc"] if p not in ("local", "oci") or err["loc"][0] != "target"]
        loc = ".".join(parts)
        msg = err["msg"].removeprefix("Value error, ")
        value = err.get("input")
        shown = f" (got {value!r})" if err["type"] != "missing" and not isinstance(value, dict) and loc else ""
        lines.append(f"  - {loc or '<spec>'}: {msg}{shown}")
    return "\n".join(lines)


def parse_spec(data: dict[str, Any], source: str = "<spec>") -> ReleaseSpec:
    try:
        return ReleaseSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(format_validation_error(exc, source)) from None


def load_spec(path: str | Path) -> ReleaseSpec:
    """Load a release spec from YAML; every problem is reported with its field path."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"release spec {str(path)!r} does not exist; pass the path of a YAML file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise SpecError(f"release spec {str(path)!r} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise SpecError(f"release spec {str(path)!r} must be a YAML mapping with at least a 'model' key")
    return parse_spec(data, str(path))
