"""The `release` flow with an OCI target, end to end, on the real parts that run here: a Prefect API, the
local Docker engine and registry (standing in for OCIR, reached through the `ocir` entry of
TRTLLM_OCI_OCI_ENDPOINTS as a private endpoint would be), and the OCI stand-in (Data Science, Object Storage,
Artifacts, Limits, the OCIR token endpoint and the deployment's predict routes).

Each case asserts what the services end up holding, not what the code says it did: the stand-in's models,
artifacts, references, objects and deployments, the registry's manifest, the deployment's cmd/env/routes, the
report and benchmark files, and that nothing is left behind.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from tests.cloud.conftest import COMPARTMENT, PROJECT, api_key, fast_sdk_waiter, standin  # noqa: F401 (fixtures)
from tests.docker.conftest import write_busybox_context
from tests.standins.oci_services import MOUNT, TritonRepositoryContainer

pytestmark = [pytest.mark.prefect, pytest.mark.docker]

OCIR_REPOSITORY = "trtllm-oci/triton-trtllm"


class Log(list):
    def __call__(self, line: str) -> None:
        self.append(line)


def stand_in_triton_image(docker_client, tmp_path: Path, name: str) -> str:
    """Tag a ~2 MB busybox image as the version's NVIDIA Triton image (which cannot be pulled here), with a
    python3 that records how the serving Dockerfile calls it. Returns the image id."""
    from trtllm_oci.image.build import build_image

    context = write_busybox_context(tmp_path / "stand-in-triton", "COPY python3 /usr/bin/python3\n")
    (context / "python3").write_text('#!/bin/sh\necho "$*" >> /python3-calls.log\n')
    (context / "python3").chmod(0o755)
    return build_image(context, "Dockerfile", name, None, None, docker_client, Log(), network_disabled=True)


@pytest.fixture
def oci_release_env(monkeypatch, tmp_path, api_key, standin, registry, docker_host):  # noqa: F811
    """The environment a user on a build host would set: OCI config, service endpoints, Docker engine."""
    monkeypatch.setenv("OCI_CONFIG_FILE", api_key["config_file"])
    endpoints = {name: standin.url for name in ("data_science", "object_storage", "artifacts", "limits")}
    endpoints["ocir"] = registry.url
    monkeypatch.setenv("TRTLLM_OCI_OCI_ENDPOINTS", json.dumps(endpoints))
    monkeypatch.setenv("TRTLLM_OCI_OCIR_TOKEN_URL", standin.url)
    monkeypatch.setenv("DOCKER_HOST", docker_host)
    monkeypatch.setenv("TRTLLM_OCI_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TRTLLM_OCI_CACHE", str(tmp_path / "engines"))
    standin.registry_url = registry.url  # the registry behind <region-key>.ocir.io the service pulls from
    standin.default_container = TritonRepositoryContainer()
    return tmp_path


def oci_target(service, **overrides) -> dict:
    target = {"kind": "oci", "region": "us-ashburn-1", "compartment_id": COMPARTMENT, "project_id": PROJECT,
              "shape": "VM.GPU.A10.1", "ocir_namespace": service.namespace, "ocir_repository": OCIR_REPOSITORY}
    target.update(overrides)
    return target


def registry_manifest(registry, repository: str, reference: str) -> tuple[str, dict] | None:
    from trtllm_oci.image.registry_api import RegistryClient

    found = RegistryClient(registry.address).inspect(repository, reference)
    return (found.digest, found.labels) if found else None


def env_of(md: dict) -> dict:
    return md["modelDeploymentConfigurationDetails"]["environmentConfigurationDetails"]


def nothing_in_flight(service) -> None:
    assert service.uploads == {}, "a multipart upload was left open"
    assert all(wr.status in ("SUCCEEDED", "FAILED") for wr in service.work_requests.values())


# ---------------------------------------------------------------------------------------------- case 1


def test_reference_backend_release_zips_pushes_deploys_and_benchmarks_on_oci(
    prefect_api, tiny_model_dir, oci_release_env, standin, registry, docker_client,  # noqa: F811
) -> None:
    from trtllm_oci.flows.release import release
    from trtllm_oci.flows.teardown import teardown
    from trtllm_oci.release.deployment import base_image, serving_image_tag
    from trtllm_oci.spec import parse_spec

    spec = parse_spec({
        "name": "oci-reference-tiny",
        "model": {"local_dir": str(tiny_model_dir)},
        "trtllm_version": "1.2.1",
        "serving": {"backend": "reference", "streaming": True},
        "build": {"max_batch_size": 8, "max_input_len": 256, "max_seq_len": 512, "max_num_tokens": 1024},
        "benchmark": {"concurrency": [1, 2], "input_len": 16, "output_len": 8, "num_requests": 6,
                      "warmup_requests": 1},
        "target": oci_target(standin),
    })
    base_id = stand_in_triton_image(docker_client, oci_release_env, base_image(spec))
    out = oci_release_env / "release"

    report = release(spec, out_dir=str(out))

    # The image: built FROM the version's Triton image, pushed to the registry, named by OCIR's region host.
    tag = serving_image_tag(spec)
    pushed_path = f"{standin.namespace}/{OCIR_REPOSITORY}"
    found = registry_manifest(registry, pushed_path, tag)
    assert found is not None, "the serving image never reached the registry"
    digest, labels = found
    assert labels["org.opencontainers.image.base.name"] == base_image(spec)
    assert labels["ai.trtllm-oci.trtllm-version"] == "1.2.1"
    serving = docker_client.images.get(f"{registry.address}/{pushed_path}:{tag}")
    assert base_id in [step["Id"] for step in serving.history()], "not built FROM the version's Triton image"
    [repo_record] = standin.repositories.values()
    assert (repo_record["displayName"], repo_record["compartmentId"]) == (OCIR_REPOSITORY, COMPARTMENT)
    canonical = f"iad.ocir.io/{pushed_path}:{tag}"
    assert report.image == f"{canonical}@{digest}"

    # The catalog: one model whose artifact is the zip the flow wrote (direct route, nothing staged).
    [model] = standin.live_models()
    zipped = (out / "model-artifact.zip").read_bytes()
    assert standin.artifacts[model["id"]] == zipped
    assert standin.objects == {} and standin.references == {}
    names = zipfile.ZipFile(io.BytesIO(zipped)).namelist()
    assert "repository/model_repository/ensemble/config.pbtxt" in names
    assert not any(n.endswith(".engine") for n in names)

    # The deployment: ACTIVE, on the pushed digest, launched through the image's launcher.
    [md] = standin.live_deployments()
    assert md["lifecycleState"] == "ACTIVE" and md["id"] == report.deployment_id
    assert md["modelDeploymentConfigurationDetails"]["modelConfigurationDetails"]["modelId"] == model["id"]
    env = env_of(md)
    assert (env["image"], env["imageDigest"]) == (canonical, digest)
    assert env["cmd"] == ["python3", "/opt/trtllm_oci/launch.py", "--model-repository",
                          f"{MOUNT}/repository/model_repository", "--world-size", "1"]
    variables = env["environmentVariables"]
    assert variables["MODEL_DEPLOY_PREDICT_ENDPOINT"] == "/v2/models/ensemble/generate_stream"
    assert variables["MODEL_DEPLOY_ENABLE_STREAMING"] == "true"
    assert variables["SHM_SIZE"].endswith("g")
    image_bytes = docker_client.images.get(f"{registry.address}/{pushed_path}:{tag}").attrs["Size"]
    assert int(variables["STORAGE_SIZE_IN_GB"]) * 10**9 >= image_bytes + 2 * len(zipped)
    # A decoupled (streaming) ensemble refuses /generate, so only its stream route is registered.
    assert {e["endpointUriSuffix"]: e["httpMethods"] for e in env["customHttpEndpoints"]} == {
        "/v2/models/ensemble/generate_stream": ["POST"], "/v2/health/ready": ["GET"],
        "/v2/models/ensemble/config": ["GET"]}
    assert report.endpoint == md["modelDeploymentUrl"]

    # Smoke test and benchmark went through the deployment's signed streaming route, with the ensemble's inputs.
    # (MODEL_DEPLOY_PREDICT_ENDPOINT is the stream route, so the bare /predictWithResponseStream reaches it.)
    streamed = standin.requests_to("POST", rf"^/{md['id']}/predictWithResponseStream$")
    assert len(streamed) == 1 + 1 + 2 * 6, "the smoke test, one warm-up, then 6 measured requests per load point"
    assert not standin.requests_to("POST", rf"^/{md['id']}/predict$")
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary["concurrency"]) == [1, 2]
    assert (summary["n_ok"] == 6).all() and (summary["n_err"] == 0).all()
    assert set(summary["transport"]) == {"oci_md"}
    assert (summary["osl_mean"] == 8).all(), "output lengths come from the server's num_output_tokens"
    assert report.benchmark is not None and report.benchmark["n_err_total"] == 0
    markdown = (out / "report.md").read_text()
    assert md["id"] in markdown and "not TensorRT-LLM" in markdown
    assert report.result_files["summary_csv"] == str(out / "summary.csv")

    # Nothing orphaned: exactly the release's deployment and model, no staging, and teardown removes them.
    nothing_in_flight(standin)
    removed = teardown(spec)
    assert removed.deleted_deployments == [md["id"]] and removed.deleted_models == [model["id"]]
    assert standin.live_deployments() == [] and standin.live_models() == []
    nothing_in_flight(standin)
