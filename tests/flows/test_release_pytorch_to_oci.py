"""The `release` flow for the LLM API (serving.backend: pytorch) with an OCI target, end to end, on the real parts
that run here (Prefect API, Docker engine and registry standing in for OCIR, the OCI stand-in), as
tests/flows/test_release_to_oci.py does for engines.

The deployment's container is trtllm-serve as the stand-in models it (tests/standins/trtllm_serve_container.py):
it parses the deployment's cmd like trtllm-serve of the pinned version, checks the checkpoint and the --config YAML
inside the mounted artifact, and answers the OpenAI routes with the strict trtllm-serve stand-in. Each case asserts
what the services end up holding: the registry's manifest, the catalog's artifact, the deployment's cmd/env/routes,
the requests that reached the container, the report, and that teardown leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.cloud.conftest import COMPARTMENT, PROJECT, api_key, auth, clients, fast_sdk_waiter, standin  # noqa: F401
from tests.flows.test_release_to_oci import (  # noqa: F401
    OCIR_REPOSITORY,
    env_of,
    nothing_in_flight,
    oci_release_env,
    oci_target,
    pushed_serving_image,
    stand_in_triton_image,
)
from tests.standins.oci_services import MOUNT
from tests.standins.openai_server import OpenAIStandIn
from tests.standins.trtllm_serve_container import TrtllmServeContainer

pytestmark = [pytest.mark.prefect, pytest.mark.docker]


@pytest.fixture
def trtllm_serve(standin):  # noqa: F811
    """The deployment's container is trtllm-serve (for every image the service pulls in these cases)."""
    with OpenAIStandIn(first_token_delay_ms=2, inter_token_delay_ms=1) as server:
        container = TrtllmServeContainer(server)
        standin.default_container = container
        yield container


def pytorch_spec(service, model_dir: Path, name: str, **overrides):
    from trtllm_oci.spec import parse_spec

    data = {
        "name": name,
        "model": {"local_dir": str(model_dir)},
        "trtllm_version": "1.2.1",
        "serving": {"backend": "pytorch", "frontend": "openai", "streaming": True,
                    # Options without a trtllm-serve flag go to the --config YAML.
                    "kv_cache_free_gpu_mem_fraction": 0.85, "enable_kv_cache_reuse": True},
        "build": {"max_batch_size": 8, "max_input_len": 256, "max_seq_len": 512, "max_num_tokens": 1024},
        "benchmark": {"concurrency": [1, 2], "input_len": 16, "output_len": 8, "num_requests": 4,
                      "warmup_requests": 1},
        "target": oci_target(service, ocir_repository=f"trtllm-oci/{name}"),
    }
    for key, value in overrides.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) and isinstance(data.get(key), dict) else value
    return parse_spec(data)


# ---------------------------------------------------------------------------------------------- case 1


def test_trtllm_serve_release_pushes_deploys_benchmarks_and_tears_down_on_oci(
    prefect_api, tiny_chat_model_dir, oci_release_env, standin, registry, docker_client, trtllm_serve,  # noqa: F811
) -> None:
    from trtllm_oci.flows.release import release
    from trtllm_oci.flows.teardown import teardown
    from trtllm_oci.release.deployment import base_image

    # A chat model: the predict endpoint is /v1/chat/completions (serving.predict_api's default).
    spec = pytorch_spec(standin, tiny_chat_model_dir, "oci-trtllm-serve-tiny")
    assert base_image(spec) == "nvcr.io/nvidia/tensorrt-llm/release:1.2.1"
    base_id = stand_in_triton_image(docker_client, oci_release_env, base_image(spec))
    out = oci_release_env / "release"

    report = release(spec, out_dir=str(out))

    # The image: FROM the version's trtllm-serve release image, pushed to the registry behind OCIR.
    digest, labels, serving, canonical = pushed_serving_image(registry, docker_client, standin, spec, base_id)
    assert report.image == f"{canonical}@{digest}"

    # The catalog: one model whose artifact is the zip of the checkpoint and the LLM-API options (direct route).
    [model] = standin.live_models()
    zipped = (out / "model-artifact.zip").read_bytes()
    assert standin.artifacts[model["id"]] == zipped
    names = set(zipfile.ZipFile(io.BytesIO(zipped)).namelist())
    served = spec.serving.served_model_name or spec.model.short_name
    assert {f"repository/{served}/config.json", "repository/llm_api_options.yaml"} <= names
    assert any(n.startswith(f"repository/{served}/") and n.endswith(".safetensors") for n in names)

    # The deployment: trtllm-serve of 1.2.1 on the mounted checkpoint, its --config inside the mount.
    [md] = standin.live_deployments()
    assert md["lifecycleState"] == "ACTIVE" and md["id"] == report.deployment_id
    env = env_of(md)
    cmd = env["cmd"]
    assert cmd[:2] == ["trtllm-serve", f"{MOUNT}/repository/{served}"]
    assert cmd[cmd.index("--host") + 1] == "0.0.0.0"
    assert int(cmd[cmd.index("--port") + 1]) == env["serverPort"] == env["healthCheckPort"]
    # serve.py's YAML option is `--config` with its older alias `--extra_llm_api_options` (both at 1.2.1).
    [yaml_flag] = [arg for arg in cmd if arg in ("--config", "--extra_llm_api_options")]
    assert cmd[cmd.index(yaml_flag) + 1] == f"{MOUNT}/repository/llm_api_options.yaml"
    [started] = trtllm_serve.started
    options = yaml.safe_load(zipfile.ZipFile(io.BytesIO(zipped)).read("repository/llm_api_options.yaml"))
    assert started["llm_api_options"] == options
    variables = env["environmentVariables"]
    assert variables["SHM_SIZE"].endswith("g")
    image_bytes = serving.attrs["Size"]
    assert int(variables["STORAGE_SIZE_IN_GB"]) * 10**9 >= image_bytes + 2 * len(zipped)
    assert variables["MODEL_DEPLOY_PREDICT_ENDPOINT"] == "/v1/chat/completions"
    assert variables["MODEL_DEPLOY_HEALTH_ENDPOINT"] == "/health"
    assert env.get("predictApiSpecification") == "openai"
    # The openai specification allowlists the /v1 routes; only what it does not cover is registered.
    custom = {e["endpointUriSuffix"]: e["httpMethods"] for e in env.get("customHttpEndpoints") or []}
    assert "/health" in custom and not any(path.startswith("/v1/") for path in custom)

    # Smoke test and benchmark reached trtllm-serve through the signed predict routes with OpenAI bodies.
    bodies = [r.body for r in trtllm_serve.server.requests]
    assert bodies and all(body["model"] == served for body in bodies)
    assert len([r for r in trtllm_serve.server.requests if r.status == 200]) == len(bodies)
    # The smoke test on the chat route (the bare prefix: MODEL_DEPLOY_PREDICT_ENDPOINT), the benchmark's completions
    # bodies on their own route through the allowlisted suffix, streamed: a warm-up, then 4 per load point.
    assert len(standin.requests_to("POST", rf"^/{md['id']}/predictWithResponseStream$")) == 1
    assert len(standin.requests_to("POST", rf"^/{md['id']}/predictWithResponseStream/v1/completions$")) == 1 + 2 * 4
    assert [r.route for r in trtllm_serve.server.requests] == ["chat"] + ["completions"] * (1 + 2 * 4)
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary["transport"]) == {"oci_md+openai_completions"}
    assert list(summary["concurrency"]) == [1, 2]
    assert (summary["n_ok"] == 4).all() and (summary["n_err"] == 0).all()
    assert (summary["osl_mean"] == 8).all()
    assert report.benchmark is not None and report.benchmark["n_err_total"] == 0
    assert md["id"] in (out / "report.md").read_text()

    # Teardown: the release's deployment and model go; nothing else was created.
    nothing_in_flight(standin)
    removed = teardown(spec)
    assert removed.deleted_deployments == [md["id"]] and removed.deleted_models == [model["id"]]
    assert standin.live_deployments() == [] and standin.live_models() == []
    nothing_in_flight(standin)
    json.dumps(report.model_dump(mode="json"))  # the report stays serialisable with the OpenAI fields


# ---------------------------------------------------------------------------------------------- case 2

# Llama-3.2-1B's shape (meta-llama/Llama-3.2-1B config.json): 1.24e9 parameters, 2.47 GB in bf16, above the 2 GiB a
# direct upload takes. The weights are one sparse file: no byte of them is written, uploaded, downloaded or zipped.
ONE_B_CONFIG = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 2048,
                "intermediate_size": 8192, "num_hidden_layers": 16, "num_attention_heads": 32,
                "num_key_value_heads": 8, "head_dim": 64, "vocab_size": 128256, "max_position_embeddings": 131072,
                "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "tie_word_embeddings": True, "torch_dtype": "bfloat16",
                "bos_token_id": 1, "eos_token_id": 2}
ONE_B_WEIGHT_BYTES = 2_471_645_184  # model.safetensors of Llama-3.2-1B (bf16, tied embeddings)


@pytest.fixture
def one_b_checkpoint(tiny_model_dir, tmp_path) -> Path:
    """A Llama-3.2-1B-shaped checkpoint: its config, the tiny model's tokenizer, a sparse 2.47 GB safetensors."""
    import shutil

    out = tmp_path / "llama-1b-shaped"
    out.mkdir()
    for f in tiny_model_dir.iterdir():
        if f.is_file() and not f.name.endswith(".safetensors") and f.name != "config.json":
            shutil.copy2(f, out / f.name)
    (out / "config.json").write_text(json.dumps(ONE_B_CONFIG))
    with (out / "model.safetensors").open("wb") as fh:
        fh.truncate(ONE_B_WEIGHT_BYTES)
    assert (out / "model.safetensors").stat().st_blocks == 0
    return out


def seed_cached_checkpoint(spec, model_dir: Path, clients, service):  # noqa: F811
    """The checkpoint in the oci:// engine cache under the key the build stage computes, as an earlier run left it
    (a GPU host that quantized it, or a first release): small files as real objects, the sparse weights as the
    stand-in's size summary of an object (no byte of them sent). Returns the manifest."""
    from datetime import UTC, datetime

    from tests.standins.oci_services import SparseBody
    from trtllm_oci.backends.pytorch import checkpoint_cache_inputs, summarize_checkpoint_dir
    from trtllm_oci.cache.key import cache_key
    from trtllm_oci.cache.manifest import EngineFile, EngineManifest
    from trtllm_oci.cache.object_storage_store import MANIFEST_NAME
    from trtllm_oci.checkpoint.quant_config import read_checkpoint_quantization
    from trtllm_oci.hub.snapshot import use_local_model
    from trtllm_oci.release.artifact import build_request

    model = use_local_model(model_dir)
    inputs = checkpoint_cache_inputs(build_request(spec, model.commit_sha),
                                     read_checkpoint_quantization(model_dir, spec.trtllm_version))
    key = cache_key(inputs)
    prefix = f"cache/{key}/engine-20261201T000000Z-0000beef"
    files = []
    for f in model.files:
        path = model_dir / f.path
        size = path.stat().st_size
        if size > 2**20:
            files.append(EngineFile(path=f.path, size=size, sha256="0" * 64))
            service.objects[("engines", f"{prefix}/{f.path}")] = SparseBody(size, None, None)
        else:
            data = path.read_bytes()
            files.append(EngineFile(path=f.path, size=size, sha256=hashlib.sha256(data).hexdigest()))
            clients.object_storage.put_object(service.namespace, "engines", f"{prefix}/{f.path}", data)
    manifest = EngineManifest(key=key, uri=f"oci://engines@{service.namespace}/{prefix}/", files=files,
                              artifact=summarize_checkpoint_dir(model_dir), created_at=datetime.now(UTC),
                              inputs=inputs)
    clients.object_storage.put_object(service.namespace, "engines", f"cache/{key}/{MANIFEST_NAME}",
                                      manifest.model_dump_json(indent=2).encode())
    return manifest


def test_a_checkpoint_over_2_gib_in_the_oci_cache_is_served_by_reference_and_moves_no_weight_byte(
    prefect_api, one_b_checkpoint, oci_release_env, standin, registry, docker_client, clients,  # noqa: F811
    trtllm_serve,
) -> None:
    from trtllm_oci.cloud.artifact import SERVING_ROOT
    from trtllm_oci.flows.release import release
    from trtllm_oci.flows.teardown import teardown
    from trtllm_oci.model_facts import load_model_facts
    from trtllm_oci.release.deployment import artifact_route, base_image, estimated_artifact_bytes

    # A base model (its tokenizer has no chat template): the predict endpoint serves /v1/completions.
    spec = pytorch_spec(standin, one_b_checkpoint, "oci-trtllm-serve-1b",
                        serving={"served_model_name": "llama-1b", "predict_api": "completions"},
                        engine_cache={"uri": f"oci://engines@{standin.namespace}/cache"})
    estimate = estimated_artifact_bytes(spec, load_model_facts(one_b_checkpoint))
    assert estimate > 2 * 1024**3
    # The dry run and the pre-flight name the route before anything runs.
    route = artifact_route(spec, estimate)
    assert route.route == "by_reference" and "checkpoint files are already in oci://engines@" in route.reason
    manifest = seed_cached_checkpoint(spec, one_b_checkpoint, clients, standin)
    checkpoint_prefix = manifest.uri.split("/", 3)[3].rstrip("/")
    cache_objects = {name for (bucket, name) in standin.objects if bucket == "engines"}
    stand_in_triton_image(docker_client, oci_release_env, base_image(spec))
    mark = len(standin.received)
    out = oci_release_env / "release"

    report = release(spec, out_dir=str(out))

    # The build stage took the cached checkpoint; no weight byte went anywhere, nothing was zipped or exported.
    assert report.engine_cache_hit is True and report.engine_uri == manifest.uri
    requests = standin.received[mark:]
    weight_reads = [r["path"] for r in requests if r["method"] == "GET" and r["path"].endswith(".safetensors")]
    assert weight_reads == []
    assert sum(r["body_bytes"] for r in requests) < 2**20, "the release uploaded more than its small files"
    assert not (out / "model-artifact.zip").exists()
    assert not standin.requests_to("POST", r"/artifact$") and not standin.requests_to("POST", r"/exportArtifact$")
    local_weights = list(out.rglob("*.safetensors")) + list((oci_release_env / "home").rglob("*.safetensors"))
    assert local_weights and all(p.stat().st_blocks == 0 for p in local_weights), "a weight byte reached local disk"

    # The catalog model references the checkpoint in place, and the options file staged for this release.
    [model] = standin.live_models()
    assert model["isModelByReference"] is True and model["id"] not in standin.artifacts
    [checkpoint_ref, staged_ref] = standin.references[model["id"]]
    assert (checkpoint_ref["bucketName"], checkpoint_ref["prefix"]) == ("engines", checkpoint_prefix)
    staged = sorted(name[len(staged_ref["prefix"]) + 1:] for (bucket, name) in standin.objects
                    if name.startswith(staged_ref["prefix"] + "/"))
    assert "llm_api_options.yaml" in staged and not any(n.endswith(".safetensors") for n in staged)

    # The deployment: the launcher links the serving root, then trtllm-serve serves the directory named llama-1b.
    [md] = standin.live_deployments()
    assert md["lifecycleState"] == "ACTIVE"
    env = env_of(md)
    cmd = env["cmd"]
    assert cmd[:2] == ["python3", "/opt/trtllm_oci/launch.py"]
    links = dict(cmd[i + 1].split("=", 1) for i, arg in enumerate(cmd[:cmd.index("--")]) if arg == "--link")
    assert links["llama-1b"] == f"{MOUNT}/{checkpoint_prefix}"
    assert links["llm_api_options.yaml"] == f"{MOUNT}/{staged_ref['prefix']}/llm_api_options.yaml"
    serve = cmd[cmd.index("--") + 1:]
    assert serve[:2] == ["trtllm-serve", f"{SERVING_ROOT}/llama-1b"]
    assert serve[serve.index("--extra_llm_api_options") + 1] == f"{SERVING_ROOT}/llm_api_options.yaml"
    assert len(json.dumps(cmd, separators=(",", ":")).encode()) < 2048
    assert trtllm_serve.server.served_model == "llama-1b"
    assert int(env["environmentVariables"]["STORAGE_SIZE_IN_GB"]) * 10**9 >= ONE_B_WEIGHT_BYTES
    assert env["environmentVariables"]["MODEL_DEPLOY_PREDICT_ENDPOINT"] == "/v1/completions"
    # The smoke test sent a prompt on the predict route, the benchmark its completions bodies: no chat request.
    assert {r.route for r in trtllm_serve.server.requests} == {"completions"}

    summary = pd.read_csv(out / "summary.csv")
    assert (summary["n_ok"] == 4).all() and (summary["n_err"] == 0).all()

    # Teardown removes the deployment, model and staged files; the cached checkpoint stays whole.
    removed = teardown(spec)
    assert removed.deleted_deployments == [md["id"]] and removed.deleted_models == [model["id"]]
    assert {name for (bucket, name) in standin.objects if bucket == "engines"} == cache_objects
    assert not any(name.startswith(staged_ref["prefix"] + "/") for (_, name) in standin.objects)
    nothing_in_flight(standin)


# ---------------------------------------------------------------------------------------------- case 3


def stand_in_llmapi_triton_image(docker_client, tmp_path: Path, name: str) -> tuple[str, dict[str, str]]:
    """The version's `-trtllm-python-py3` Triton image as the stand-in knows it: the busybox stand-in of
    stand_in_triton_image plus the llmapi model's version directory where the image ships it
    (/app/all_models/llmapi/tensorrt_llm/1, data/llm_api.json `model_in_image`). Returns (image id, its files)."""
    from tests.docker.conftest import write_busybox_context
    from tests.flows.test_release_to_oci import Log
    from tests.standins.llmapi_container import write_llmapi_image_context
    from trtllm_oci.image.build import build_image

    context = write_busybox_context(tmp_path / "stand-in-triton-llmapi",
                                    "COPY python3 /usr/bin/python3\nCOPY app /app\n")
    (context / "python3").write_text('#!/bin/sh\necho "$*" >> /python3-calls.log\n')
    (context / "python3").chmod(0o755)
    files = write_llmapi_image_context(context)
    return build_image(context, "Dockerfile", name, None, None, docker_client, Log(), network_disabled=True), files


def test_the_llmapi_model_release_pushes_deploys_benchmarks_and_tears_down_on_oci(
    prefect_api, tiny_model_dir, oci_release_env, standin, registry, docker_client,  # noqa: F811
) -> None:
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2 as mc

    from tests.standins.llmapi_container import LlmapiRepositoryContainer
    from trtllm_oci.cloud.artifact import SERVING_ROOT
    from trtllm_oci.flows.release import release
    from trtllm_oci.flows.teardown import teardown
    from trtllm_oci.release.deployment import base_image

    container = LlmapiRepositoryContainer()
    standin.default_container = container
    spec = pytorch_spec(standin, tiny_model_dir, "oci-llmapi-tiny", serving={"frontend": "triton"})
    assert base_image(spec) == "nvcr.io/nvidia/tritonserver:26.04-trtllm-python-py3"
    base_id, image_code = stand_in_llmapi_triton_image(docker_client, oci_release_env, base_image(spec))
    out = oci_release_env / "release"

    report = release(spec, out_dir=str(out))

    # The image: FROM the version's Triton image that ships the llmapi model, pushed behind OCIR.
    digest, labels, serving, canonical = pushed_serving_image(registry, docker_client, standin, spec, base_id)
    assert report.image == f"{canonical}@{digest}"

    # The catalog: the zip holds the checkpoint and the llmapi configs, and no model code (the image has it).
    [model] = standin.live_models()
    zipped = (out / "model-artifact.zip").read_bytes()
    assert standin.artifacts[model["id"]] == zipped
    archive = zipfile.ZipFile(io.BytesIO(zipped))
    names = set(archive.namelist())
    served = spec.model.short_name
    repo = "repository/model_repository/tensorrt_llm"
    assert {f"{repo}/config.pbtxt", f"{repo}/1/model.yaml", f"repository/{served}/config.json"} <= names
    assert not any(n.endswith(("model.py", "helpers.py")) for n in names)
    model_yaml = yaml.safe_load(archive.read(f"{repo}/1/model.yaml"))
    assert model_yaml["model"] == f"{MOUNT}/repository/{served}" and model_yaml["backend"] == "pytorch"
    assert model_yaml["triton_config"]["decoupled"] is True
    pbtxt = text_format.Parse(archive.read(f"{repo}/config.pbtxt").decode(), mc.ModelConfig())
    assert pbtxt.backend == "python" and pbtxt.model_transaction_policy.decoupled is True

    # The deployment: the launcher links the mounted configs and the image's model code into one repository.
    [md] = standin.live_deployments()
    assert md["lifecycleState"] == "ACTIVE" and md["id"] == report.deployment_id
    env = env_of(md)
    cmd = env["cmd"]
    assert cmd[:2] == ["python3", "/opt/trtllm_oci/launch.py"] and "--" not in cmd
    assert cmd[cmd.index("--model-repository") + 1] == SERVING_ROOT
    links = dict(cmd[i + 1].split("=", 1) for i, arg in enumerate(cmd) if arg == "--link")
    assert links == {"tensorrt_llm/config.pbtxt": f"{MOUNT}/{repo}/config.pbtxt",
                     "tensorrt_llm/1/model.yaml": f"{MOUNT}/{repo}/1/model.yaml",
                     "tensorrt_llm/1/model.py": "/app/all_models/llmapi/tensorrt_llm/1/model.py",
                     "tensorrt_llm/1/helpers.py": "/app/all_models/llmapi/tensorrt_llm/1/helpers.py"}
    assert set(image_code) == {links["tensorrt_llm/1/model.py"], links["tensorrt_llm/1/helpers.py"]}
    variables = env["environmentVariables"]
    assert variables["MODEL_DEPLOY_PREDICT_ENDPOINT"] == "/v2/models/tensorrt_llm/generate_stream"
    assert variables["MODEL_DEPLOY_HEALTH_ENDPOINT"] == "/v2/health/ready"
    [started] = container.started
    assert started["model_yaml"] == model_yaml

    # Smoke test and benchmark reached the llmapi model with its own input names, streamed.
    loaded = started["loaded"]
    bodies = [r["body"] for r in loaded.received]
    assert bodies and all(r["status"] == 200 for r in loaded.received)
    assert all(set(body) <= {i.name for i in pbtxt.input} for body in bodies), "an input the model lacks was sent"
    assert all(body["streaming"] is True and "sampling_param_max_tokens" in body for body in bodies)
    assert [body["sampling_param_max_tokens"] for body in bodies] == [16] + [8] * (1 + 2 * 4)
    assert len(standin.requests_to("POST", rf"^/{md['id']}/predictWithResponseStream$")) == 1 + 1 + 2 * 4
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary["concurrency"]) == [1, 2]
    assert (summary["n_ok"] == 4).all() and (summary["n_err"] == 0).all()
    assert (summary["osl_mean"] == 8).all(), "the cumulative stream was not counted as the tokens it adds"
    assert report.benchmark is not None and report.benchmark["n_err_total"] == 0

    # Teardown: the release's deployment and model go; nothing else was created.
    nothing_in_flight(standin)
    removed = teardown(spec)
    assert removed.deleted_deployments == [md["id"]] and removed.deleted_models == [model["id"]]
    assert standin.live_deployments() == [] and standin.live_models() == []
    nothing_in_flight(standin)
