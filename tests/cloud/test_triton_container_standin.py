"""The stand-in's serving container (TritonRepositoryContainer): it starts only what tritonserver would load from
the mounted artifact, answers only what the repository declares, and the service pulls only an image the
registry holds. Each rule here is one a too-lenient stand-in would let a broken release pass."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.cache.test_local_store import write_fake_engine
from tests.cloud.conftest import DIGEST, FAST_WAIT, make_request
from tests.standins.oci_services import MOUNT, TritonRepositoryContainer
from trtllm_oci.cloud.deployment import deploy
from trtllm_oci.cloud.errors import DeploymentFailedError
from trtllm_oci.cloud.http_stream import signed_headers
from trtllm_oci.cloud.invoke import smoke_test
from trtllm_oci.repo.assemble import RepoOptions, assemble_repository, oci_deploy_root
from trtllm_oci.repo.package import package_repository
from trtllm_oci.serving.launch import deploy_cmd

REPO_DIR = f"{MOUNT}/repository/model_repository"


@pytest.fixture
def engine_zip(tmp_path: Path, tiny_model_dir: Path):
    """A 0.14.0 ensemble repository over a 2-rank fake engine, zipped as the release packages it."""
    def make(streaming: bool = False, version: str = "0.14.0") -> str:
        root = tmp_path / f"repo-{streaming}-{version}"
        engine = write_fake_engine(tmp_path / f"engine-{version}", tp=2)
        config = json.loads((engine / "config.json").read_text())
        (engine / "config.json").write_text(json.dumps({**config, "version": version}))  # built by that version
        assemble_repository(engine, tiny_model_dir, root, RepoOptions(
            trtllm_version=version, streaming=streaming, deploy_root=oci_deploy_root("repository"), materialize=True))
        return str(package_repository(root, tmp_path / f"{root.name}.zip", arc_root="repository").zip_path)
    return make


@pytest.fixture
def container(standin):
    standin.default_container = TritonRepositoryContainer()
    return standin.default_container


def _request(**overrides):
    return make_request(cmd=deploy_cmd(REPO_DIR, 2, http_port=8080), world_size=2, **overrides)


def _post(url: str, body: dict, signer) -> tuple[int, dict]:
    import requests

    data = json.dumps(body).encode()
    headers = signed_headers("POST", url, data, {"Content-Type": "application/json"}, signer)
    response = requests.post(url, data=data, headers=headers, timeout=10)
    return response.status_code, response.json()


def test_a_repository_that_loads_answers_max_tokens_real_tokens(clients, standin, container, engine_zip, auth,
                                                               tiny_model_dir):
    from tokenizers import Tokenizer

    result = deploy(clients, _request(), engine_zip(), wait=FAST_WAIT)
    assert result.lifecycle_state == "ACTIVE"
    status, answer = _post(f"{result.url}/predict", {"text_input": "hello", "max_tokens": 6, "min_length": 6},
                           auth.signer)
    assert status == 200 and answer["model_name"] == "ensemble"
    tokenizer = Tokenizer.from_file(str(tiny_model_dir / "tokenizer.json"))
    assert len(tokenizer.encode(answer["text_output"], add_special_tokens=False).ids) == 6
    assert not answer["text_output"].startswith("hello")  # the repository sets exclude_input_in_output
    assert "num_output_tokens" not in answer  # the 0.14 ensemble declares no token counts


def test_the_ensemble_takes_only_typed_inputs_and_scalar_parameters(clients, standin, container, engine_zip, auth):
    result = deploy(clients, _request(), engine_zip(), wait=FAST_WAIT)
    url = f"{result.url}/predict"
    status, answer = _post(url, {"text_input": "a", "max_tokens": "6"}, auth.signer)
    assert status == 400 and "max_tokens" in answer["error"] and "TYPE_INT32" in answer["error"]
    status, answer = _post(url, {"text_input": "a"}, auth.signer)
    assert status == 400 and "requires input(s) ['max_tokens']" in answer["error"]
    status, answer = _post(url, {"text_input": "a", "max_tokens": 2, "min_tokens": {"n": 2}}, auth.signer)
    assert status == 400 and "parameter must be a string, number or boolean" in answer["error"]
    # A scalar that is no input of the model is passed on as a parameter (extension_generate.md), not refused.
    status, answer = _post(url, {"text_input": "a", "max_tokens": 2, "min_tokens": 2}, auth.signer)
    assert status == 200


def test_a_decoupled_ensemble_refuses_generate_and_streams_token_by_token(clients, standin, container, engine_zip,
                                                                          auth):
    # A streaming (decoupled) repository deployed as a non-streaming release: its /predict is /generate.
    result = deploy(clients, _request(), engine_zip(streaming=True, version="1.2.1"), wait=FAST_WAIT)
    status, answer = _post(f"{result.url}/predict", {"text_input": "a", "max_tokens": 3}, auth.signer)
    assert status == 400 and "decoupled" in answer["error"]
    streamed = smoke_test(result.url, auth.signer, streaming=True, routes=result.routes, max_tokens=5)
    assert streamed.chunks == 5


@pytest.mark.parametrize("cmd, problem", [
    (deploy_cmd(f"{MOUNT}/model_repository", 2, http_port=8080), "no model configuration found"),
    (deploy_cmd(REPO_DIR, 4, http_port=8080), "built for world size 2, the launcher starts 4 ranks"),
    (["/bin/sh", "-c", "tritonserver"], "not the serving image's launcher"),
], ids=["wrong-repository-path", "world-size", "no-launcher"])
def test_a_repository_that_would_not_load_fails_the_bootstrap(clients, standin, container, engine_zip, cmd, problem):
    with pytest.raises(DeploymentFailedError, match=problem):
        deploy(clients, make_request(cmd=cmd, world_size=2), engine_zip(), wait=FAST_WAIT)
    assert standin.live_deployments() == [] and standin.live_models() == []


def test_a_missing_rank_engine_fails_the_bootstrap(clients, standin, container, engine_zip, tmp_path):
    import zipfile

    whole = engine_zip()
    broken = tmp_path / "no-rank1.zip"
    with zipfile.ZipFile(whole) as source, zipfile.ZipFile(broken, "w") as target:
        dropped = [n for n in source.namelist() if n.endswith("/rank1.engine")]
        assert dropped, source.namelist()
        for name in source.namelist():
            if name not in dropped:
                target.writestr(source.getinfo(name), source.read(name))
    with pytest.raises(DeploymentFailedError, match="has no rank1.engine"):
        deploy(clients, _request(), str(broken), wait=FAST_WAIT)


class _Registry:
    """A registry answering manifest HEADs for one repository and digest only."""

    def __init__(self, path: str, digest: str):
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_HEAD(self):
                outer.asked.append(self.path)
                self.send_response(200 if self.path == f"/v2/{path}/manifests/{digest}" else 404)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.asked: list[str] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


def test_the_service_pulls_the_image_by_digest_from_the_regions_registry(clients, standin, container, engine_zip):
    registry = _Registry("standinns/trtllm-serve", DIGEST)
    standin.registry_url = registry.url
    artifact = engine_zip()
    try:
        assert deploy(clients, _request(), artifact, wait=FAST_WAIT).lifecycle_state == "ACTIVE"
        assert registry.asked == [f"/v2/standinns/trtllm-serve/manifests/{DIGEST}"]
        with pytest.raises(DeploymentFailedError, match="could not be pulled"):
            deploy(clients, _request(release_id="other", display_name="other", image_digest="sha256:" + "cd" * 32),
                   artifact, wait=FAST_WAIT)
        with pytest.raises(DeploymentFailedError, match="is not in iad.ocir.io"):
            deploy(clients, _request(release_id="third", display_name="third",
                                     image="fra.ocir.io/standinns/trtllm-serve:1.0"), artifact, wait=FAST_WAIT)
    finally:
        registry.server.shutdown()
