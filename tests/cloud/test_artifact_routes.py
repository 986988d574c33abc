"""The artifact's route: by reference from the oci:// engine cache, staged export, or direct up to 2 GiB."""

from __future__ import annotations

import http.client
import json
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.cache.test_local_store import SUMMARIZE, make_inputs, write_fake_engine
from tests.cloud.conftest import FAST_WAIT, make_request
from tests.standins.oci_services import MOUNT, TritonContainer
from trtllm_oci.cache.key import cache_key
from trtllm_oci.cache.object_storage_store import OciObjectStorageEngineStore
from trtllm_oci.cloud.artifact import (
    ObjectPrefix,
    by_reference_layout,
    choose_artifact_route,
    plan_reference_artifact,
)
from trtllm_oci.cloud.deployment import build_environment_variables, deploy
from trtllm_oci.cloud.errors import ArtifactUploadError, DeploymentFailedError, DeploymentLimitError
from trtllm_oci.cloud.invoke import smoke_test
from trtllm_oci.serving.launch import deploy_cmd, parse_args

GIB = 1024**3


# ---------------------------------------------------------------- route choice, no API call


def test_an_object_storage_engine_cache_is_referenced_in_place():
    choice = choose_artifact_route(estimated_artifact_bytes=130 * 10**9, target_region="us-ashburn-1",
                                   engine_cache_uri="oci://engines@ns/cache")
    assert choice.route == "by_reference" and choice.bucket.uri == "oci://engines@ns/cache/releases"
    assert "nothing zipped" in choice.reason


def test_a_local_cache_uses_the_direct_upload_only_up_to_2_gib():
    assert choose_artifact_route(estimated_artifact_bytes=2 * GIB, target_region="us-ashburn-1",
                                 engine_cache_uri="/srv/engines").route == "direct"
    big = choose_artifact_route(estimated_artifact_bytes=7 * GIB, target_region="us-ashburn-1",
                                engine_cache_uri="/srv/engines", artifact_bucket_uri="oci://staging@ns/a")
    assert big.route == "object_storage_export" and "above the 2 GiB" in big.reason
    with pytest.raises(DeploymentLimitError, match="target.artifact_bucket"):
        choose_artifact_route(estimated_artifact_bytes=7 * GIB, target_region="us-ashburn-1",
                              engine_cache_uri="/srv/engines")


def test_an_engine_cache_in_another_region_is_not_referenced():
    choice = choose_artifact_route(estimated_artifact_bytes=7 * GIB, target_region="us-ashburn-1",
                                   engine_cache_uri="oci://engines@ns/c", engine_cache_region="eu-frankfurt-1")
    assert choice.route == "object_storage_export" and "eu-frankfurt-1" in choice.reason


def _pytorch_spec(**changes):
    from trtllm_oci.spec import parse_spec

    data = {"name": "ckpt", "model": {"hf_repo": "meta-llama/Llama-3.2-1B", "revision": "a" * 40},
            "trtllm_version": "1.2.1", "serving": {"backend": "pytorch"},
            "engine_cache": {"uri": "oci://engines@ns/cache"},
            "target": {"kind": "oci", "region": "us-ashburn-1", "compartment_id": "ocid1.compartment.oc1..x",
                       "project_id": "ocid1.datascienceproject.oc1.iad.x", "shape": "VM.GPU.A10.1",
                       "ocir_namespace": "ns"}}
    for key, value in changes.items():
        data[key] = {**data.get(key, {}), **value}
    return parse_spec(data)


def test_a_checkpoint_in_an_oci_cache_is_referenced_in_place_when_trtllm_serve_serves_it():
    from trtllm_oci.release.deployment import artifact_route

    choice = artifact_route(_pytorch_spec(), 3 * GIB)
    assert choice.route == "by_reference" and "checkpoint files are already in oci://engines@ns/cache" in choice.reason
    # Triton's llmapi model.yaml is written for the zip's layout: the zip is staged and exported.
    triton = artifact_route(_pytorch_spec(serving={"frontend": "triton"}), 3 * GIB)
    assert triton.route == "object_storage_export" and "llmapi" in triton.reason
    assert artifact_route(_pytorch_spec(engine_cache={"uri": "/srv/cache"},
                                        target={"artifact_bucket": "oci://staging@ns/a"}), 3 * GIB).route == \
        "object_storage_export"


# ---------------------------------------------------------------- by reference, end to end


def _repository(tmp_path: Path, engine_dir: Path) -> Path:
    root = tmp_path / "repository"
    (root / "model_repository" / "ensemble" / "1").mkdir(parents=True)
    (root / "model_repository" / "ensemble" / "config.pbtxt").write_text('name: "ensemble"\n')
    (root / "model_repository" / "tensorrt_llm" / "1").mkdir(parents=True)
    (root / "model_repository" / "tensorrt_llm" / "config.pbtxt").write_text(
        'name: "tensorrt_llm"\nparameters { key: "gpt_model_path" value { string_value: "/tmp/trtllm-oci/serving/engine" } }\n')
    (root / "tokenizer").mkdir()
    (root / "tokenizer" / "tokenizer.json").write_text('{"model": {}}')
    (root / "manifest.json").write_text('{"deploy_root": "/tmp/trtllm-oci/serving"}')
    (root / "engine").mkdir()
    for path in engine_dir.iterdir():  # linked, as the assembler does; never uploaded on this route
        (root / "engine" / path.name).symlink_to(path)
    return root


def _launcher_check(md: dict, paths: list[str]) -> str | None:
    """What the container does first: the image's launcher links its serving root; a missing target kills it."""
    env = md["modelDeploymentConfigurationDetails"]["environmentConfigurationDetails"]
    args = parse_args(env["cmd"][2:])
    for link in args.link:
        name, _, target = link.partition("=")
        if not any(p == target or p.startswith(target.rstrip("/") + "/") for p in paths):
            return f"launch.py: --link {name}: {target} does not exist in this container"
    return None


@pytest.fixture
def referenced(clients, standin, tmp_path):
    store = OciObjectStorageEngineStore(clients.object_storage, standin.namespace, "engines", "cache",
                                        part_size=4096, download_root=tmp_path / "downloads", lock_poll_seconds=0.05)
    inputs = make_inputs()
    manifest = store.publish(cache_key(inputs), write_fake_engine(tmp_path / "built", rank_bytes=20_000), inputs, SUMMARIZE)
    repository = _repository(tmp_path, tmp_path / "built")
    artifact = plan_reference_artifact(repository, engine_uri=manifest.uri, engine_bytes=manifest.total_bytes,
                                       artifact_bucket=ObjectPrefix(namespace=standin.namespace, bucket="engines",
                                                                    prefix="cache/releases"), release_id="rel-001")
    layout = by_reference_layout(artifact)
    cmd = deploy_cmd(layout.model_repository, 2, links=layout.links, serving_root=layout.deploy_root)
    standin.container_check = _launcher_check
    standin.default_container = TritonContainer(decoupled=False)
    return artifact, make_request(cmd=cmd, artifact_size_bytes=artifact.size_bytes, world_size=2), manifest


def test_a_release_deploys_by_reference_without_moving_engine_bytes(clients, standin, referenced, auth):
    artifact, req, manifest = referenced
    before = sum(r["body_bytes"] for r in standin.received)
    result = deploy(clients, req, artifact, wait=FAST_WAIT)
    assert result.artifact_route == "by_reference" and result.lifecycle_state == "ACTIVE"
    assert result.upload.uploaded_bytes == artifact.small_bytes < manifest.total_bytes / 10
    sent = sum(r["body_bytes"] for r in standin.received) - before  # every request body of the deploy
    assert sent < manifest.total_bytes / 5
    assert not standin.requests_to("POST", r"/artifact$") and not standin.requests_to("POST", r"/exportArtifact$")
    [refs] = standin.references.values()
    assert [r["prefix"] for r in refs] == [artifact.engine.prefix, artifact.staged.prefix]
    assert standin.models[result.model_id]["isModelByReference"] is True
    variables = build_environment_variables(req.model_copy(update={"artifact_route": "by_reference"}))
    assert int(variables["STORAGE_SIZE_IN_GB"]) >= 50  # the referenced bytes once, not a zip and its unzipped copy
    assert smoke_test(result.url, auth.signer).text.startswith("echo:")


def test_a_rerun_reuses_the_staged_files_and_the_model(clients, standin, referenced):
    artifact, req, _ = referenced
    first = deploy(clients, req, artifact, wait=FAST_WAIT)
    puts = len(standin.requests_to("PUT", r"^/n/"))
    again = deploy(clients, req, artifact, wait=FAST_WAIT)
    assert again.action == "unchanged" and again.model_id == first.model_id
    assert len(standin.requests_to("PUT", r"^/n/")) == puts


def test_a_launcher_link_to_a_missing_prefix_fails_the_bootstrap(clients, standin, referenced):
    artifact, req, _ = referenced
    broken = req.model_copy(update={"cmd": deploy_cmd("/tmp/trtllm-oci/serving/model_repository", 2,
                                                      links={"engine": f"{MOUNT}/cache/nowhere"},
                                                      serving_root="/tmp/trtllm-oci/serving")})
    with pytest.raises(DeploymentFailedError, match="does not exist in this container"):
        deploy(clients, broken, artifact, wait=FAST_WAIT)


def test_by_reference_needs_the_service_to_read_the_bucket(clients, standin, referenced):
    artifact, req, _ = referenced
    standin.service_readable_buckets = {"some-other-bucket"}
    with pytest.raises(ArtifactUploadError, match="allow service datascience"):
        deploy(clients, req, artifact, wait=FAST_WAIT)
    assert standin.live_models() == []


# ---------------------------------------------------------------- export and direct


def test_export_needs_the_service_to_read_the_staging_bucket(clients, standin, artifact_zip):
    standin.service_readable_buckets = set()
    with pytest.raises(ArtifactUploadError, match="may read bucket 'staging'"):
        deploy(clients, make_request(), artifact_zip, wait=FAST_WAIT, direct_limit_bytes=1000,
               staging=ObjectPrefix(namespace=standin.namespace, bucket="staging", prefix="a"))
    assert standin.live_models() == [] and standin.objects == {}


def test_the_service_refuses_a_direct_upload_above_2_gib(standin):
    # A raw request claiming 3 GiB: refused from its headers, before any of the body is read.
    url = urlsplit(standin.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=5)
    conn.putrequest("POST", "/20190101/models/ocid1.datasciencemodel.oc1.iad.x/artifact")
    conn.putheader("content-length", str(3 * GIB))
    conn.endheaders()
    response = conn.getresponse()
    assert response.status == 400 and "2 GiB" in json.loads(response.read())["message"]


def test_a_storage_size_below_image_plus_artifact_fails_the_bootstrap(clients, standin, artifact_zip):
    # The image really is 60 GB while the request was sized for a 25 GB estimate: the 50 GB volume cannot hold it.
    standin.image_sizes[make_request().image_digest] = 60 * 10**9
    with pytest.raises(DeploymentFailedError, match="boot volume"):
        deploy(clients, make_request(image_size_bytes=25 * 10**9, artifact_size_bytes=10**6), artifact_zip,
               wait=FAST_WAIT)
    assert standin.live_deployments() == []
    result = deploy(clients, make_request(image_size_bytes=60 * 10**9, artifact_size_bytes=10**6), artifact_zip,
                    wait=FAST_WAIT)
    assert result.lifecycle_state == "ACTIVE"


def test_the_spec_names_the_artifact_bucket_and_the_dry_run_shows_the_route():
    from trtllm_oci.cloud.deployment import dry_run_plan
    from trtllm_oci.errors import SpecError
    from trtllm_oci.spec import load_spec, parse_spec

    spec = load_spec(Path(__file__).parents[2] / "examples" / "release-oci-llama2-13b.yaml")
    data = spec.model_dump(mode="json")
    data["target"]["artifact_bucket"] = "oci://staging@ns/releases"
    data["target"]["extra_env"] = {"NCCL_DEBUG": "INFO"}
    assert parse_spec(data).target.artifact_bucket == "oci://staging@ns/releases"
    data["target"]["artifact_bucket"] = "/local/dir"
    with pytest.raises(SpecError, match="target.artifact_bucket.*oci://"):
        parse_spec(data)
    choice = choose_artifact_route(estimated_artifact_bytes=26 * 10**9, target_region="us-ashburn-1",
                                   engine_cache_uri="oci://engines@ns/c")
    checks = dry_run_plan(make_request(), artifact_route=choice)["checks"]
    assert checks[-1]["check"] == "artifact route" and checks[-1]["detail"].startswith("by_reference: the engines")


def test_teardown_removes_the_staged_files_but_never_the_engine(clients, standin, referenced):
    from tests.cloud.conftest import COMPARTMENT
    from trtllm_oci.cloud.deployment import teardown_release

    artifact, req, manifest = referenced
    deploy(clients, req, artifact, wait=FAST_WAIT)
    report = teardown_release(clients, COMPARTMENT, "rel-001", wait=FAST_WAIT,
                              artifact_bucket=ObjectPrefix(namespace=standin.namespace, bucket="engines",
                                                           prefix="cache/releases"))
    assert len(report.deleted_objects) == len(artifact.files)
    names = [n for (b, n) in standin.objects if b == "engines"]
    assert not [n for n in names if n.startswith("cache/releases/")]
    assert len([n for n in names if n.startswith(artifact.engine.prefix)]) == len(manifest.files)


def test_the_dry_run_of_a_checkpoint_by_reference_shows_the_launcher_cmd_it_will_run():
    """Before the build the cache key and the staged digest are unknown; the pre-flight still measures the cmd the
    deployment will get (the launcher's links, names of their real length), not the zip layout's shorter one."""
    from trtllm_oci.cloud.deployment import dry_run_plan
    from trtllm_oci.release.deployment import artifact_route, deployment_request, planned_reference_layout

    spec = _pytorch_spec(serving={"served_model_name": "llama-1b"})
    route = artifact_route(spec, 3 * GIB)
    layout = planned_reference_layout(spec, route)
    assert layout is not None and set(layout.links) == {"llama-1b", "llm_api_options.yaml", "serving.json"}
    plan = dry_run_plan(deployment_request(spec, artifact_size_bytes=3 * GIB, artifact_route=route.route,
                                           layout=layout), artifact_route=route)
    cmd = plan["create_model_deployment"]["modelDeploymentConfigurationDetails"]["environmentConfigurationDetails"][
        "cmd"]
    assert cmd[:2] == ["python3", "/opt/trtllm_oci/launch.py"]
    assert cmd[cmd.index("--") + 1:][:2] == ["trtllm-serve", "/tmp/trtllm-oci/serving/llama-1b"]
    assert f"llama-1b={MOUNT}/cache/{'k' * 64}/engine-" in " ".join(cmd)
    assert planned_reference_layout(spec, artifact_route(_pytorch_spec(serving={"frontend": "triton"},
                                                                       target={"artifact_bucket": "oci://s@ns/a"}),
                                                         3 * GIB)) is None
