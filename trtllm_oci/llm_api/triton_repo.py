"""The Triton `llmapi` model repository for TensorRT-LLM's PyTorch backend.

Layout, as upstream's template (triton_backend/all_models/llmapi/tensorrt_llm/ of the version):

    <repo>/tensorrt_llm/config.pbtxt     written here: a ModelConfig with the version's tensors, via text_format
    <repo>/tensorrt_llm/1/model.yaml     written here: the LLM-API options + triton_config
    <repo>/tensorrt_llm/1/model.py       NOT shipped: upstream's, from the Triton image at serve time
    <repo>/tensorrt_llm/1/helpers.py     (same)

In a deployment the repository is read-only (the artifact mount), so the image's launcher builds a serving root of
links to both (llmapi_serving_links). This host's tritonserver has no TensorRT-LLM, so a local target does not
serve it (the plan stage refuses a local benchmark of it).

The `-trtllm-python-py3` images carry upstream's model under /app/all_models/llmapi/tensorrt_llm (facts in
data/llm_api.json, `llmapi.model_in_image`). config.pbtxt repeats model.yaml's max_batch_size and decoupled:
upstream's model.py sets them only in auto_complete_config, which tritonserver skips under
--disable-auto-complete-config, and upstream's launch_triton_server.py always passes that flag; equal values
pass the Python backend's auto-complete checks too (set_max_batch_size / set_model_transaction_policy).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

import yaml
from google.protobuf import text_format
from pydantic import BaseModel, ConfigDict, Field
from tritonclient.grpc import model_config_pb2 as mc

from trtllm_oci.llm_api.facts import LlmApiError, llm_api_facts
from trtllm_oci.llm_api.options import LlmApiOptions, render_options

MODEL_NAME = "tensorrt_llm"
MODEL_YAML = "model.yaml"


class LlmapiRepoOptions(BaseModel):
    """The Triton side of the llmapi model (model.yaml `triton_config` and the instance group)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    decoupled: bool = Field(False, description="True for streaming (generate_stream)")
    # Upstream's template: "The current implementation does not support batching" (model.yaml, JIRA-4496).
    triton_max_batch_size: int = Field(0, ge=0)
    instance_count: int = Field(1, ge=1)
    cancellation_check_period_ms: int | None = Field(None, ge=1)


class LlmapiRepository(BaseModel):
    root: Path
    config_pbtxt: Path
    model_yaml: Path
    upstream_code: list[str] = Field(description="upstream's files the serving image links in beside model.yaml")
    image_model_dir: str


def build_llmapi_config(trtllm_version: str, repo_options: LlmapiRepoOptions) -> mc.ModelConfig:
    llmapi = llm_api_facts(trtllm_version).llmapi
    config = mc.ModelConfig(
        name=MODEL_NAME, backend="python", max_batch_size=repo_options.triton_max_batch_size
    )
    config.model_transaction_policy.decoupled = repo_options.decoupled
    group = config.instance_group.add()
    group.kind = mc.ModelInstanceGroup.KIND_CPU
    group.count = repo_options.instance_count
    for spec in llmapi.inputs:
        tensor = config.input.add(
            name=spec.name, data_type=mc.DataType.Value(spec.data_type), optional=spec.optional
        )
        tensor.dims.extend(spec.dims)
    for spec in llmapi.outputs:
        tensor = config.output.add(name=spec.name, data_type=mc.DataType.Value(spec.data_type))
        tensor.dims.extend(spec.dims)
    return config


def llmapi_model_yaml(
    model_path: str, options: LlmApiOptions, trtllm_version: str, repo_options: LlmapiRepoOptions
) -> dict[str, Any]:
    """model.yaml: `model`, `backend`, the LLM-API options (checked), and `triton_config` (checked)."""
    facts = llm_api_facts(trtllm_version)
    llm_args = {"model": model_path, "backend": "pytorch", **render_options(options, trtllm_version)}
    facts.check_option_keys(llm_args)
    triton_config: dict[str, Any] = {
        "max_batch_size": repo_options.triton_max_batch_size,
        "decoupled": repo_options.decoupled,
    }
    if repo_options.cancellation_check_period_ms is not None:
        triton_config["cancellation_check_period_ms"] = repo_options.cancellation_check_period_ms
    unknown = sorted(set(triton_config) - set(facts.llmapi.triton_config_keys))
    if unknown:
        raise LlmApiError(
            f"the llmapi model.py of TensorRT-LLM {facts.version} reads no triton_config key {unknown}; "
            f"it reads {sorted(facts.llmapi.triton_config_keys)}"
        )
    return {**llm_args, "triton_config": triton_config}


def upstream_code_files(trtllm_version: str) -> list[str]:
    """The Python files of upstream's llmapi model version directory (e.g. ['model.py', 'helpers.py'])."""
    files = llm_api_facts(trtllm_version).llmapi.model_in_image.files
    return [PurePosixPath(f).name for f in files if f.startswith("1/") and f.endswith(".py")]


def write_llmapi_repository(
    out_dir: Path,
    model_path: str,
    options: LlmApiOptions,
    trtllm_version: str,
    repo_options: LlmapiRepoOptions | None = None,
    *,
    overwrite: bool = False,
) -> LlmapiRepository:
    """Write `<out_dir>/tensorrt_llm/{config.pbtxt,1/model.yaml}` atomically (staged beside it, then renamed).

    `model_path` is the checkpoint as the server will see it (e.g. under /opt/ds/model/deployed_model/).
    """
    repo_options = repo_options or LlmapiRepoOptions()
    out_dir = Path(out_dir).absolute()
    if out_dir.exists() and not overwrite:
        raise LlmApiError(f"output dir {out_dir} already exists; remove it or pass overwrite=True")
    config = build_llmapi_config(trtllm_version, repo_options)
    model_yaml = llmapi_model_yaml(model_path, options, trtllm_version, repo_options)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.writing-", dir=out_dir.parent))
    try:
        version_dir = staging / MODEL_NAME / "1"
        version_dir.mkdir(parents=True)
        header = (
            f"# Generated by trtllm-oci for TensorRT-LLM {trtllm_version} (llmapi model, PyTorch backend).\n"
            f"# 1/model.py and 1/helpers.py come from the Triton image at serve time.\n"
        )
        (staging / MODEL_NAME / "config.pbtxt").write_text(header + text_format.MessageToString(config))
        (version_dir / MODEL_YAML).write_text(yaml.safe_dump(model_yaml, sort_keys=False))
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return LlmapiRepository(
        root=out_dir,
        config_pbtxt=out_dir / MODEL_NAME / "config.pbtxt",
        model_yaml=out_dir / MODEL_NAME / "1" / MODEL_YAML,
        upstream_code=upstream_code_files(trtllm_version),
        image_model_dir=llm_api_facts(trtllm_version).llmapi.model_in_image.path,
    )


def llmapi_serving_links(trtllm_version: str, repository_dir: str) -> dict[str, str]:
    """The links that make a serving root a loadable llmapi repository: config.pbtxt and 1/model.yaml from the
    deployed (read-only) `repository_dir`, 1/model.py and 1/helpers.py from the Triton image.

    Triton's Python backend runs `<repository>/tensorrt_llm/<version>/model.py` (triton-inference-server/
    python_backend:src/stub_launcher.cc@f9088ff6, model_path_), puts that directory on sys.path (so model.py's
    `from helpers import ...` finds helpers.py beside it), and get_model_dir() is that path minus the file name, as
    a string, links not resolved (src/pb_stub.cc@f9088ff6 ModelContext::Init, StubSetup). model.py reads model.yaml
    from `os.path.join(pb_utils.get_model_dir(), 'model.yaml')` (NVIDIA/TensorRT-LLM:triton_backend/all_models/
    llmapi/tensorrt_llm/1/model.py@b35ac1b64368513d215c57d2ed01d62d910df8da get_model_config). So one version
    directory of links serves both halves."""
    image_dir = PurePosixPath(llm_api_facts(trtllm_version).llmapi.model_in_image.path)
    deployed = PurePosixPath(repository_dir) / MODEL_NAME
    links = {f"{MODEL_NAME}/config.pbtxt": str(deployed / "config.pbtxt"),
             f"{MODEL_NAME}/1/{MODEL_YAML}": str(deployed / "1" / MODEL_YAML)}
    for name in upstream_code_files(trtllm_version):
        links[f"{MODEL_NAME}/1/{name}"] = str(image_dir / "1" / name)
    return links
