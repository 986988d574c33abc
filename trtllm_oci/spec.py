"""The release spec: the one schema a user writes, shared by the CLI, flow parameters and prefect.yaml.

Everything is checked when the spec is loaded, so a typo or an impossible combination fails before any
download or GPU time: the error names the field, the value and the allowed choices.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

from trtllm_oci.build_options import (
    PYTORCH_QUANTIZATIONS,
    BuildLimits,
    KvCacheDtype,
    Parallelism,
    Quantization,
    QuantizationSpec,
    check_parallelism_fits,
    check_quantization_supported,
)
from trtllm_oci.cache_location import CacheLocation, parse_engine_cache_uri
from trtllm_oci.cloud.autoscaling import Autoscaling
from trtllm_oci.errors import InputError, SpecError, UnknownShapeError
from trtllm_oci.model_facts import names_local_model
from trtllm_oci.shapes import Shape, load_catalog
from trtllm_oci.versions import (
    DEFAULT_TRTLLM_VERSION,
    UnsupportedVersionError,
    get_version,
    load_version_table,
    supported_versions,
)
from trtllm_oci.yaml_input import load_user_yaml

# ---- how the Prefect UI renders the spec as a form (its Run page builds the form from the JSON schema).
# Both Prefect UIs build a choice from `anyOf` (v1, prefect-ui-library, knows no `oneOf` and shows a JSON editor
# for it), a select from `enum`, and an "int | None" toggle reading 'Property is type "None"' from an optional
# scalar's anyOf [X, null]; an empty input is left out of the parameters, so the field's default (None) holds.

# An optional boolean (None: the backend's own default) keeps its toggle: a switch cannot say "unset".
_SCALAR_TYPES = ("string", "integer", "number")


def _without_null(schema: dict[str, Any]) -> None:
    """An optional scalar field shown as the plain input it is (no type toggle); its None default is left out
    of the schema, so the form starts empty and sends nothing for it."""
    options = schema.get("anyOf")
    if not isinstance(options, list) or len(options) != 2 or {"type": "null"} not in options:
        return
    (kept,) = [o for o in options if o != {"type": "null"}]
    if kept.get("type") not in _SCALAR_TYPES or "enum" in kept:
        return  # an optional section (an object) or select keeps its None choice (see _one_of)
    schema.pop("anyOf")
    if schema.get("default", "") is None:
        schema.pop("default")
    schema.update(kept)


def _form_schema(schema: dict[str, Any]) -> None:
    for field in (schema.get("properties") or {}).values():
        _without_null(field)


def _choice_of_kinds(schema: dict[str, Any]) -> None:
    """A tagged union as a choice that opens the chosen kind's fields: `anyOf`, which both UIs render."""
    if "oneOf" in schema:
        schema["anyOf"] = schema.pop("oneOf")
        schema.pop("discriminator", None)


def _one_of(values: Callable[[], list[str]]) -> Callable[[dict[str, Any]], None]:
    """A select over values read from their table when the schema is made (a deployment, the UI form).

    An optional one keeps its None choice beside the select: Prefect validates a flow run's parameters
    against the schema and run_deployment sends the spec's None fields as null, which a bare enum refuses
    (and an enum listing null is no longer rendered as a select)."""

    def extra(schema: dict[str, Any]) -> None:
        for option in schema.get("anyOf", [schema]):
            if option.get("type") == "string":
                option["enum"] = values()

    return extra


def _shape_names() -> list[str]:
    return load_catalog().names()


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, json_schema_extra=_form_schema)


_HF_REPO_RE = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")
# A release name is one directory name under $TRTLLM_OCI_HOME/releases, a Prefect artifact key, an OCI tag
# value and a display name: one path component of letters, digits, '.', '_', '-', starting with a letter or
# digit (so never '.', '..' or a hidden name), short enough for every one of those.
RELEASE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
SHORT_NAME_MAX = 48


class ModelSource(_Strict):
    """A Hugging Face repo at a revision (branch, tag or commit sha), or a local model directory."""

    hf_repo: str | None = Field(default=None, description="Hugging Face repo id, e.g. meta-llama/Llama-2-7b-hf")
    revision: str = Field(default="main", description="Branch, tag or commit sha; resolved to a sha before use")
    local_dir: Path | None = Field(default=None, description="A directory with config.json, weights and tokenizer")

    @field_validator("hf_repo")
    @classmethod
    def _repo_id_form(cls, value: str | None) -> str | None:
        if value is not None and not _HF_REPO_RE.match(value):
            raise InputError(f"{value!r} is not a Hugging Face repo id; use the form '<org>/<name>'")
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> ModelSource:
        if (self.hf_repo is None) == (self.local_dir is None):
            raise InputError("set exactly one of model.hf_repo (a Hugging Face repo id) or model.local_dir")
        return self

    @classmethod
    def parse(cls, text: str, revision: str = "main") -> ModelSource:
        """`--model` on the CLI: a local directory (`names_local_model`), else a Hugging Face repo id."""
        if names_local_model(text):
            return cls(local_dir=Path(text).expanduser())
        if not _HF_REPO_RE.match(text):
            raise SpecError(f"--model {text!r} is neither an existing directory nor a Hugging Face repo id "
                            "('<org>/<name>'); pass a model directory or a repo id")
        return cls(hf_repo=text, revision=revision)

    @property
    def label(self) -> str:
        if self.hf_repo:
            return f"{self.hf_repo}@{self.revision}"
        return str(self.local_dir)

    @property
    def short_name(self) -> str:
        """The model's name as a lowercase path component (it names directories, runs and tags)."""
        name = self.hf_repo.split("/")[-1] if self.hf_repo else Path(str(self.local_dir)).name
        return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:SHORT_NAME_MAX].strip("-") or "model"


class LocalTarget(_Strict):
    model_config = ConfigDict(title="local: this host (Triton here)")

    kind: Literal["local"] = Field(default="local", json_schema_extra={"enum": ["local"]})
    gpu_shape: str | None = Field(
        default=None,
        description="Catalog shape whose GPUs this host has (for planning); omit on a machine without GPUs",
        json_schema_extra=_one_of(_shape_names),
    )


_REGION_RE = re.compile(r"^[a-z]{2,}-[a-z]+-\d+$")


def check_region(value: str) -> str:
    if not _REGION_RE.match(value):
        raise InputError(f"{value!r} is not an OCI region identifier; use the form 'us-ashburn-1'")
    return value


class OciTarget(_Strict):
    model_config = ConfigDict(title="oci: OCI Data Science Model Deployment")

    kind: Literal["oci"] = Field(default="oci", json_schema_extra={"enum": ["oci"]})
    region: str = Field(description="OCI region identifier, e.g. us-ashburn-1")
    compartment_id: str = Field(description="OCID of the compartment for models and deployments")
    project_id: str = Field(description="OCID of the Data Science project")
    shape: str = Field(description="Model Deployment shape, e.g. VM.GPU.A10.2 (the GPU shape catalog)",
                       json_schema_extra=_one_of(_shape_names))
    instance_count: StrictInt = Field(default=1, ge=1, le=100)
    bandwidth_mbps: StrictInt = Field(default=10, ge=10, le=8000)
    ocir_namespace: str | None = Field(default=None, description="Tenancy Object Storage namespace (OCIR)")
    ocir_repository: str = Field(default="trtllm-oci/triton-trtllm", description="Container repository name")
    auth: Literal["api_key", "instance_principal", "resource_principal", "security_token"] = "api_key"
    profile: str = Field(default="DEFAULT", description="~/.oci/config profile for api_key/security_token auth")
    log_group_id: str | None = None
    access_log_id: str | None = None
    predict_log_id: str | None = None
    deployment_timeout_minutes: StrictInt = Field(default=60, ge=10, le=240)
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
            raise InputError(f"{value!r} is not a compartment OCID (ocid1.compartment.... or ocid1.tenancy....)")
        return value

    @field_validator("project_id")
    @classmethod
    def _project_ocid(cls, value: str) -> str:
        if not value.startswith("ocid1.datascienceproject."):
            raise InputError(f"{value!r} is not a Data Science project OCID (ocid1.datascienceproject....)")
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
    backend: Literal["pytorch", "tensorrt", "reference"] = Field(
        default="pytorch",
        description="pytorch = TensorRT-LLM's LLM API on the Hugging Face checkpoint (no engines); tensorrt = "
        "TensorRT-LLM engines (versions up to 1.2.1; 'tensorrtllm' is accepted for it); reference = the CPU "
        "reference backend (smoke tests only)",
    )
    frontend: Literal["openai", "triton"] | None = Field(
        default=None,
        description="pytorch backend: openai = trtllm-serve (default), triton = Triton's llmapi model; the "
        "tensorrt and reference backends are always served by Triton",
    )
    served_model_name: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$",
        description="OpenAI model name of a pytorch release (default: the model's short name)")
    predict_api: Literal["chat", "completions"] = Field(
        default="chat",
        description="OpenAI frontend: what the deployment's predict endpoint serves, /v1/chat/completions (chat) or "
        "/v1/completions; a model whose tokenizer has no chat template needs completions")
    llm_api_options: dict[str, Any] = Field(
        default_factory=dict,
        description="Further LLM-API options (TorchLlmArgs names) for the pytorch backend; each key is checked "
        "against the TensorRT-LLM version's option list")
    streaming: bool = Field(default=True, description="Serve generate_stream (decoupled mode)")
    triton_max_batch_size: StrictInt | None = Field(default=None, ge=1, description="Default: build.max_batch_size")
    kv_cache_free_gpu_mem_fraction: StrictFloat = Field(default=0.9, gt=0, le=1, allow_inf_nan=False)
    max_tokens_in_paged_kv_cache: StrictInt | None = Field(default=None, ge=1)
    batch_scheduler_policy: Literal["guaranteed_no_evict", "max_utilization"] = "guaranteed_no_evict"
    enable_kv_cache_reuse: bool | None = Field(
        default=None, description="KV cache block reuse; default: the backend's own (false up to 0.18, true from 0.19)"
    )
    exclude_input_in_output: bool = True
    max_queue_delay_microseconds: StrictInt = Field(default=0, ge=0)
    preprocessing_instance_count: StrictInt = Field(default=1, ge=1)
    postprocessing_instance_count: StrictInt = Field(default=1, ge=1)
    include_bls: bool = False
    http_port: StrictInt = Field(default=8000, ge=1024, le=65535)
    grpc_port: StrictInt = Field(default=8001, ge=1024, le=65535)

    @field_validator("backend", mode="before")
    @classmethod
    def _engine_alias(cls, value: object) -> object:
        # Specs written before the PyTorch backend existed name the engine path "tensorrtllm".
        return "tensorrt" if value == "tensorrtllm" else value

    @property
    def effective_frontend(self) -> Literal["openai", "triton"]:
        if self.backend != "pytorch":
            return "triton"
        return self.frontend or "openai"


class BenchmarkSpec(_Strict):
    enabled: bool = True
    transport: Literal["http", "grpc", "openai"] | None = Field(
        default=None, description="default: openai for an OpenAI frontend, http for Triton")
    api: Literal["chat", "completions"] = Field(
        default="completions", description="openai transport: /v1/chat/completions or /v1/completions")
    concurrency: list[Annotated[StrictInt, Field(ge=1)]] = Field(default_factory=lambda: [1, 4, 16], min_length=1)
    input_len: StrictInt = Field(default=128, ge=1)
    output_len: StrictInt = Field(default=128, ge=1)
    num_requests: StrictInt = Field(default=100, ge=1)
    warmup_requests: StrictInt = Field(default=4, ge=0)
    slo_ttft_ms: StrictFloat = Field(default=1000.0, gt=0, allow_inf_nan=False)
    slo_tpot_ms: StrictFloat = Field(default=50.0, gt=0, allow_inf_nan=False)


_SHA_RE = re.compile(r"^[0-9a-f]{40}$")


class EvaluationTaskSet(_Strict):
    """A directory of lm-eval task YAMLs and the data files they name (paths relative to the directory): local,
    or a Hugging Face dataset repository pinned to a commit, fetched by the download stage."""

    local_dir: Path | None = Field(default=None, description="A local task set directory")
    hf_dataset: str | None = Field(default=None, description="A Hub dataset repo id holding the task set")
    revision: str | None = Field(default=None, description="hf_dataset's commit (40 hex characters)")

    @field_validator("hf_dataset")
    @classmethod
    def _repo_id_form(cls, value: str | None) -> str | None:
        if value is not None and not _HF_REPO_RE.match(value):
            raise InputError(f"{value!r} is not a Hugging Face dataset id; use the form '<org>/<name>'")
        return value

    @model_validator(mode="after")
    def _one_pinned_source(self) -> EvaluationTaskSet:
        if (self.local_dir is None) == (self.hf_dataset is None):
            raise InputError("set exactly one of local_dir or hf_dataset (with its revision)")
        if self.hf_dataset is not None and not (self.revision and _SHA_RE.match(self.revision)):
            raise InputError(
                f"revision must pin {self.hf_dataset} to a commit sha (40 hex characters), got "
                f"{self.revision!r}; a branch could change the prompts and answers under the same baseline")
        if self.local_dir is not None and self.revision is not None:
            raise InputError("revision applies to hf_dataset only; drop it for a local_dir")
        return self

    @property
    def origin(self) -> str:
        return f"hf:{self.hf_dataset}@{self.revision}" if self.hf_dataset else str(self.local_dir)


class EvaluationSpec(_Strict):
    """The quality gate: the quantized release against its unquantized source on a task set, through the same
    OpenAI-compatible server, before it is deployed (lm-evaluation-harness; the `eval` extra)."""

    task_set: EvaluationTaskSet
    tasks: list[str] = Field(min_length=1, description="Task names the task set defines (lm-eval `task:`)")
    max_drop: dict[str, float] = Field(
        min_length=1, description="Allowed drop per metric (lm-eval's names, e.g. word_perplexity, exact_match), "
        "relative to the source and toward worse, in (0, 1]: 0.05 lets perplexity rise or exact match fall 5%")
    on_fail: Literal["fail", "mark"] = Field(
        default="fail", description="fail: stop the release before deploying; mark: deploy it, marked as failed")
    limit: int | None = Field(default=None, ge=1, description="At most this many documents per task")

    @field_validator("tasks")
    @classmethod
    def _unique_tasks(cls, value: list[str]) -> list[str]:
        repeated = sorted({t for t in value if value.count(t) > 1})
        if repeated:
            raise InputError(f"{repeated} named more than once; name each task once")
        return value

    @field_validator("max_drop")
    @classmethod
    def _limits_in_range(cls, value: dict[str, float]) -> dict[str, float]:
        bad = {metric: limit for metric, limit in value.items() if not 0 < limit <= 1}
        if bad:
            raise InputError(f"{bad} is outside (0, 1]: each allowed drop is a fraction of the source's score in "
                             "(0, 1] (0.05 = 5%); 0 would fail on noise and above 1 gates nothing")
        return value


class ReleaseSpec(_Strict):
    """One release: which model, how to quantize and split it, which TRT-LLM, where to serve and measure it."""

    name: str | None = Field(
        default=None, pattern=RELEASE_NAME_RE.pattern,
        description="Release name (letters, digits, '.', '_', '-'; it names the release's directory); "
                    "default derived from model and build")
    model: ModelSource
    quantization: QuantizationSpec = Field(default_factory=QuantizationSpec)
    parallelism: Parallelism = Field(default_factory=Parallelism)
    build: BuildLimits = Field(default_factory=BuildLimits)
    trtllm_version: str = Field(default=DEFAULT_TRTLLM_VERSION, description="TensorRT-LLM version (version table)",
                                json_schema_extra=_one_of(supported_versions))
    target: Target = Field(default_factory=LocalTarget, json_schema_extra=_choice_of_kinds,
                           description="Where the release is served: this host, or an OCI Model Deployment")
    serving: ServingSpec = Field(default_factory=ServingSpec)
    benchmark: BenchmarkSpec = Field(default_factory=BenchmarkSpec)
    engine_cache: EngineCacheSpec | None = Field(
        default=None, description="Engine cache location; default: the local directory $TRTLLM_OCI_CACHE")
    evaluation: EvaluationSpec | None = Field(
        default=None, description="Quality gate: the quantized release against its source before deploying")

    @field_validator("name", mode="before")
    @classmethod
    def _name_is_one_path_component(cls, value: object) -> object:
        if isinstance(value, str) and not RELEASE_NAME_RE.match(value):
            raise InputError(
                f"{_shown(value)} is not a release name: it names a directory under $TRTLLM_OCI_HOME/releases, "
                "so use 1-100 letters, digits, '.', '_' or '-' starting with a letter or digit (no '/', no '..')")
        return value

    @field_validator("trtllm_version")
    @classmethod
    def _known_version(cls, value: str) -> str:
        try:
            get_version(value)
        except UnsupportedVersionError as exc:  # its message lists the supported versions
            raise InputError(str(exc)) from None
        return value

    @model_validator(mode="before")
    @classmethod
    def _default_backend_of_the_version(cls, data: Any) -> Any:
        """A spec that names no backend gets the LLM API where its version has it, else that version's engines,
        so specs written for the engine path of an older version keep their meaning."""
        if not isinstance(data, dict):
            return data
        serving = data.get("serving")
        if isinstance(serving, dict) and "backend" in serving:
            return data
        try:
            version = get_version(str(data.get("trtllm_version", DEFAULT_TRTLLM_VERSION)))
        except UnsupportedVersionError:
            return data  # the field validator reports it
        if version.pytorch is None and version.engine_path:
            data = {**data, "serving": {**(serving if isinstance(serving, dict) else {}), "backend": "tensorrt"}}
        return data

    @model_validator(mode="after")
    def _backend_exists_at_version(self) -> ReleaseSpec:
        version = get_version(self.trtllm_version)
        backend = self.serving.backend
        if backend == "tensorrt" and not version.engine_path:
            raise InputError(
                f"serving.backend: TensorRT-LLM {self.trtllm_version} has no engine path (trtllm-build and the "
                f"Triton C++ backend were removed after 1.2.1); use backend pytorch, or trtllm_version 1.2.1 or older")
        if backend == "pytorch" and version.pytorch is None:
            with_pytorch = [v.version for v in load_version_table().versions if v.pytorch is not None]
            raise InputError(
                f"serving.backend: pytorch needs a TensorRT-LLM version whose LLM-API options are in the version "
                f"table ({', '.join(with_pytorch)}); {self.trtllm_version} has none. Set trtllm_version to one of "
                f"those, or use backend tensorrt for engines")
        if self.parallelism.ep is not None and backend != "pytorch":
            raise InputError("parallelism.ep (expert parallel) is set through the LLM API: use backend pytorch, or "
                             "remove it (engines shard experts with tp)")
        if self.serving.frontend is not None and backend != "pytorch":
            raise InputError(f"serving.frontend applies to backend pytorch only; backend {backend} is served by "
                             "Triton: remove serving.frontend")
        if backend == "pytorch":
            if self.quantization.method not in PYTORCH_QUANTIZATIONS:
                raise InputError(
                    f"quantization.method {self.quantization.method.value!r} is an engine-path format; the pytorch "
                    f"backend quantizes with ModelOpt to one of {[q.value for q in PYTORCH_QUANTIZATIONS]}, or use "
                    f"backend tensorrt")
            if self.quantization.kv_cache_dtype is KvCacheDtype.INT8:
                raise InputError("quantization.kv_cache_dtype 'int8' has no ModelOpt path for the pytorch backend; "
                                 "use 'fp8' or 'auto'")
            if self.serving.llm_api_options:
                from trtllm_oci.llm_api.facts import llm_api_facts

                llm_api_facts(self.trtllm_version).check_option_keys(self.serving.llm_api_options)
        elif self.quantization.method is Quantization.NVFP4:
            raise InputError("quantization.method 'nvfp4' is made by ModelOpt for the pytorch backend only; "
                             "use backend pytorch")
        return self

    @model_validator(mode="after")
    def _evaluation_applies(self) -> ReleaseSpec:
        if self.evaluation is None:
            return self
        q = self.quantization
        if q.method is Quantization.NONE and q.kv_cache_dtype is KvCacheDtype.AUTO:
            raise InputError("evaluation: the quality gate compares a quantized release with its source, and this "
                             "release has no quantization (quantization.method none, kv_cache_dtype auto); set "
                             "quantization.method (e.g. fp8) or remove evaluation")
        if self.serving.backend != "pytorch" or self.serving.effective_frontend != "openai":
            raise InputError(
                f"evaluation: the harness scores an OpenAI-compatible /v1/completions endpoint, which serving.backend "
                f"pytorch with frontend openai serves (trtllm-serve, or the CPU OpenAI smoke server here); this release "
                f"is served by backend {self.serving.backend} on Triton: use backend pytorch, or remove evaluation")
        return self

    @model_validator(mode="after")
    def _fits_target(self) -> ReleaseSpec:
        shape_field, shape = self.target_shape_field()
        if shape_field is not None and shape is not None:
            check_parallelism_fits(self.parallelism, shape, shape_field)
            check_quantization_supported(self.quantization, shape, shape_field)
        tmbs = self.serving.triton_max_batch_size
        if tmbs is not None and tmbs > self.build.max_batch_size:
            raise InputError(
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
            raise InputError(f"{field}: {exc}") from None

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


SHOWN_VALUE_CHARS = 80
SHOWN_ERRORS = 10


def _shown(value: object) -> str:
    """A value as an error message echoes it: its repr, cut short (a spec may hold megabytes of it)."""
    text = repr(value)
    return text if len(text) <= SHOWN_VALUE_CHARS else f"{text[:SHOWN_VALUE_CHARS]}… ({len(text)} characters)"


def format_validation_error(exc: ValidationError, source: str, names: Mapping[str, str] | None = None) -> str:
    """One short line per problem: the field (or, through `names`, the command-line flag that set it), what
    is wrong and the value given, cut short; at most SHOWN_ERRORS lines."""
    lines = [f"invalid release spec ({source}):"]
    errors = exc.errors(include_url=False)
    for err in errors[:SHOWN_ERRORS]:
        # Drop the discriminator tag pydantic inserts for the target union: users write target.shape.
        parts = [str(p) for p in err["loc"] if p not in ("local", "oci") or err["loc"][0] != "target"]
        loc = ".".join(parts)
        msg = err["msg"].removeprefix("Value error, ")
        if names:
            # A check across fields (loc empty) starts its message with the field it is about.
            head, sep, rest = msg.partition(": ")
            if not loc and sep and head in names:
                loc, msg = head, rest
            loc = names.get(loc, loc)
            for field in sorted((f for f in names if "." in f), key=len, reverse=True):
                msg = msg.replace(field, names[field])
        if err["type"] in ("int_type", "float_type") and isinstance(err.get("input"), bool):
            msg = "must be a number, not true/false"
        if len(msg) > 400:
            msg = msg[:400] + "…"
        value = err.get("input")
        shown = (f" (got {_shown(value)})" if err["type"] != "missing" and not isinstance(value, dict | list) and loc
                 else "")
        lines.append(f"  - {loc or '<spec>'}: {msg}{shown}")
    if len(errors) > SHOWN_ERRORS:
        lines.append(f"  ... and {len(errors) - SHOWN_ERRORS} more")
    return "\n".join(lines)


def parse_spec(data: dict[str, Any], source: str = "<spec>", names: Mapping[str, str] | None = None) -> ReleaseSpec:
    """Validate a spec's data; `names` maps field paths to the flags that set them (for the CLI's messages)."""
    try:
        return ReleaseSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(format_validation_error(exc, source, names)) from None


def load_spec(path: str | Path) -> ReleaseSpec:
    """Load a release spec from YAML; every problem is reported with its field path."""
    path = Path(path)
    try:
        data = load_user_yaml(path, "release spec")
    except InputError as exc:
        raise SpecError(str(exc)) from None
    if not isinstance(data, dict):
        raise SpecError(f"release spec {str(path)!r} must be a YAML mapping with at least a 'model' key")
    return parse_spec(data, str(path))
