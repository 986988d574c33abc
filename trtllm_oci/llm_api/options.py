"""One typed model of the LLM-API options this project sets, in the LLM API's own names and shape.

The same dict (``render_options``) goes into trtllm-serve's YAML and into the llmapi Triton model's model.yaml;
every key of it is checked against the TorchLlmArgs fields of the TensorRT-LLM version, so a renamed option
fails here, with the version and the close matches, instead of at load time on a GPU.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from trtllm_oci.llm_api.facts import LlmApiError, llm_api_facts


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def as_llm_api(self) -> dict[str, Any] | None:
        """The nested option as TorchLlmArgs takes it; None leaves it at upstream's default."""
        return self.model_dump(exclude_none=True)


class KvCacheOptions(_Options):
    """KvCacheConfig fields (tensorrt_llm/llmapi/llm_args.py)."""

    free_gpu_memory_fraction: float | None = Field(None, gt=0.0, le=1.0)
    enable_block_reuse: bool | None = None
    dtype: Literal["auto", "fp8"] | None = Field(None, description="KV cache dtype; fp8 needs SM 89+")
    max_tokens: int | None = Field(None, ge=1)


class CudaGraphOptions(_Options):
    """CudaGraphConfig fields; ``enabled=False`` renders ``cuda_graph_config: null``, which turns CUDA graphs off
    (TorchLlmArgs defaults the field to a CudaGraphConfig, i.e. on)."""

    enabled: bool = True
    batch_sizes: list[int] | None = None
    max_batch_size: int | None = Field(None, ge=0)
    enable_padding: bool | None = None

    def as_llm_api(self) -> dict[str, Any] | None:
        return self.model_dump(exclude_none=True, exclude={"enabled"}) if self.enabled else None


class MoeOptions(_Options):
    backend: str | None = Field(None, description="MoeConfig.backend, e.g. CUTLASS, TRTLLM, WIDEEP")


class SchedulerOptions(_Options):
    capacity_scheduler_policy: Literal["MAX_UTILIZATION", "GUARANTEED_NO_EVICT", "STATIC_BATCH"] | None = None
    context_chunking_policy: Literal["FIRST_COME_FIRST_SERVED", "EQUAL_PROGRESS"] | None = None


class LlmApiOptions(_Options):
    tensor_parallel_size: int = Field(1, ge=1)
    pipeline_parallel_size: int = Field(1, ge=1)
    moe_expert_parallel_size: int | None = Field(None, ge=1)
    max_batch_size: int | None = Field(None, ge=1)
    max_num_tokens: int | None = Field(None, ge=1)
    max_seq_len: int | None = Field(None, ge=1)
    dtype: Literal["auto", "float16", "bfloat16", "float32"] = "auto"
    trust_remote_code: bool = False
    enable_chunked_prefill: bool | None = None
    guided_decoding_backend: Literal["xgrammar", "llguidance"] | None = None
    kv_cache_config: KvCacheOptions | None = None
    cuda_graph_config: CudaGraphOptions | None = None
    moe_config: MoeOptions | None = None
    scheduler_config: SchedulerOptions | None = None
    extra: dict[str, Any] = Field(
        default_factory=dict,
        description="Further TorchLlmArgs options by their upstream names; checked against the version like the rest",
    )

    @model_validator(mode="after")
    def _consistent(self) -> LlmApiOptions:
        typed = set(type(self).model_fields) - {"extra"}
        doubled = sorted(typed & set(self.extra))
        if doubled:
            raise ValueError(
                f"extra sets {doubled}, which are typed fields of LlmApiOptions; set them there instead"
            )
        ep = self.moe_expert_parallel_size
        if ep is not None and self.tensor_parallel_size % ep:
            # MoE ranks split the tensor-parallel group: moe_tp_size * moe_ep_size == tp_size (tensorrt_llm/mapping.py).
            raise ValueError(
                f"moe_expert_parallel_size={ep} must divide tensor_parallel_size={self.tensor_parallel_size}; "
                f"use an ep of {[d for d in range(1, self.tensor_parallel_size + 1) if self.tensor_parallel_size % d == 0]}"
            )
        return self

    @property
    def world_size(self) -> int:
        return self.tensor_parallel_size * self.pipeline_parallel_size

    def as_llm_api(self) -> dict[str, Any]:
        """The options in TorchLlmArgs' shape: only what is set (upstream defaults stay upstream's), tp/pp always."""
        out: dict[str, Any] = {
            "tensor_parallel_size": self.tensor_parallel_size,
            "pipeline_parallel_size": self.pipeline_parallel_size,
        }
        for name in type(self).model_fields:
            value = getattr(self, name)
            if name in out or name == "extra" or name not in self.model_fields_set:
                continue
            if isinstance(value, _Options):
                out[name] = value.as_llm_api()
            elif value is not None:
                out[name] = value
        return out | self.extra


def render_options(options: LlmApiOptions, trtllm_version: str) -> dict[str, Any]:
    """`options` as the LLM API's option dict for `trtllm_version`, every key checked against that version."""
    rendered = options.as_llm_api()
    llm_api_facts(trtllm_version).check_option_keys(rendered)
    return rendered


__all__ = [
    "CudaGraphOptions",
    "KvCacheOptions",
    "LlmApiError",
    "LlmApiOptions",
    "MoeOptions",
    "SchedulerOptions",
    "render_options",
]
