"""Build FROM scratch, push to a real registry with htpasswd auth, read digests back, skip repeats."""

from __future__ import annotations

import functools
import itertools
import pickle
import shutil
from pathlib import Path

import pytest

from tests.docker.conftest import write_busybox_context
from trtllm_oci.build.runner import ContainerRunSpec, Step, run_steps_in_container
from trtllm_oci.image import (
    BUILD_KEY_LABEL,
    ImageBuildError,
    ImagePushError,
    RegistryAuth,
    RegistryAuthError,
    RegistryClient,
    build_image,
    compute_build_key,
    publish_image,
    push_image,
    registry_has,
)
from trtllm_oci.image.build import SERVING_CONTEXT

REPO_ROOT = Path(__file__).resolve().parents[2]
_counter = itertools.count()


def _auth(reg, password: str | None = None) -> RegistryAuth:
    return RegistryAuth(registry=reg.address, username=reg.username, password=password or reg.password)


def _context(tmp_path: Path, note: str = "v1") -> Path:
    context = write_busybox_context(tmp_path / f"ctx{next(_counter)}", "COPY note.txt /note.txt\n")
    (context / "note.txt").write_text(note)
    return context


class Log(list):
    def __call__(self, line: str) -> None:
        self.append(line)


def test_build_push_and_digest_matches_registry(tmp_path, docker_client, auth_registry):
    repository = f"{auth_registry.address}/team/serving"
    log = Log()
    image_id = build_image(
        _context(tmp_path),
        "Dockerfile",
        f"{repository}:t1",
        {"SOURCE_REVISION": "abc123"},
        {"ai.trtllm-oci.trtllm-version": "1.2.1"},
        docker_client,
        log,
        network_disabled=True,
    )
    assert image_id.startswith("sha256:")
    assert any("Successfully built" in line for line in log)
    assert docker_client.images.get(f"{repository}:t1").labels["ai.trtllm-oci.trtllm-version"] == "1.2.1"

    digest = push_image(repository, "t1", _auth(auth_registry), docker_client, log)
    client = RegistryClient(auth_registry.address, _auth(auth_registry))
    served_digest, media_type, _ = client.manifest("team/serving", "t1")
    assert digest == served_digest
    assert media_type == "application/vnd.docker.distribution.manifest.v2+json"
    assert f"{repository}@{digest}" in docker_client.images.get(f"{repository}:t1").attrs["RepoDigests"]
    assert any("Pushed" in line for line in log)


def test_publish_skips_when_registry_has_same_build(tmp_path, docker_client, auth_registry):
    repository = f"{auth_registry.address}/team/publish"
    context = _context(tmp_path)
    args = {"IMAGE_REVISION": "r1"}
    first = publish_image(
        context,
        "Dockerfile",
        repository,
        "1.0",
        args,
        None,
        _auth(auth_registry),
        docker_client,
        Log(),
        network_disabled=True,
    )
    assert not first.skipped and first.image_id

    second_log = Log()
    second = publish_image(
        context,
        "Dockerfile",
        repository,
        "1.0",
        args,
        None,
        _auth(auth_registry),
        docker_client,
        second_log,
        network_disabled=True,
    )
    assert second.skipped and second.image_id is None
    assert second.digest == first.digest and second.build_key == first.build_key
    assert not any(line.startswith("building ") for line in second_log)
    assert second.pinned_ref == f"{repository}:1.0@{first.digest}"

    (context / "note.txt").write_text("v2")
    third = publish_image(
        context,
        "Dockerfile",
        repository,
        "1.0",
        args,
        None,
        _auth(auth_registry),
        docker_client,
        Log(),
        network_disabled=True,
    )
    assert not third.skipped and third.digest != first.digest
    assert registry_has(repository, "1.0", third.build_key, _auth(auth_registry)) == third.digest
    assert registry_has(repository, "1.0", first.build_key, _auth(auth_registry)) is None


def test_wrong_password_is_a_clear_auth_error_without_the_password(tmp_path, docker_client, auth_registry):
    repository = f"{auth_registry.address}/team/denied"
    wrong = "not-the-password-" + "x" * 8
    docker_client.images.get(_any_local_image(tmp_path, docker_client)).tag(repository, "t")
    with pytest.raises(RegistryAuthError) as pushed:
        push_image(repository, "t", _auth(auth_registry, wrong), docker_client, Log())
    with pytest.raises(RegistryAuthError) as queried:
        registry_has(repository, "t", "sha256:" + "0" * 64, _auth(auth_registry, wrong))
    for error in (pushed.value, queried.value):
        message = str(error)
        assert auth_registry.address in message
        assert repr(auth_registry.username) in message
        assert wrong not in message and auth_registry.password not in message
        assert error.registry == auth_registry.address
        assert str(pickle.loads(pickle.dumps(error))) == message


def test_no_credentials_for_an_auth_registry(tmp_path, docker_client, auth_registry):
    repository = f"{auth_registry.address}/team/anon"
    docker_client.images.get(_any_local_image(tmp_path, docker_client)).tag(repository, "t")
    with pytest.raises(RegistryAuthError, match="anonymous"):
        push_image(repository, "t", None, docker_client, Log())
    with pytest.raises(RegistryAuthError, match="anonymous"):
        registry_has(repository, "t", "sha256:" + "0" * 64, None)


def test_open_registry_without_credentials(tmp_path, docker_client, registry):
    repository = f"{registry.address}/team/open"
    docker_client.images.get(_any_local_image(tmp_path, docker_client)).tag(repository, "t")
    digest = push_image(repository, "t", None, docker_client, Log())
    assert RegistryClient(registry.address).manifest("team/open", "t")[0] == digest
    # Pushed by hand, so it has no build key: not "the same build".
    assert registry_has(repository, "t", "sha256:" + "1" * 64, None) is None
    assert registry_has(repository, "absent-tag", "sha256:" + "1" * 64, None) is None
    assert registry_has(f"{registry.address}/team/never-pushed", "t", "sha256:" + "1" * 64, None) is None


def test_pushing_an_image_that_is_not_there(docker_client, registry):
    with pytest.raises(ImagePushError, match="build or tag it first"):
        push_image(f"{registry.address}/team/ghost", "nope", None, docker_client, Log())


def test_credentials_for_another_registry_are_refused(registry):
    auth = RegistryAuth(registry="iad.ocir.io", username="ns/u", password="t")
    with pytest.raises(ValueError, match="'iad.ocir.io'"):
        registry_has(f"{registry.address}/team/x", "t", "sha256:" + "0" * 64, auth)


def test_build_failure_carries_the_builder_error(tmp_path, docker_client):
    context = write_busybox_context(
        tmp_path / "bad", "RUN echo compiling; echo 'fatal: missing header' >&2; exit 7\n"
    )
    with pytest.raises(ImageBuildError) as info:
        build_image(
            context,
            "Dockerfile",
            "trtllm-oci-test/bad:1",
            None,
            None,
            docker_client,
            Log(),
            network_disabled=True,
        )
    message = str(info.value)
    assert "returned a non-zero code: 7" in message
    assert "fatal: missing header" in message


def test_serving_dockerfile_pins_and_labels(tmp_path, docker_client, busybox_image):
    """Dockerfile.serving on a stand-in base whose python3 records its calls (no NGC image here)."""
    base = write_busybox_context(
        tmp_path / "fake-base",
        "COPY python3 /usr/bin/python3\n",
    )
    (base / "python3").write_text('#!/bin/sh\necho "$*" >> /python3-calls.log\n')
    (base / "python3").chmod(0o755)
    build_image(
        base,
        "Dockerfile",
        "trtllm-oci-test/fake-triton:1",
        None,
        None,
        docker_client,
        Log(),
        network_disabled=True,
    )

    context = tmp_path / "serving-context"
    context.mkdir()
    shutil.copy(SERVING_CONTEXT / "trtllm_oci_launch.py", context)  # the launcher the Dockerfile copies in
    args = {
        "BASE_IMAGE": "trtllm-oci-test/fake-triton:1",
        "TRANSFORMERS_VERSION": "4.51.3",
        "SENTENCEPIECE_VERSION": "0.2.0",
        "IMAGE_REVISION": "0123abc",
        "TRTLLM_VERSION": "1.2.1",
        "SOURCE_REVISION": "hf-rev-9",
    }
    tag = "trtllm-oci-test/serving:1"
    build_image(
        context,
        REPO_ROOT / "infra" / "Dockerfile.serving",
        tag,
        args,
        None,
        docker_client,
        Log(),
        network_disabled=True,
    )
    labels = docker_client.images.get(tag).labels
    assert labels["org.opencontainers.image.revision"] == "0123abc"
    assert labels["ai.trtllm-oci.trtllm-version"] == "1.2.1"
    assert labels["ai.trtllm-oci.source-revision"] == "hf-rev-9"
    assert labels["org.opencontainers.image.base.name"] == "trtllm-oci-test/fake-triton:1"

    log = Log()
    spec = ContainerRunSpec(image=tag, gpus=None, network_mode="none", ulimits={})
    run_steps_in_container([Step(name="calls", argv=["cat", "/python3-calls.log"])], spec, docker_client, log)
    assert log[1:] == [
        "-m pip install --no-cache-dir transformers==4.51.3 sentencepiece==0.2.0",
        "-m pip check",
        "-c import transformers, tokenizers, sentencepiece",
    ]


def test_secret_like_build_args_are_refused(tmp_path, docker_client):
    with pytest.raises(ImageBuildError, match="HF_TOKEN"):
        build_image(
            _context(tmp_path), "Dockerfile", "x:1", {"HF_TOKEN": "hf_abc"}, None, docker_client, Log()
        )


def test_missing_dockerfile_and_context(tmp_path, docker_client):
    with pytest.raises(ImageBuildError, match="Dockerfile.nope"):
        build_image(tmp_path, "Dockerfile.nope", "x:1", None, None, docker_client, Log())
    with pytest.raises(ImageBuildError, match="not a directory"):
        build_image(tmp_path / "absent", "Dockerfile", "x:1", None, None, docker_client, Log())


def test_prefect_docker_blocks_adapt(docker_host, auth_registry, tmp_path):
    from prefect_docker import DockerHost, DockerRegistryCredentials

    from trtllm_oci.tasks.docker_blocks import docker_client_from_block, registry_auth_from_block

    client = docker_client_from_block(DockerHost(base_url=docker_host))
    try:
        assert client.ping()
    finally:
        client.close()
    auth = registry_auth_from_block(
        DockerRegistryCredentials(
            username=auth_registry.username,
            password=auth_registry.password,
            registry_url=f"http://{auth_registry.address}",
        )
    )
    assert auth == _auth(auth_registry)
    assert registry_has(f"{auth_registry.address}/team/none", "t", "sha256:" + "0" * 64, auth) is None


_LOCAL_IMAGE: dict[str, str] = {}


def _any_local_image(tmp_path: Path, docker_client) -> str:
    """A small image to tag and push, built once per session."""
    if "id" not in _LOCAL_IMAGE:
        _LOCAL_IMAGE["id"] = build_image(
            _context(tmp_path),
            "Dockerfile",
            "trtllm-oci-test/pushable:1",
            None,
            None,
            docker_client,
            Log(),
            network_disabled=True,
        )
    return _LOCAL_IMAGE["id"]


def test_build_key_tracks_what_the_build_sees(tmp_path):
    context = _context(tmp_path)
    (context / ".dockerignore").write_text("scratch/\n")
    (context / "scratch").mkdir()
    key = compute_build_key(context, "Dockerfile", {"A": "1"})
    (context / "scratch" / "junk.bin").write_bytes(b"ignored")
    assert compute_build_key(context, "Dockerfile", {"A": "1"}) == key
    assert compute_build_key(context, "Dockerfile", {"A": "2"}) != key
    assert compute_build_key(context, "Dockerfile", {"A": "1"}, {"l": "x"}) != key
    assert compute_build_key(context, "Dockerfile", {"A": "1"}, {BUILD_KEY_LABEL: "x"}) == key
    (context / "note.txt").chmod(0o600)
    assert compute_build_key(context, "Dockerfile", {"A": "1"}) != key


def test_an_image_for_a_grace_host_is_built_and_found_as_linux_arm64(tmp_path, docker_client, auth_registry):
    # BM.GPU.GB200.4 runs an arm64 host: an amd64 image would not start there. FROM scratch with COPY only runs
    # no program, so this amd64 engine builds it without emulation.
    repository = f"{auth_registry.address}/team/grace"
    context = tmp_path / "grace"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM scratch\nCOPY note.txt /note.txt\n")
    (context / "note.txt").write_text("grace")
    publish = functools.partial(publish_image, context, "Dockerfile", repository, "1.0", None, None,
                                _auth(auth_registry), docker_client, Log(), network_disabled=True)
    arm = publish(platform="linux/arm64")
    assert not arm.skipped
    assert docker_client.images.get(arm.image_id).attrs["Architecture"] == "arm64"
    client = RegistryClient(auth_registry.address, _auth(auth_registry))
    _, _, manifest = client.manifest("team/grace", "1.0")
    config = client._get(f"/v2/team/grace/blobs/{manifest['config']['digest']}", "repository:team/grace:pull")
    assert config.json()["architecture"] == "arm64"
    # The platform is part of the build: the same files for amd64 are another image, and each is found again.
    assert arm.build_key != compute_build_key(context, "Dockerfile")
    assert compute_build_key(context, "Dockerfile") == compute_build_key(context, "Dockerfile", platform="linux/amd64")
    assert publish(platform="linux/arm64").skipped
    amd = publish()
    assert not amd.skipped and docker_client.images.get(amd.image_id).attrs["Architecture"] == "amd64"


def test_a_build_that_cannot_run_the_target_architecture_says_how_to_build_it() -> None:
    from trtllm_oci.image.build import _foreign_platform_hint

    hint = _foreign_platform_hint(["Step 3/5 : RUN python3 -c pass", "exec /bin/sh: exec format error"],
                                  "linux/arm64")
    assert "linux/arm64" in hint and "DockerHost block" in hint and "binfmt" in hint
    assert _foreign_platform_hint(["Step 3/5 : RUN false", "returned a non-zero code: 1"], "linux/arm64") == ""
