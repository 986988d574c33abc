"""The trtllm-serve command line (and its YAML of LLM-API options) for one model and version.

serve.py merges the YAML over the flag values (update_llm_args_with_extra_dict: a top-level YAML key replaces
the flag's value, kv_cache_config is deep-merged), so each option is put in exactly one place: the short flags
below when the version has them, everything else in the YAML. Every flag is checked against the version's
extracted flag list. The argv stays short because OCI limits BYOC cmd + entrypoint to 2048 bytes.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any

import yaml

from trtllm_oci.llm_api.facts import LlmApiError, UnknownServeFlagError, llm_api_facts
from trtllm_oci.llm_api.options import LlmApiOptions, render_options

# LLM-API keys passed as flags (when the version has a flag that sets them); the rest go to the YAML.
FLAG_KEYS = (
    "tensor_parallel_size",
    "pipeline_parallel_size",
    "moe_expert_parallel_size",
    "max_batch_size",
    "max_num_tokens",
    "max_seq_len",
    "trust_remote_code",
)
SERVED_MODEL_NAME_FLAG = "--served_model_name"


@dataclass(frozen=True)
class ServeCommand:
    argv: tuple[str, ...]
    config: dict[str, Any] = field(default_factory=dict)
    config_path: str | None = None

    def config_yaml(self) -> str:
        return yaml.safe_dump(self.config, sort_keys=False)

    def shell(self) -> str:
        return shlex.join(self.argv)


def serve_command(
    model_path: str,
    options: LlmApiOptions,
    trtllm_version: str,
    *,
    config_path: str,
    host: str = "0.0.0.0",
    port: int = 8000,
    served_model_name: str | None = None,
) -> ServeCommand:
    """`trtllm-serve <model_path> --host --port --backend pytorch [--tp_size ...] [<yaml flag> config_path]`.

    `config_path` is where the caller writes ``ServeCommand.config_yaml()`` (only passed when non-empty).
    `served_model_name` needs a version whose serve has --served_model_name; without it trtllm-serve reports a
    local model directory by its base name (OpenAIServer: ``self.model = model_dir.name``), so name the directory.
    """
    if not 1 <= port <= 65535:
        raise LlmApiError(f"port={port} is not a TCP port; pick one in 1..65535")
    facts = llm_api_facts(trtllm_version)
    rendered = render_options(options, trtllm_version)
    argv = ["trtllm-serve", model_path]
    for flag, value in (("--host", host), ("--port", str(port)), ("--backend", "pytorch")):
        argv += [facts.require_flag(flag), value]
    config = dict(rendered)
    for key in FLAG_KEYS:
        if key not in config:
            continue
        setting_flag = facts.serve.flag_setting(key)
        if setting_flag is None:
            continue  # this version has no flag for it: it stays in the YAML
        flag = setting_flag
        value = config.pop(key)
        if isinstance(value, bool):
            if value:
                argv.append(flag)
        else:
            argv += [flag, str(value)]
    if served_model_name is not None:
        if SERVED_MODEL_NAME_FLAG not in facts.serve.names():
            raise UnknownServeFlagError(
                f"trtllm-serve of TensorRT-LLM {facts.version} has no {SERVED_MODEL_NAME_FLAG} (it arrived later, "
                "NVIDIA/TensorRT-LLM#11711); it serves a local model directory under the directory's base name, so "
                f"serve the checkpoint from a directory named {served_model_name!r} instead"
            )
        argv += [SERVED_MODEL_NAME_FLAG, served_model_name]
    if config:
        argv += [facts.require_flag(facts.serve.yaml_flag), config_path]
    return ServeCommand(argv=tuple(argv), config=config, config_path=config_path if config else None)
