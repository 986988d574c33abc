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
    registry_manifest,
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
    prefect_api, tiny_model_dir, oci_release_env, standin, registry, docker_client, trtllm_serve,  # noqa: F811
) -> None:
    from trtllm_oci.flows.release import release
    from trtllm_oci.flows.teardown import teardown
    from trtllm_oci.release.deployment import base_image, serving_image_tag

    spec = pytorch_spec(standin, tiny_model_dir, "oci-trtllm-serve-tiny")
    assert base_image(spec) == "nvcr.io/nvidia/tensorrt-llm/release:1.2.1"
    base_id = stand_in_triton_image(docker_client, oci_release_env, base_image(spec))
    out = oci_release_env / "release"

    report = release(spec, out_dir=str(out))

    # The image: FROM the version's trtllm-serve release image, pushed to the registry behind OCIR.
    tag = serving_image_tag(spec)
    pushed_path = f"{standin.namespace}/{spec.target.ocir_repository}"
    found = registry_manifest(registry, pushed_path, tag)
    assert found is not None, "the serving image never reached the registry"
    digest, labels = found
    assert labels["org.opencontainers.image.base.name"] == base_image(spec)
    serving = docker_client.images.get(f"{registry.address}/{pushed_path}:{tag}")
    assert base_id in [step["Id"] for step in serving.history()], "not built FROM the release image"
    assert report.image == f"iad.ocir.io/{pushed_path}:{tag}@{digest}"

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
