"""The trtllm-serve container stand-in refuses what trtllm-serve 1.2.1 in a Model Deployment would not start with,
so a flow test that passes against it has sent a command the real server takes."""

from __future__ import annotations

import pytest

from tests.standins.oci_services import MOUNT
from tests.standins.openai_server import OpenAIStandIn
from tests.standins.trtllm_serve_container import TrtllmServeContainer

CHECKPOINT = f"{MOUNT}/repository/tiny-llama"
OPTIONS = f"{MOUNT}/repository/llm_api_options.yaml"


class _Mounted:
    def __init__(self, options_yaml: bytes = b"kv_cache_config:\n  free_gpu_memory_fraction: 0.85\n") -> None:
        self.files = {f"{CHECKPOINT}/config.json": b"{}", f"{CHECKPOINT}/model.safetensors": b"",
                      OPTIONS: options_yaml}

    def mounted_files(self, model_id: str):
        return {path: (lambda d=data: d) for path, data in self.files.items()}


def _md(cmd: list[str], *, port: int = 8080, shape: str = "VM.GPU.A10.1", health: str = "/health",
        predict: str = "/v1/chat/completions") -> dict:
    return {"modelDeploymentConfigurationDetails": {
        "modelConfigurationDetails": {"modelId": "m", "instanceConfiguration": {"instanceShapeName": shape}},
        "environmentConfigurationDetails": {
            "cmd": cmd, "serverPort": port, "healthCheckPort": port,
            "environmentVariables": {"MODEL_DEPLOY_HEALTH_ENDPOINT": health, "MODEL_DEPLOY_PREDICT_ENDPOINT": predict}},
    }}


GOOD = ["trtllm-serve", CHECKPOINT, "--host", "0.0.0.0", "--port", "8080", "--backend", "pytorch",
        "--max_batch_size", "8", "--extra_llm_api_options", OPTIONS]


@pytest.fixture
def container():
    return TrtllmServeContainer(OpenAIStandIn())


def test_the_release_command_starts_and_serves_under_the_directory_name(container):
    loaded = container.load(_Mounted(), _md(GOOD))
    assert not isinstance(loaded, str), loaded
    assert container.server.served_model == "tiny-llama"
    assert container.started[0]["llm_api_options"] == {"kv_cache_config": {"free_gpu_memory_fraction": 0.85}}


def _without(flag: str) -> list[str]:
    i = GOOD.index(flag)
    return GOOD[:i] + GOOD[i + 2:]


@pytest.mark.parametrize(("cmd", "md", "mounted", "why"), [
    (_without("--host"), {}, {}, "listens on localhost"),
    ([*GOOD[:2], "--served_model_name", "x", *GOOD[2:]], {}, {}, "No such option: --served_model_name"),
    (["python3", *GOOD[1:]], {}, {}, "is not trtllm-serve"),
    (GOOD, {"port": 9000}, {}, "serverPort 9000; trtllm-serve listens on 8080"),
    (_without("--port"), {}, {}, "listens on 8000"),
    ([*GOOD[:2], "--tp_size", "2", *GOOD[2:]], {}, {}, "2 ranks, but VM.GPU.A10.1 has 1 GPUs"),
    (GOOD, {"health": "/v2/health/ready"}, {}, "MODEL_DEPLOY_HEALTH_ENDPOINT /v2/health/ready"),
    (GOOD, {}, {"options_yaml": b"kv_cache_config:\n  free_gpu_mem_fraction: 0.8\n"}, "KvCacheConfig: extra"),
    (GOOD, {}, {"options_yaml": b"max_batch: 8\n"}, "TorchLlmArgs: extra inputs are not permitted: \\['max_batch'\\]"),
    ([GOOD[0], f"{MOUNT}/repository", *GOOD[2:]], {}, {}, "holds no config.json"),
], ids=["loopback", "flag-of-a-later-version", "not-trtllm-serve", "port", "default-port", "tp-over-gpus", "health",
        "kv-key", "llm-args-key", "model-dir"])
def test_what_trtllm_serve_would_not_start_with_fails_the_bootstrap(container, cmd, md, mounted, why):
    import re

    problem = container.load(_Mounted(**mounted), _md(cmd, **md))
    assert isinstance(problem, str) and re.search(why, problem), problem


def test_chat_on_a_checkpoint_without_a_chat_template_is_a_400_and_completions_still_answer(container):
    mounted = _Mounted()
    with container.server:
        plain = container.load(mounted, _md(GOOD))
        status, body = plain.answer("POST", "/v1/chat/completions", {
            "model": "tiny-llama", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2})
        assert status == 400 and body["type"] == "BadRequestError" and "chat_template is not set" in body["message"]
        status, _ = plain.answer("POST", "/v1/completions", {"model": "tiny-llama", "prompt": "hi", "max_tokens": 2})
        assert status == 200

        templated = TrtllmServeContainer(container.server)
        mounted.files[f"{CHECKPOINT}/chat_template.jinja"] = b"{{ messages[0]['content'] }}"
        loaded = templated.load(mounted, _md(GOOD))
        status, _ = loaded.answer("POST", "/v1/chat/completions", {
            "model": "tiny-llama", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2})
        assert status == 200
