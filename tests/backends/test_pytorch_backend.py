"""The PyTorch backend on the backend axis: spec rules, the checkpoint through the artifact cache, the serving
config (trtllm-serve or Triton's llmapi model), the serving command, and `trtllm-oci serve` of the result."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import yaml

from trtllm_oci.backends import backend_for
from trtllm_oci.backends.base import BuildContext, LaunchRequest, ServingPorts, read_serving_config
from trtllm_oci.backends.pytorch import PyTorchServingOptions
from trtllm_oci.build.host import BuildHost
from trtllm_oci.build_options import BuildRequest, Quantization, QuantizationSpec
from trtllm_oci.cache.local_store import LocalEngineStore
from trtllm_oci.errors import InputError, SpecError
from trtllm_oci.hub.snapshot import use_local_model
from trtllm_oci.llm_api.facts import llm_api_facts
from trtllm_oci.llm_api.options import LlmApiOptions
from trtllm_oci.spec import parse_spec

VERSION = "1.2.1"


# Limits within the tiny model's 512-token context (a longer max_seq_len is refused by the plan's checks).
TINY_CONTEXT = {"max_seq_len": 512, "max_input_len": 256}


def spec_of(**fields: object):
    return parse_spec({"model": {"local_dir": "/models/m"}, **fields})


# ------------------------------------------------------------------------------------------ spec rules


def test_a_new_spec_serves_the_checkpoint_and_old_engine_specs_keep_their_meaning() -> None:
    assert spec_of().serving.backend == "pytorch" and spec_of().serving.effective_frontend == "openai"
    assert spec_of(serving={"backend": "tensorrtllm"}).serving.backend == "tensorrt"
    # A spec pinned to an engine-only version that names no backend meant engines and still does.
    assert spec_of(trtllm_version="0.12.0").serving.backend == "tensorrt"


@pytest.mark.parametrize(("fields", "names"), [
    ({"quantization": {"method": "int8_sq"}}, ["int8_sq", "backend tensorrt"]),
    ({"quantization": {"kv_cache_dtype": "int8"}}, ["int8", "fp8"]),
    ({"serving": {"backend": "tensorrt", "frontend": "openai"}}, ["serving.frontend", "remove"]),
    ({"serving": {"backend": "pytorch"}, "trtllm_version": "0.14.0"}, ["0.14.0", "1.2.1"]),
    ({"serving": {"llm_api_options": {"kv_cache_cfg": {}}}}, ["kv_cache_cfg", "kv_cache_config"]),
    ({"quantization": {"method": "nvfp4"}, "target": {"kind": "local", "gpu_shape": "BM.GPU.H100.8"}},
     ["nvfp4", "Blackwell", "BM.GPU.H100.8"]),
    ({"quantization": {"method": "nvfp4"}, "serving": {"backend": "tensorrt"}}, ["nvfp4", "backend pytorch"]),
    ({"parallelism": {"tp": 4, "ep": 3}}, ["parallelism.ep=3", "parallelism.tp=4", "[1, 2, 4]"]),
    ({"parallelism": {"tp": 2, "ep": 2}, "serving": {"backend": "tensorrt"}}, ["parallelism.ep", "backend pytorch"]),
])
def test_impossible_combinations_are_refused_at_load_naming_the_field_and_the_fix(fields, names) -> None:
    with pytest.raises(SpecError) as err:
        spec_of(**fields)
    for name in names:
        assert name in str(err.value)


# ------------------------------------------------------------------------------------ artifact


def _context() -> BuildContext:
    return BuildContext(host=BuildHost(runner="local"), model_family="llama", log=lambda line: None)


def _request(model, **quant: object) -> BuildRequest:
    return BuildRequest(model_commit_sha=model.commit_sha, trtllm_version=VERSION,
                        quantization=QuantizationSpec(**quant))


def test_the_checkpoint_as_it_is_goes_through_the_cache_once(tiny_model_dir: Path, tmp_path: Path) -> None:
    model = use_local_model(tiny_model_dir)
    store = LocalEngineStore(tmp_path / "cache")
    backend = backend_for("pytorch")
    first = backend.prepare_artifact(_request(model), model, store, _context())
    again = backend.prepare_artifact(_request(model), model, store, _context())
    assert (first.cache_hit, again.cache_hit) == (False, True)
    assert first.manifest.key == again.manifest.key
    assert first.manifest.artifact.backend == "pytorch"
    assert {f.path for f in first.manifest.files} == {f.path for f in model.files}
    assert first.manifest.inputs.build_options == {"backend": "pytorch", "artifact": "hf_checkpoint"}


def test_a_prequantized_checkpoint_is_served_as_it_is_and_not_quantized_again(tiny_model_dir: Path,
                                                                             tmp_path: Path) -> None:
    checkpoint = tmp_path / "fp8"
    shutil.copytree(tiny_model_dir, checkpoint)
    (checkpoint / "hf_quant_config.json").write_text(json.dumps({
        "producer": {"name": "modelopt", "version": "0.47.0"},
        "quantization": {"quant_algo": "FP8", "kv_cache_quant_algo": None, "exclude_modules": ["lm_head"]}}))
    model = use_local_model(checkpoint)
    store = LocalEngineStore(tmp_path / "cache")
    backend = backend_for("pytorch")
    prepared = backend.prepare_artifact(_request(model), model, store, _context())
    assert prepared.manifest.inputs.quantization == "fp8"  # recognised, and keyed as what it is
    with pytest.raises(InputError, match="already quantized .*FP8.*method none"):
        backend.prepare_artifact(_request(model, method=Quantization.FP8), model, store, _context())


def test_quantizing_without_a_calibration_set_names_the_field(tiny_model_dir: Path, tmp_path: Path) -> None:
    model = use_local_model(tiny_model_dir)
    with pytest.raises(InputError, match="quantization.calib_dataset"):
        backend_for("pytorch").prepare_artifact(_request(model, method=Quantization.FP8), model,
                                                LocalEngineStore(tmp_path / "cache"), _context())


# ------------------------------------------------------------------------------------ serving config


def _options(frontend: str = "openai", tp: int = 1, deploy_root: str | None = None) -> PyTorchServingOptions:
    return PyTorchServingOptions(frontend=frontend, served_model_name="tiny-chat", trtllm_version=VERSION,
                                 llm_api=LlmApiOptions(tensor_parallel_size=tp, max_batch_size=8, max_seq_len=512,
                                                       extra={"enable_iter_perf_stats": True}),
                                 deploy_root=deploy_root)


def test_the_openai_serving_config_names_the_checkpoint_after_the_served_model(tiny_model_dir: Path,
                                                                               tmp_path: Path) -> None:
    model = use_local_model(tiny_model_dir)
    config = backend_for("pytorch").write_serving_config(tiny_model_dir, model, tmp_path / "repo", _options())
    assert config.checkpoint_dir == tmp_path / "repo" / "tiny-chat"  # trtllm-serve 1.2.1 serves it by that name
    assert (config.checkpoint_dir / "config.json").is_file()
    assert read_serving_config(tmp_path / "repo") == config
    options = yaml.safe_load(config.options_file.read_text())
    llm_api_facts(VERSION).check_option_keys(options)  # every key is one 1.2.1 accepts
    assert options["enable_iter_perf_stats"] is True
    assert "tensor_parallel_size" not in options  # passed as --tp_size: each option in exactly one place


def test_the_llmapi_triton_repository_points_at_the_deployed_checkpoint(tiny_model_dir: Path,
                                                                        tmp_path: Path) -> None:
    model = use_local_model(tiny_model_dir)
    deployed = "/opt/ds/model/deployed_model/repository"
    config = backend_for("pytorch").write_serving_config(tiny_model_dir, model, tmp_path / "repo",
                                                         _options("triton", tp=2, deploy_root=deployed))
    assert config.frontend == "triton" and config.model_repository == tmp_path / "repo" / "model_repository"
    model_yaml = yaml.safe_load((config.model_repository / "tensorrt_llm" / "1" / "model.yaml").read_text())
    assert model_yaml["model"] == f"{deployed}/tiny-chat"
    assert model_yaml["tensor_parallel_size"] == 2
    assert (config.model_repository / "tensorrt_llm" / "config.pbtxt").is_file()


def test_the_llmapi_cmd_links_the_deployed_configs_with_the_images_model_code(tiny_model_dir: Path,
                                                                             tmp_path: Path) -> None:
    """The artifact mount is read-only and holds no model.py; the launcher joins the deployed config.pbtxt and
    model.yaml with upstream's 1/model.py and 1/helpers.py from the image, in the version directory Triton loads."""
    import subprocess
    import sys

    from trtllm_oci.cloud.artifact import SERVING_ROOT
    from trtllm_oci.image.build import SERVING_CONTEXT

    deployed = tmp_path / "mount" / "repository"
    backend_for("pytorch").write_serving_config(tiny_model_dir, use_local_model(tiny_model_dir), deployed,
                                                _options("triton", deploy_root=str(deployed)))
    image = llm_api_facts(VERSION).llmapi.model_in_image.path
    assert image == "/app/all_models/llmapi/tensorrt_llm"
    cmd = backend_for("pytorch").launch_command(LaunchRequest(
        deploy_root=str(deployed), trtllm_version=VERSION, world_size=2, ports=ServingPorts(),
        options=_options("triton", tp=2, deploy_root=str(deployed))))
    assert cmd[:2] == ["python3", "/opt/trtllm_oci/launch.py"] and "--" not in cmd
    assert cmd[cmd.index("--model-repository") + 1] == SERVING_ROOT == cmd[cmd.index("--serving-root") + 1]
    assert cmd[cmd.index("--world-size") + 1] == "1"  # one process; tensor_parallel_size is in model.yaml
    links = dict(cmd[i + 1].split("=", 1) for i, arg in enumerate(cmd) if arg == "--link")
    assert links == {
        "tensorrt_llm/config.pbtxt": f"{deployed}/model_repository/tensorrt_llm/config.pbtxt",
        "tensorrt_llm/1/model.yaml": f"{deployed}/model_repository/tensorrt_llm/1/model.yaml",
        "tensorrt_llm/1/model.py": f"{image}/1/model.py",
        "tensorrt_llm/1/helpers.py": f"{image}/1/helpers.py",
    }
    # Run the image's launcher on it, the image's files standing under tmp_path.
    shipped = tmp_path / "image" / "1"
    shipped.mkdir(parents=True)
    for name in ("model.py", "helpers.py"):
        (shipped / name).write_text(f"# upstream {name}\n")
    root = tmp_path / "serving"
    argv = [a.replace(f"{image}/", f"{tmp_path}/image/").replace(SERVING_ROOT, str(root)) for a in cmd[2:]]
    ran = subprocess.run([sys.executable, str(SERVING_CONTEXT / "trtllm_oci_launch.py"), *argv,
                          "--tritonserver", "/bin/true"], capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr
    version_dir = root / "tensorrt_llm" / "1"
    assert (version_dir / "model.py").read_text() == "# upstream model.py\n"
    assert yaml.safe_load((version_dir / "model.yaml").read_text())["backend"] == "pytorch"
    assert (root / "tensorrt_llm" / "config.pbtxt").read_text().startswith("# Generated by trtllm-oci")
    # Without the image's model code the container stops before Triton starts, naming the file.
    (shipped / "helpers.py").unlink()
    missing = subprocess.run([sys.executable, str(SERVING_CONTEXT / "trtllm_oci_launch.py"),
                              *[a.replace(str(root), str(tmp_path / "s2")) for a in argv],
                              "--tritonserver", "/bin/true"], capture_output=True, text=True)
    assert missing.returncode == 2 and "helpers.py" in missing.stderr and "does not exist" in missing.stderr


@pytest.mark.parametrize("tp", [1, 8])
def test_the_serve_command_is_trtllm_serve_on_the_deployed_paths_and_stays_short(tp: int) -> None:
    root = "/opt/ds/model/deployed_model/repository"
    argv = backend_for("pytorch").launch_command(LaunchRequest(
        deploy_root=root, trtllm_version=VERSION, world_size=tp, ports=ServingPorts(http=8080),
        options=_options(tp=tp, deploy_root=root)))
    assert argv[:2] == ["trtllm-serve", f"{root}/tiny-chat"]
    assert argv[argv.index("--port") + 1] == "8080" and argv[argv.index("--backend") + 1] == "pytorch"
    assert argv[argv.index("--extra_llm_api_options") + 1] == f"{root}/llm_api_options.yaml"
    assert argv[argv.index("--tp_size") + 1] == str(tp)
    assert len(" ".join(argv).encode()) < 1024  # BYOC cmd + entrypoint must stay under 2048 bytes
    served = set(llm_api_facts(VERSION).serve.names())
    assert {a for a in argv if a.startswith("--")} <= served


def test_routes_are_openai_for_trtllm_serve_and_v2_for_the_llmapi_model() -> None:
    backend = backend_for("pytorch")
    openai = backend.routes(True, options=_options())
    assert (openai.predict.path, openai.health, openai.protocol) == ("/v1/chat/completions", "/health", "openai")
    assert backend.predict_model(True, options=_options()) == "tiny-chat"
    assert {r.path for r in openai.extra} >= {"/v1/completions", "/v1/models", "/metrics"}
    triton = backend.routes(True, options=_options("triton"))
    assert triton.predict.path == "/v2/models/tensorrt_llm/generate_stream"


# ------------------------------------------------------------------------------ trtllm-oci serve


def test_trtllm_oci_serve_serves_a_pytorch_release_with_the_openai_smoke_server(tiny_model_dir: Path,
                                                                                tmp_path: Path) -> None:
    from trtllm_oci.release.serving import free_port

    model = use_local_model(tiny_model_dir)
    backend_for("pytorch").write_serving_config(tiny_model_dir, model, tmp_path / "repo", _options())
    port = free_port()
    trtllm_oci = Path(sys.executable).with_name("trtllm-oci")
    server = subprocess.Popen([str(trtllm_oci), "serve", str(tmp_path / "repo"), "--http-port", str(port),
                               "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            try:
                answer = requests.get(f"http://127.0.0.1:{port}/v1/models", timeout=5)
                if answer.ok:
                    break
            except requests.ConnectionError:
                pass
            assert server.poll() is None, server.stderr.read()[-2000:] if server.stderr else ""
            time.sleep(0.5)
        assert [m["id"] for m in answer.json()["data"]] == ["tiny-chat"]
        completion = requests.post(f"http://127.0.0.1:{port}/v1/completions", timeout=120,
                                   json={"model": "tiny-chat", "prompt": "the quick brown", "max_tokens": 4})
        assert completion.ok and completion.json()["usage"]["completion_tokens"] >= 1
    finally:
        server.send_signal(signal.SIGTERM)
        out, err = server.communicate(timeout=60)
    assert server.returncode == 0, err[-2000:]
    assert "CPU OpenAI smoke server" in out and "not TensorRT-LLM" in out  # it says what it started
    assert "stopped" in out


def test_expert_parallel_on_a_dense_model_is_refused_by_the_plan_before_any_gpu_time() -> None:
    from trtllm_oci.model_facts import load_model_facts
    from trtllm_oci.release.plan import ReleaseCheckError, plan_release

    configs = Path(__file__).parents[1] / "data" / "hf_configs"
    spec = spec_of(parallelism={"tp": 2, "ep": 2}, target={"kind": "local", "gpu_shape": "BM.GPU.H100.8"})
    with pytest.raises(ReleaseCheckError, match=r"dense model .*remove parallelism\.ep"):
        plan_release(spec, load_model_facts(configs / "llama-2-7b-hf.json"))
    moe = plan_release(spec, load_model_facts(configs / "mixtral-8x7b-v0.1.json")).plan
    assert moe is not None and moe.fits


# ------------------------------------------------------------- a pre-quantized checkpoint on the Hub


@pytest.fixture
def quantized_hub(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    import huggingface_hub

    from tests.standins.hf_hub import HfHubStandIn, StandInRepo

    config = json.loads((tiny_model_dir / "config.json").read_text())
    nvfp4 = json.dumps({"producer": {"name": "modelopt", "version": "0.47.0"},
                        "quantization": {"quant_algo": "NVFP4", "group_size": 16, "exclude_modules": ["lm_head"]}})
    unknown = json.dumps({**config, "quantization_config": {"quant_method": "made-up"}})
    sha = "e" * 40
    with HfHubStandIn() as hub:
        hub.add_repo(StandInRepo("acme/tiny-nvfp4", {sha: {"config.json": json.dumps(config).encode(),
                                                           "hf_quant_config.json": nvfp4.encode()}},
                                 refs={"main": sha}))
        hub.add_repo(StandInRepo("acme/tiny-unknown", {sha: {"config.json": unknown.encode()}}, refs={"main": sha}))
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))
        yield sha


def test_a_hub_checkpoint_whose_quantization_the_gpu_lacks_is_refused_by_the_plan(quantized_hub: str) -> None:
    from trtllm_oci.checkpoint.quant_config import QuantizationNotSupportedOnGpuError
    from trtllm_oci.release.model import checkpoint_quantization, model_facts
    from trtllm_oci.release.plan import plan_release
    from trtllm_oci.settings import current_settings

    settings = current_settings()
    for shape, fits in (("BM.GPU.H100.8", False), ("BM.GPU.B200.8", True)):
        spec = parse_spec({"model": {"hf_repo": "acme/tiny-nvfp4", "revision": quantized_hub},
                           "build": TINY_CONTEXT, "target": {"kind": "local", "gpu_shape": shape}})
        existing = checkpoint_quantization(spec.model, settings, None, VERSION)
        assert existing.quant_algo == "NVFP4"
        if fits:
            plan = plan_release(spec, model_facts(spec.model, settings, None), existing).plan
            assert plan is not None and plan.fits
        else:
            with pytest.raises(QuantizationNotSupportedOnGpuError, match="NVFP4"):
                plan_release(spec, model_facts(spec.model, settings, None), existing)


def test_an_unknown_quant_method_in_config_json_names_the_value(quantized_hub: str) -> None:
    from trtllm_oci.checkpoint.quant_config import CheckpointQuantError
    from trtllm_oci.release.model import checkpoint_quantization
    from trtllm_oci.settings import current_settings

    spec = parse_spec({"model": {"hf_repo": "acme/tiny-unknown", "revision": quantized_hub}})
    with pytest.raises(CheckpointQuantError, match="made-up"):
        checkpoint_quantization(spec.model, current_settings(), None, VERSION)
