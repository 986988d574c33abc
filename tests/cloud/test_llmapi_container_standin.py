"""The llmapi stand-in (tests/standins/llmapi_container.py) refuses what upstream's llmapi model would not load,
and answers as it does. Each case is a release mistake a lenient stand-in would let through."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from tests.standins.llmapi_container import IMAGE_MODEL_DIR, LlmapiRepositoryContainer
from tests.standins.oci_services import MOUNT
from trtllm_oci.backends import backend_for
from trtllm_oci.backends.base import LaunchRequest, ServingPorts
from trtllm_oci.backends.pytorch import PyTorchServingOptions
from trtllm_oci.hub.snapshot import use_local_model
from trtllm_oci.llm_api.options import LlmApiOptions

DEPLOYED = f"{MOUNT}/repository"
IMAGE = {f"{IMAGE_MODEL_DIR}/1/model.py": b"# llmapi model.py\n", f"{IMAGE_MODEL_DIR}/1/helpers.py": b"# helpers\n"}
STREAM = "/v2/models/tensorrt_llm/generate_stream"


def _options(streaming: bool = True) -> PyTorchServingOptions:
    return PyTorchServingOptions(frontend="triton", served_model_name="tiny", llm_api=LlmApiOptions(),
                                 trtllm_version="1.2.1", streaming=streaming, deploy_root=DEPLOYED, materialize=True)


@pytest.fixture
def release(tiny_model_dir: Path, tmp_path: Path):
    """(the mounted files of an assembled llmapi release, its deployment cmd)."""
    def make(streaming: bool = True, edit=None):
        root = tmp_path / f"repo-{streaming}"
        backend = backend_for("pytorch")
        backend.write_serving_config(tiny_model_dir, use_local_model(tiny_model_dir), root, _options(streaming))
        if edit is not None:
            edit(root / "model_repository" / "tensorrt_llm")
        mounted = {f"{DEPLOYED}/{p.relative_to(root).as_posix()}": (lambda p=p: p.read_bytes())
                   for p in root.rglob("*") if p.is_file()}
        cmd = backend.launch_command(LaunchRequest(deploy_root=DEPLOYED, trtllm_version="1.2.1", world_size=1,
                                                   ports=ServingPorts(), options=_options(streaming)))
        return mounted, cmd
    return make


def _load(mounted, cmd, image=IMAGE, shape="VM.GPU.A10.1"):
    standin = SimpleNamespace(mounted_files=lambda model_id: mounted)
    md = {"modelDeploymentConfigurationDetails": {
        "modelConfigurationDetails": {"modelId": "m1", "instanceConfiguration": {"instanceShapeName": shape}},
        "environmentConfigurationDetails": {"cmd": cmd, "image": "iad.ocir.io/ns/r:t", "imageDigest": "sha256:0"}}}
    container = LlmapiRepositoryContainer(read_image=lambda s, ref, digest: dict(image))
    return container.load(standin, md)


def _events(payload) -> list[dict]:
    return [json.loads(chunk.removeprefix("data: ")) for chunk in payload]


def test_a_release_as_assembled_loads_and_streams_the_whole_text_so_far(release):
    loaded = _load(*release())
    assert not isinstance(loaded, str), loaded
    status, payload = loaded.answer("POST", STREAM, {"text_input": "hi", "sampling_param_max_tokens": 3,
                                                     "streaming": True,
                                                     "sampling_param_exclude_input_from_output": True})
    texts = [e["text_output"] for e in _events(payload)]
    assert status == 200 and len(texts) == 3 and texts[1].startswith(texts[0]) and texts[2].startswith(texts[1])
    # The ensemble's names are no inputs of this model: request parameters, which model.py ignores.
    status, payload = loaded.answer("POST", STREAM, {"text_input": "hi", "max_tokens": 3, "stream": True})
    [final] = _events(payload)
    assert status == 200 and final["text_output"].startswith("hi")  # the default keeps the prompt
    status, answer = loaded.answer("POST", STREAM, {"text_input": "hi", "sampling_param_max_tokens": "3"})
    assert status == 400 and "TYPE_INT32" in answer["error"]


def test_streaming_on_a_model_that_is_not_decoupled_is_refused(release):
    loaded = _load(*release(streaming=False))
    assert not isinstance(loaded, str), loaded
    status, answer = loaded.answer("POST", STREAM, {"text_input": "hi", "streaming": True})
    assert status == 400 and "only supported in decoupled mode" in answer["error"]


def _drop_link(name):
    def change(cmd):
        i = cmd.index(next(a for a in cmd if a.startswith(f"{name}=")))
        return cmd[:i - 1] + cmd[i + 1:]
    return change


def _relink(name, target):
    return lambda cmd: [f"{name}={target}" if a.startswith(f"{name}=") else a for a in cmd]


@pytest.mark.parametrize(("change", "image", "refusal"), [
    (_drop_link("tensorrt_llm/1/model.py"), IMAGE, "unable to find '/tmp/trtllm-oci/serving/tensorrt_llm/1/model.py'"),
    (_relink("tensorrt_llm/1/model.py", f"{DEPLOYED}/serving.json"), IMAGE, "is not the llmapi model.py"),
    (_drop_link("tensorrt_llm/1/helpers.py"), IMAGE, "No module named 'helpers'"),
    (_drop_link("tensorrt_llm/1/model.yaml"), IMAGE, "'model.yaml' containing TRT-LLM engine args not found"),
    (lambda cmd: cmd, {}, f"--link tensorrt_llm/1/helpers.py: {IMAGE_MODEL_DIR}/1/helpers.py does not exist"),
    (lambda cmd: [*cmd, "--", "trtllm-serve", "/x"], IMAGE, "launch.py"),
])
def test_a_repository_missing_what_upstreams_model_needs_does_not_load(release, change, image, refusal):
    mounted, cmd = release()
    loaded = _load(mounted, change(cmd), image)
    assert isinstance(loaded, str) and refusal in loaded, loaded


def _yaml_edit(update):
    def edit(model_dir: Path):
        path = model_dir / "1" / "model.yaml"
        data = yaml.safe_load(path.read_text())
        update(data)
        path.write_text(yaml.safe_dump(data))
    return edit


def _pbtxt_edit(old, new):
    def edit(model_dir: Path):
        path = model_dir / "config.pbtxt"
        text = path.read_text()
        assert old in text
        path.write_text(text.replace(old, new, 1))
    return edit


@pytest.mark.parametrize(("edit", "refusal"), [
    (_yaml_edit(lambda d: d.update(max_tokens_in_paged_kv_cache=10)), "TorchLlmArgs: extra inputs"),
    (_yaml_edit(lambda d: d.update(kv_cache_config={"fraction": 0.5})), "KvCacheConfig: extra inputs"),
    (_yaml_edit(lambda d: d["triton_config"].pop("decoupled")), "KeyError: 'decoupled'"),
    (_yaml_edit(lambda d: d["triton_config"].update(decoupled=False)), "config.pbtxt decoupled True but model.yaml"),
    (_yaml_edit(lambda d: d["triton_config"].update(streaming=True)), "read by no model.py"),
    (_yaml_edit(lambda d: d.update(model=f"{DEPLOYED}/elsewhere")), "is not a Hugging Face checkpoint"),
    (_yaml_edit(lambda d: d.update(tensor_parallel_size=2)), "but VM.GPU.A10.1 has 1 GPUs"),
    (_pbtxt_edit('name: "sampling_param_max_tokens"', 'name: "max_tokens"'), "not the llmapi model's"),
    (_pbtxt_edit('backend: "python"', 'backend: "tensorrtllm"'), "python backend model"),
])
def test_configs_upstreams_model_would_refuse_do_not_load(release, edit, refusal):
    loaded = _load(*release(edit=edit))
    assert isinstance(loaded, str) and refusal in loaded, loaded
