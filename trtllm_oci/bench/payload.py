"""Request bodies for the TensorRT-LLM ensemble, shaped by what the served model accepts.

Input names and types: TensorRT-LLM:triton_backend/all_models/inflight_batcher_llm/ensemble/config.pbtxt
(`min_tokens`, `exclude_input_in_output`, `return_num_input_tokens`, `return_num_output_tokens`;
containers up to tensorrtllm_backend v0.19 call the minimum length `min_length`).

Triton's `llmapi` model (the PyTorch backend) names its inputs after the LLM API's SamplingParams instead:
NVIDIA/TensorRT-LLM:triton_backend/all_models/llmapi/tensorrt_llm/config.pbtxt@c8c6df08bd0ead54cd47f7973e1e425c28a174cd
(`text_input`, `streaming`, `sampling_param_max_tokens`, `sampling_param_temperature`, `sampling_param_top_k`,
`sampling_param_exclude_input_from_output`, ...; 1/helpers.py get_sampling_params_from_request strips the
`sampling_param_` prefix). It declares no token-count outputs and no minimum length.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from trtllm_oci.bench.errors import BenchInputError
from trtllm_oci.bench.records import RequestSpec

MIN_LENGTH_FIELDS = ("min_tokens", "min_length")
# Fields sent only if the model declares them (Triton rejects undeclared inputs).
_OPTIONAL_FIELDS = (
    "exclude_input_in_output",
    "temperature",
    "top_k",
    "return_num_input_tokens",
    "return_num_output_tokens",
)
LLMAPI_MAX_TOKENS = "sampling_param_max_tokens"
# What the benchmark sends the llmapi model where it declares the input (its config.pbtxt names above).
_LLMAPI_WANTED: dict[str, Any] = {
    "sampling_param_exclude_input_from_output": True,
    "sampling_param_temperature": 0.0,
    "sampling_param_top_k": 1,
}


@dataclass(frozen=True)
class ModelCapabilities:
    """Which ensemble inputs/outputs the served model declares (from GET /v2/models/<m>/config)."""

    inputs: frozenset[str] = field(default_factory=frozenset)
    outputs: frozenset[str] = field(default_factory=frozenset)
    input_dtypes: dict[str, str] = field(default_factory=dict)
    max_batch_size: int = 0
    known: bool = False
    #: "llmapi": Triton's llmapi model (LLM-API input names, each streamed response the whole text so far).
    dialect: Literal["ensemble", "llmapi"] = "ensemble"

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ModelCapabilities:
        if "config" in config and "input" not in config:
            config = config["config"]  # gRPC get_model_config(as_json=True) wraps the config
        inputs = config.get("input") or []
        outputs = config.get("output") or []
        if not inputs:
            raise BenchInputError(
                f"model config for {config.get('name', '?')!r} declares no inputs; "
                "is this the ensemble (or a model with text_input/max_tokens)?"
            )
        names = frozenset(i["name"] for i in inputs)
        dialect: Literal["ensemble", "llmapi"] = "llmapi" if LLMAPI_MAX_TOKENS in names else "ensemble"
        missing = {"text_input", LLMAPI_MAX_TOKENS if dialect == "llmapi" else "max_tokens"} - names
        if missing:
            raise BenchInputError(
                f"model {config.get('name', '?')!r} lacks required input(s) {sorted(missing)}; "
                "point --model at the TensorRT-LLM ensemble (or tensorrt_llm_bls, or the PyTorch backend's llmapi "
                "model), not at the engine's tensorrt_llm"
            )
        return cls(
            inputs=names,
            outputs=frozenset(o["name"] for o in outputs),
            input_dtypes={i["name"]: i.get("data_type", "") for i in inputs},
            max_batch_size=int(config.get("max_batch_size", 0) or 0),
            known=True,
            dialect=dialect,
        )

    @classmethod
    def assumed_ensemble(
        cls, min_length_field: str = "min_tokens", server_token_counts: bool = True
    ) -> ModelCapabilities:
        """For endpoints whose config cannot be read (OCI Model Deployment exposes only predict)."""
        if min_length_field not in (*MIN_LENGTH_FIELDS, "none"):
            raise BenchInputError(
                f"min_length_field={min_length_field!r}: use one of {(*MIN_LENGTH_FIELDS, 'none')}"
            )
        inputs = {"text_input", "max_tokens", "stream", "exclude_input_in_output", "temperature", "top_k"}
        outputs = {"text_output"}
        if min_length_field != "none":
            inputs.add(min_length_field)
        if server_token_counts:
            inputs |= {"return_num_input_tokens", "return_num_output_tokens"}
            outputs |= {"num_input_tokens", "num_output_tokens"}
        return cls(inputs=frozenset(inputs), outputs=frozenset(outputs), max_batch_size=1, known=False)

    @property
    def min_length_field(self) -> str | None:
        return next((f for f in MIN_LENGTH_FIELDS if f in self.inputs), None)

    @property
    def server_counts_output(self) -> bool:
        return "return_num_output_tokens" in self.inputs and "num_output_tokens" in self.outputs

    @property
    def server_counts_input(self) -> bool:
        return "return_num_input_tokens" in self.inputs and "num_input_tokens" in self.outputs


def llmapi_body(spec: RequestSpec, caps: ModelCapabilities, stream: bool) -> dict[str, Any]:
    """The llmapi model's body: greedy, prompt not echoed. `streaming` asks for one response per step (upstream's
    model.py refuses it unless the model is decoupled); the model has no minimum length, so a fixed output
    length cannot be forced and osl_mismatch reports a shorter answer."""
    body: dict[str, Any] = {"text_input": spec.prompt, LLMAPI_MAX_TOKENS: spec.output_len}
    if "streaming" in caps.inputs:
        body["streaming"] = stream
    body.update({name: value for name, value in _LLMAPI_WANTED.items() if name in caps.inputs})
    for name, value in spec.extra_inputs.items():
        if name not in caps.inputs:
            raise BenchInputError(
                f"extra input {name!r} is not an input of the served model; it declares {sorted(caps.inputs)}"
            )
        body[name] = value
    return body


def generate_body(spec: RequestSpec, caps: ModelCapabilities, stream: bool) -> dict[str, Any]:
    """The JSON body for /generate(_stream): greedy, prompt not echoed, fixed length if asked."""
    if caps.dialect == "llmapi":
        return llmapi_body(spec, caps, stream)
    body: dict[str, Any] = {"text_input": spec.prompt, "max_tokens": spec.output_len, "stream": stream}
    wanted: dict[str, Any] = {
        "exclude_input_in_output": True,
        "temperature": 0.0,
        "top_k": 1,
        "return_num_input_tokens": True,
        "return_num_output_tokens": True,
    }
    for name in _OPTIONAL_FIELDS:
        if name in caps.inputs:
            body[name] = wanted[name]
    if spec.fixed_output_len and caps.min_length_field:
        body[caps.min_length_field] = spec.output_len
    if "stream" not in caps.inputs and caps.known:
        del body["stream"]
    for name, value in spec.extra_inputs.items():
        if caps.known and name not in caps.inputs:
            raise BenchInputError(
                f"extra input {name!r} is not an input of the served model; it declares {sorted(caps.inputs)}"
            )
        body[name] = value
    return body
