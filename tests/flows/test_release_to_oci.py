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

from tests.cloud.conftest import COMPARTMENT, PROJECT, api_key, auth, clients, fast_sdk_waiter, standin  # noqa: F401
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


def pushed_serving_image(registry, docker_client, service, spec, base_id: str):
    """The release's serving image in the registry behind OCIR, checked to be built FROM `base_id` (the version's
    base image). Returns (digest, labels, the pulled image, its canonical OCIR name without the digest)."""
    from trtllm_oci.release.deployment import base_image, serving_image_tag

    tag = serving_image_tag(spec)
    pushed_path = f"{service.namespace}/{spec.target.ocir_repository}"
    found = registry_manifest(registry, pushed_path, tag)
    assert found is not None, "the serving image never reached the registry"
    digest, labels = found
    assert labels["org.opencontainers.image.base.name"] == base_image(spec)
    image = docker_client.images.get(f"{registry.address}/{pushed_path}:{tag}")
    assert base_id in [step["Id"] for step in image.history()], f"not built FROM {base_image(spec)}"
    return digest, labels, image, f"iad.ocir.io/{pushed_path}:{tag}"


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
    digest, labels, _, canonical = pushed_serving_image(registry, docker_client, standin, spec, base_id)
    assert labels["ai.trtllm-oci.trtllm-version"] == "1.2.1"
    [repo_record] = standin.repositories.values()
    assert (repo_record["displayName"], repo_record["compartmentId"]) == (OCIR_REPOSITORY, COMPARTMENT)
    assert report.image == f"{canonical}@{digest}"
    tag = serving_image_tag(spec)
    pushed_path = f"{standin.namespace}/{OCIR_REPOSITORY}"

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

    # A second run reuses all of it: the engine cache, the pushed image (same build key), model and deployment.
    mark = len(standin.received)
    again = release(spec, out_dir=str(out))
    assert again.engine_cache_hit is True and again.image == report.image
    assert again.deployment_id == md["id"] and [m["id"] for m in standin.live_models()] == [model["id"]]
    changes = [(r["method"], r["path"]) for r in standin.received[mark:]
               if r["method"] not in ("GET", "HEAD") and "/predict" not in r["path"]]
    assert changes == [], f"a re-run changed the service: {changes}"
    assert registry_manifest(registry, pushed_path, tag) == (digest, labels)

    # Nothing orphaned: exactly the release's deployment and model, no staging, and teardown removes them.
    nothing_in_flight(standin)
    removed = teardown(spec)
    assert removed.deleted_deployments == [md["id"]] and removed.deleted_models == [model["id"]]
    assert standin.live_deployments() == [] and standin.live_models() == []
    nothing_in_flight(standin)


# ---------------------------------------------------------------------------------------------- case 2

ENGINE_RANK_BYTES = 4 * 1024**2  # sparse: 32 MiB of engine that no release step may download, copy or zip
STAND_IN_IMAGE_DIGEST = "sha256:" + "5e" * 32  # the Triton image digest the build host reports


@pytest.fixture(scope="module")
def tiny_model_tp8(tmp_path_factory) -> Path:
    """A tiny Llama whose 8 attention and KV heads split over tp 8, with positions for the engine's limits."""
    from trtllm_oci.tiny_model import make_tiny_llama

    return make_tiny_llama(tmp_path_factory.mktemp("tp8") / "tiny-llama-tp8", heads=8, kv_heads=8,
                           max_position_embeddings=8192)


def engine_spec(service, model_dir: Path, **target):
    from trtllm_oci.spec import parse_spec

    return parse_spec({
        "name": "oci-engine-tp8",
        "model": {"local_dir": str(model_dir)},
        "trtllm_version": "0.14.0",
        "quantization": {"method": "fp8", "kv_cache_dtype": "fp8"},
        "parallelism": {"tp": 8},
        "build": {"max_batch_size": 64, "max_input_len": 4096, "max_seq_len": 8192, "max_num_tokens": 8192},
        "serving": {"backend": "tensorrt", "streaming": True},
        "benchmark": {"concurrency": [2], "input_len": 16, "output_len": 8, "num_requests": 4, "warmup_requests": 1},
        "engine_cache": {"uri": f"oci://engines@{service.namespace}/cache"},
        "target": oci_target(service, shape="BM.GPU.H100.8", **target),
    })


def publish_prebuilt_engine(spec, model_dir: Path, host, oci, service, work: Path):
    """Put a fake world-size-8 engine into the Object Storage engine cache under the key the build stage computes,
    as a GPU build host that built it earlier would have. Returns (key, manifest)."""
    from tests.cache.test_local_store import write_fake_engine
    from trtllm_oci.build.engine_config import engine_summarizer
    from trtllm_oci.build.trtllm import cache_inputs, plan_steps
    from trtllm_oci.cache.key import cache_key
    from trtllm_oci.cache.object_storage_store import OciObjectStorageEngineStore
    from trtllm_oci.hub.snapshot import use_local_model
    from trtllm_oci.model_facts import load_model_facts
    from trtllm_oci.release.artifact import build_request, dry_run_build

    model = use_local_model(model_dir)
    facts = load_model_facts(model_dir)
    request = build_request(spec, model.commit_sha)
    steps = plan_steps(request, facts.family, host.workers, checkpoint_dtype=facts.torch_dtype)
    inputs = cache_inputs(request, steps, host.image_digest, host.gpu_arch)
    key = cache_key(inputs)
    # `trtllm-oci build --dry-run` names the same key, so a user can check what a release will reuse.
    assert dry_run_build(spec, facts, (model.commit_sha, "local"), host, host.gpu_arch)["cache_key"] == key
    store = OciObjectStorageEngineStore(oci.object_storage, service.namespace, "engines", "cache",
                                        download_root=work / "gpu-host-downloads", lock_poll_seconds=0.05)
    engine = write_fake_engine(work / "built-engine", tp=8, rank_bytes=ENGINE_RANK_BYTES, sparse=True)
    manifest = store.publish(key, engine, inputs, engine_summarizer("0.14.0"))
    return key, manifest


def test_engine_release_by_reference_at_world_size_8_moves_no_engine_byte(
    prefect_api, tiny_model_tp8, oci_release_env, standin, registry, docker_client, clients,  # noqa: F811
) -> None:
    from trtllm_oci.build.host import BuildHost
    from trtllm_oci.cloud import limits
    from trtllm_oci.cloud.artifact import SERVING_ROOT
    from trtllm_oci.flows.release import release
    from trtllm_oci.flows.teardown import teardown
    from trtllm_oci.release.deployment import base_image
    from trtllm_oci.repo.interface import interface_for

    spec = engine_spec(standin, tiny_model_tp8)
    host = BuildHost(gpu_arch="sm90", image_digest=STAND_IN_IMAGE_DIGEST)
    key, manifest = publish_prebuilt_engine(spec, tiny_model_tp8, host, clients, standin, oci_release_env)
    engine_prefix = manifest.uri.split("/", 3)[3].rstrip("/")
    cache_objects = {name for (bucket, name) in standin.objects if bucket == "engines"}
    stand_in_triton_image(docker_client, oci_release_env, base_image(spec))
    mark = len(standin.received)
    out = oci_release_env / "release"

    report = release(spec, out_dir=str(out), build_host=host)

    # The build stage was a cache hit on exactly the pre-published engine.
    assert report.engine_cache_hit is True and (report.engine_key, report.engine_uri) == (key, manifest.uri)

    # No engine byte downloaded, copied or zipped: only the engine's config.json was read back.
    release_requests = standin.received[mark:]
    engine_reads = [r["path"] for r in release_requests if r["method"] == "GET" and engine_prefix in r["path"]]
    assert engine_reads and all(p.endswith("/config.json") for p in engine_reads), engine_reads
    assert not (out / "model-artifact.zip").exists()
    assert not standin.requests_to("POST", r"/artifact$") and not standin.requests_to("POST", r"/exportArtifact$")
    outline_engine = out / "repository" / "engine"
    local_ranks = list(outline_engine.rglob("rank*.engine")) + list((oci_release_env / "home").rglob("rank*.engine"))
    assert local_ranks and all(p.stat().st_blocks == 0 for p in local_ranks), "an engine byte reached local disk"
    uploaded = sum(r["body_bytes"] for r in release_requests)
    assert uploaded < ENGINE_RANK_BYTES, f"the release uploaded {uploaded} bytes"

    # The catalog model references the engine in place and the staged configs + tokenizer beside it.
    [model] = standin.live_models()
    assert model["isModelByReference"] is True and model["id"] not in standin.artifacts
    [engine_ref, staged_ref] = standin.references[model["id"]]
    assert (engine_ref["bucketName"], engine_ref["prefix"]) == ("engines", engine_prefix)
    assert staged_ref["prefix"].startswith(f"cache/releases/{spec.release_id}/")
    staged = sorted(name for (bucket, name) in standin.objects if name.startswith(staged_ref["prefix"] + "/"))
    relative = [name[len(staged_ref["prefix"]) + 1:] for name in staged]
    assert "model_repository/ensemble/config.pbtxt" in relative and "tokenizer/tokenizer.json" in relative
    assert not any(name.endswith(".engine") for name in relative)

    # The deployment: the image's launcher links the serving root; cmd stays far under 2048 bytes at world size 8.
    [md] = standin.live_deployments()
    assert md["lifecycleState"] == "ACTIVE"
    env = env_of(md)
    cmd = env["cmd"]
    assert cmd[:2] == ["python3", "/opt/trtllm_oci/launch.py"]
    assert cmd[cmd.index("--world-size") + 1] == "8"
    assert cmd[cmd.index("--model-repository") + 1] == f"{SERVING_ROOT}/model_repository"
    links = dict(cmd[i + 1].split("=", 1) for i, arg in enumerate(cmd) if arg == "--link")
    assert links["engine"] == f"{MOUNT}/{engine_prefix}"
    assert links["model_repository"] == f"{MOUNT}/{staged_ref['prefix']}/model_repository"
    assert len(json.dumps(cmd, separators=(",", ":")).encode()) < 2048
    variables = env["environmentVariables"]
    assert variables["SHM_SIZE"] == f"{limits.shm_size_gb(8)}g" and limits.shm_size_gb(8) > limits.shm_size_gb(1)
    assert int(variables["STORAGE_SIZE_IN_GB"]) * 10**9 >= manifest.total_bytes
    shape = md["modelDeploymentConfigurationDetails"]["modelConfigurationDetails"]["instanceConfiguration"]
    assert shape["instanceShapeName"] == "BM.GPU.H100.8"

    # Smoke test and benchmark reached the 0.14.0 ensemble with only what it declares (min_length, not min_tokens).
    declared = {t.name for t in interface_for("0.14.0").models["ensemble"].inputs}
    bodies = [r["json"] for r in standin.requests_to("POST", rf"^/{md['id']}/predictWithResponseStream")]
    assert len(bodies) == 1 + 1 + 4
    for body in bodies:
        assert set(body) <= declared, sorted(set(body) - declared)
    assert all(body["min_length"] == body["max_tokens"] == 8 for body in bodies[1:])
    summary = pd.read_csv(out / "summary.csv")
    assert (summary["n_ok"] == 4).all() and (summary["n_err"] == 0).all()
    assert report.benchmark is not None and report.benchmark["n_err_total"] == 0

    # Teardown removes the release's deployment, model and staged files; the engine cache stays whole.
    removed = teardown(spec)
    assert removed.deleted_deployments == [md["id"]] and removed.deleted_models == [model["id"]]
    assert standin.live_deployments() == [] and standin.live_models() == []
    assert {name for (bucket, name) in standin.objects if bucket == "engines"} == cache_objects
    nothing_in_flight(standin)


# ---------------------------------------------------------------------------------------------- case 3


def refused_by_port(service, tiny_model_dir: Path, tiny_model_tp8: Path) -> tuple[dict, str]:
    """Data Science refuses server port 8446 (reserved, like 24224 and 8447)."""
    return {
        "name": "oci-refused-port",
        "model": {"local_dir": str(tiny_model_dir)},
        "trtllm_version": "1.2.1",
        "serving": {"backend": "reference", "http_port": 8446},
        "build": {"max_batch_size": 8, "max_input_len": 256, "max_seq_len": 512, "max_num_tokens": 1024},
        "target": oci_target(service, ocir_repository="trtllm-oci/refused-port"),
    }, "ports: .*8446"


def refused_by_quota(service, tiny_model_dir: Path, tiny_model_tp8: Path) -> tuple[dict, str]:
    """An 8-GPU engine release on BM.GPU4.8 where the tenancy may use only 4 A100s for model deployments."""
    service.quotas["ds-gpu4-count"] = 4
    return {
        "name": "oci-refused-quota",
        "model": {"local_dir": str(tiny_model_tp8)},
        "trtllm_version": "0.14.0",
        "parallelism": {"tp": 8},
        "serving": {"backend": "tensorrt"},
        "engine_cache": {"uri": f"oci://engines@{service.namespace}/cache"},
        "target": oci_target(service, shape="BM.GPU4.8", ocir_repository="trtllm-oci/refused-quota"),
    }, "gpu quota: .*8 GPU.*ds-gpu4-count.*4 available"


@pytest.mark.parametrize("refusal", [refused_by_port, refused_by_quota], ids=["port-8446", "gpu-quota"])
def test_a_spec_the_service_would_refuse_fails_in_the_plan_stage_before_any_work(
    refusal, prefect_api, tiny_model_dir, tiny_model_tp8, oci_release_env, standin, registry,  # noqa: F811
    docker_client,
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from trtllm_oci.flows.release import release
    from trtllm_oci.release.deployment import base_image, serving_image_tag
    from trtllm_oci.spec import parse_spec

    data, why = refusal(standin, tiny_model_dir, tiny_model_tp8)
    spec = parse_spec(data)  # the spec itself is valid: only the service would refuse it
    stand_in_triton_image(docker_client, oci_release_env, base_image(spec))

    # With the flow's own retry policy (one retry after 30 s): a refusal is not retried.
    state = release(spec, out_dir=str(oci_release_env / "release"), return_state=True)

    assert state.is_failed()
    with pytest.raises(Exception, match=why) as refused:
        state.result()
    assert "the deployment would be refused" in str(refused.value)
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id])))
        flow_run = client.read_flow_run(state.state_details.flow_run_id)
    assert flow_run.run_count == 1, "a refusal the service would repeat was retried"
    stages = {run.name.split("-", 1)[0] for run in runs}
    assert stages <= {"plan", "preflight"}, f"stages ran after the refusal: {sorted(stages)}"
    # Nothing was created, uploaded or pushed: the service saw only reads, the registry has no such image.
    assert [(r["method"], r["path"]) for r in standin.received if r["method"] != "GET"] == []
    assert (standin.models, standin.deployments, standin.repositories, standin.objects) == ({}, {}, {}, {})
    repository = f"{standin.namespace}/{spec.target.ocir_repository}"
    assert registry_manifest(registry, repository, serving_image_tag(spec)) is None
    assert docker_client.images.list(name=f"{registry.address}/{repository}") == []
    engines = oci_release_env / "engines"
    assert not engines.exists() or not any(engines.rglob("*.engine")) and not any(engines.rglob("config.json"))


# ---------------------------------------------------------------------------------------------- case 4


def test_the_stage_flows_composed_by_another_pipeline_deploy_engines_by_reference(
    prefect_api, tiny_model_tp8, oci_release_env, standin, registry, docker_client, clients,  # noqa: F811
) -> None:
    """build_engine → assemble → deploy, as a pipeline of its own would call them: the same by-reference route
    and pre-flight as the release flow, and a clear refusal (nothing pushed) when deploy lacks the build result."""
    from trtllm_oci.build.host import BuildHost
    from trtllm_oci.flows.assemble import assemble
    from trtllm_oci.flows.build_engine import build_engine
    from trtllm_oci.flows.deploy import deploy
    from trtllm_oci.flows.teardown import teardown
    from trtllm_oci.hub.snapshot import use_local_model
    from trtllm_oci.release.deployment import base_image, serving_image_tag

    # Its own repository: the registry lives the whole session and case 2 pushes the same tag to the shared one.
    spec = engine_spec(standin, tiny_model_tp8, ocir_repository="trtllm-oci/stage-flows")
    host = BuildHost(gpu_arch="sm90", image_digest=STAND_IN_IMAGE_DIGEST)
    _, manifest = publish_prebuilt_engine(spec, tiny_model_tp8, host, clients, standin, oci_release_env)
    stand_in_triton_image(docker_client, oci_release_env, base_image(spec))
    out = oci_release_env / "stages"

    artifact = build_engine(spec, build_host=host)
    assert artifact.cache_hit and artifact.manifest.uri == manifest.uri
    repo = assemble(spec, artifact, out_dir=str(out))
    ranks = list((out / "repository" / "engine").rglob("rank*.engine"))
    assert len(ranks) == 8 and all(p.stat().st_blocks == 0 for p in ranks), "assemble downloaded engine bytes"
    revision = use_local_model(tiny_model_tp8).commit_sha

    # Without the build result the by-reference route cannot name the engines: refused before any push.
    with pytest.raises(Exception, match=r"by reference .*`artifact` parameter"):
        deploy(spec, repo, revision, out_dir=str(out))
    repository = f"{standin.namespace}/{spec.target.ocir_repository}"
    assert registry_manifest(registry, repository, serving_image_tag(spec)) is None
    assert standin.live_models() == [] and standin.live_deployments() == []

    result = deploy(spec, repo, revision, out_dir=str(out), artifact=artifact)
    assert registry_manifest(registry, repository, serving_image_tag(spec)) is not None
    [model] = standin.live_models()
    assert model["isModelByReference"] is True and model["id"] not in standin.artifacts
    assert not (out / "model-artifact.zip").exists()
    [md] = standin.live_deployments()
    assert md["id"] == result.model_deployment_id and md["lifecycleState"] == "ACTIVE"
    cmd = env_of(md)["cmd"]
    assert cmd[cmd.index("--world-size") + 1] == "8"

    removed = teardown(spec)
    assert removed.deleted_deployments == [md["id"]] and removed.deleted_models == [model["id"]]
    nothing_in_flight(standin)


# ---------------------------------------------------------------------------------------------- case 5
# The push to a registry that demands OCIR's login (tests/docker/token_registry.py: Docker token auth, OCIR's
# user forms, grants only in the tenancy's namespace, BEARER_TOKEN logins that expire), with the credentials a
# user configures as the README says: the `ocir-auth-token` Secret block, or none (a token signed by the OCI key).

OCIR_SECRET_BLOCK = "ocir-auth-token"


@pytest.fixture
def ocir(tmp_path, standin):  # noqa: F811
    """A registry as strict as OCIR for tenancy namespace `standin.namespace`, whose BEARER_TOKEN logins are the
    OCI stand-in's /20180419/docker/token JWTs; the stand-in's deployments pull from it as the service does."""
    from tests.conftest_docker import skip_if_docker_disabled
    from tests.docker.token_registry import token_registry

    skip_if_docker_disabled()
    with token_registry(tmp_path / "ocir", namespace=standin.namespace,
                        login_token_valid=standin.ocir_login_valid) as reg:
        standin.registry_url = reg.url
        standin.registry_authorization = lambda path: f"Bearer {reg.issue_pull_token(path)}"
        yield reg


@pytest.fixture
def ocir_release_env(oci_release_env, monkeypatch, standin, ocir):  # noqa: F811
    """oci_release_env with the `ocir` endpoint on the strict registry; the docker token comes from the OCI
    stand-in (TRTLLM_OCI_OCIR_TOKEN_URL), signed with the user's API key."""
    endpoints = {name: standin.url for name in ("data_science", "object_storage", "artifacts", "limits")}
    endpoints["ocir"] = ocir.url
    monkeypatch.setenv("TRTLLM_OCI_OCI_ENDPOINTS", json.dumps(endpoints))
    return oci_release_env


@pytest.fixture
def ocir_secret(prefect_api):
    """Saves the `ocir-auth-token` Secret block on the session's Prefect server; removed afterwards, since every
    later flow on that server would log in with it."""
    import contextlib

    from prefect.blocks.system import Secret

    def save(value: str) -> None:
        Secret(value=value).save(OCIR_SECRET_BLOCK, overwrite=True)

    yield save
    with contextlib.suppress(ValueError):  # never saved in this test
        Secret.delete(OCIR_SECRET_BLOCK)


def ocir_spec(service, model_dir: Path, repository: str):
    from trtllm_oci.spec import parse_spec

    return parse_spec({
        "name": f"oci-{repository.rsplit('/', 1)[-1]}",
        "model": {"local_dir": str(model_dir)},
        "trtllm_version": "1.2.1",
        "serving": {"backend": "reference", "streaming": True},
        "build": {"max_batch_size": 8, "max_input_len": 256, "max_seq_len": 512, "max_num_tokens": 1024},
        "benchmark": {"enabled": False},
        "target": oci_target(service, ocir_repository=repository),
    })


def ocir_manifest(reg, repository: str, tag: str) -> str | None:
    """The digest the strict registry serves for repository:tag, read with the tenancy user's own login."""
    from trtllm_oci.image import RegistryAuth
    from trtllm_oci.image.registry_api import RegistryClient

    tenancy_user = RegistryAuth(registry=reg.address, username=reg.username, password=reg.password)
    found = RegistryClient(reg.address, tenancy_user).inspect(repository, tag)
    return found.digest if found else None


def test_release_pushes_to_a_registry_that_demands_the_ocir_login_from_the_secret_block(
    prefect_api, tiny_model_dir, ocir_release_env, standin, ocir, ocir_secret, docker_client,  # noqa: F811
) -> None:
    from trtllm_oci.flows.release import release
    from trtllm_oci.flows.teardown import teardown
    from trtllm_oci.release.deployment import base_image, serving_image_tag

    spec = ocir_spec(standin, tiny_model_dir, "trtllm-oci/ocir-login")
    stand_in_triton_image(docker_client, ocir_release_env, base_image(spec))
    # As the README says: `<user>:<auth token>`, the user without the namespace (the flow adds `<namespace>/`).
    ocir_secret(f"{ocir.username.split('/', 1)[1]}:{ocir.password}")

    report = release(spec, out_dir=str(ocir_release_env / "release"))

    repository = f"{standin.namespace}/{spec.target.ocir_repository}"
    digest = ocir_manifest(ocir, repository, serving_image_tag(spec))
    assert digest is not None, "the serving image never reached the registry"
    [md] = standin.live_deployments()
    assert md["lifecycleState"] == "ACTIVE"  # the stand-in pulled image@digest from the strict registry
    assert env_of(md)["imageDigest"] == digest and report.image.endswith(f"@{digest}")
    # Every login was OCIR's `<namespace>/<user>` with the auth token, and it was granted push on the repository.
    assert ocir.refusals() == []
    assert {g.username for g in ocir.grants} == {ocir.username}
    assert any(f"{repository}:" in granted for g in ocir.pushes_granted() for granted in g.granted)
    assert standin.ocir_login_tokens == {}, "a docker token was fetched although an auth token was saved"

    removed = teardown(spec)
    assert removed.deleted_deployments == [md["id"]]
    nothing_in_flight(standin)


@pytest.mark.parametrize("secret", ["wrong-token", "other-namespace"])
def test_a_refused_ocir_login_fails_in_preflight_before_any_build_and_pushes_nothing(
    secret, prefect_api, tiny_model_dir, ocir_release_env, standin, ocir, ocir_secret, docker_client,  # noqa: F811
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from trtllm_oci.flows.release import release
    from trtllm_oci.release.deployment import base_image, serving_image_tag

    spec = ocir_spec(standin, tiny_model_dir, f"trtllm-oci/refused-{secret}")
    stand_in_triton_image(docker_client, ocir_release_env, base_image(spec))
    user = ocir.username.split("/", 1)[1]
    value, why = {
        # The registry refuses the login at its token endpoint: the pre-flight probe names user, registry, source.
        "wrong-token": (f"{user}:not-the-auth-token",
                        rf"registry login: registry {ocir.address} refused user '{ocir.username}'.*"
                        rf"auth token.*Secret block '{OCIR_SECRET_BLOCK}'"),
        # The docker login form of another tenancy: refused by the flow itself, naming the spec field to match.
        "other-namespace": (f"othertenancy/oracleidentitycloudservice/{user}:{ocir.password}",
                            rf"Secret block '{OCIR_SECRET_BLOCK}' names user 'othertenancy/.*namespace "
                            rf"'{standin.namespace}' \(target.ocir_namespace\)"),
    }[secret]
    ocir_secret(value)

    state = release(spec, out_dir=str(ocir_release_env / "release"), return_state=True)

    assert state.is_failed()
    with pytest.raises(Exception, match=why) as refused:
        state.result()
    assert value.rsplit(":", 1)[1] not in str(refused.value), "the message echoes the secret"
    with get_client(sync_client=True) as client:
        run_filter = FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id]))
        stages = {run.name.split("-", 1)[0] for run in client.read_task_runs(flow_run_filter=run_filter)}
        flow_run = client.read_flow_run(state.state_details.flow_run_id)
    assert stages <= {"plan", "preflight"}, f"stages ran after the refused login: {sorted(stages)}"
    assert flow_run.run_count == 1, "a refused login was retried"
    # Nothing built, created or pushed.
    assert ocir.pushes_granted() == []
    assert bool(ocir.refusals()) == (secret == "wrong-token"), "only the probe asks the registry, once refused"
    repository = f"{standin.namespace}/{spec.target.ocir_repository}"
    assert ocir_manifest(ocir, repository, serving_image_tag(spec)) is None
    assert docker_client.images.list(name=f"{ocir.address}/{repository}") == []
    assert [(r["method"], r["path"]) for r in standin.received if r["method"] != "GET"] == []
    assert (standin.models, standin.deployments, standin.repositories) == ({}, {}, {})


def test_a_docker_token_that_expires_during_the_build_is_fetched_again_for_the_push(
    prefect_api, tiny_model_dir, ocir_release_env, standin, ocir, docker_client,  # noqa: F811
) -> None:
    """No Secret block: the flow signs OCIR's /20180419/docker/token with the API key and logs in as BEARER_TOKEN.
    The login lives 3 s and the build 6 s (the stand-in Triton image's python3 sleeps): a token fetched before the
    build is refused after it, so the push only succeeds with one fetched after the build."""
    import secrets
    import time

    from trtllm_oci.flows.release import release
    from trtllm_oci.image.build import build_image
    from trtllm_oci.release.deployment import base_image, serving_image_tag

    lifetime, build_seconds = 3, 6
    standin.ocir_token_seconds = lifetime
    spec = ocir_spec(standin, tiny_model_dir, "trtllm-oci/token-expiry")
    context = write_busybox_context(ocir_release_env / "slow-triton", "COPY python3 /usr/bin/python3\n")
    # A nonce keeps the build cache from reusing another test's layers (then nothing would take 6 s).
    (context / "python3").write_text(f"#!/bin/sh\n# {secrets.token_hex(8)}\nsleep {build_seconds}\n")
    (context / "python3").chmod(0o755)
    build_image(context, "Dockerfile", base_image(spec), None, None, docker_client, Log(), network_disabled=True)

    started = time.time()
    release(spec, out_dir=str(ocir_release_env / "release"))

    repository = f"{standin.namespace}/{spec.target.ocir_repository}"
    digest = ocir_manifest(ocir, repository, serving_image_tag(spec))
    assert digest is not None and env_of(standin.live_deployments()[0])["imageDigest"] == digest
    assert ocir.refusals() == [], "the registry refused a login"
    [push] = [g for g in ocir.pushes_granted() if g.username == "BEARER_TOKEN"]
    issued = sorted(expiry - lifetime for expiry in standin.ocir_login_tokens.values())
    # The build really outlasted a token: the first one (pre-flight, before the build) was dead at the push.
    assert push.at - started >= build_seconds and issued[0] + lifetime < push.at
    assert not standin.ocir_login_valid(min(standin.ocir_login_tokens, key=standin.ocir_login_tokens.get))
    # ... and the push went out with a token fetched after the build.
    assert any(push.at - lifetime < at <= push.at for at in issued), (issued, push.at)
