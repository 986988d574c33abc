"""Push and look-up against a registry that answers with Bearer challenges (OCIR's scheme)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest_docker import docker_disabled
from tests.docker.conftest import write_busybox_context
from tests.docker.token_registry import token_registry
from trtllm_oci.image import RegistryAuth, RegistryAuthError, publish_image, registry_has


@pytest.fixture(scope="module")
def bearer_registry(tmp_path_factory):
    if docker_disabled():
        pytest.skip("TRTLLM_OCI_NO_DOCKER=1")
    with token_registry(tmp_path_factory.mktemp("token-registry")) as reg:
        yield reg


def test_publish_and_skip_through_bearer_tokens(tmp_path: Path, docker_client, bearer_registry):
    auth = RegistryAuth(
        registry=bearer_registry.address, username=bearer_registry.username, password=bearer_registry.password
    )
    context = write_busybox_context(tmp_path / "ctx")
    repository = f"{bearer_registry.address}/ns/triton-trtllm"
    lines: list[str] = []
    first = publish_image(
        context,
        "Dockerfile",
        repository,
        "1.0",
        None,
        None,
        auth,
        docker_client,
        lines.append,
        network_disabled=True,
    )
    again = publish_image(
        context,
        "Dockerfile",
        repository,
        "1.0",
        None,
        None,
        auth,
        docker_client,
        lines.append,
        network_disabled=True,
    )
    assert not first.skipped and again.skipped and again.digest == first.digest


def test_bad_token_credentials(bearer_registry):
    auth = RegistryAuth(
        registry=bearer_registry.address, username=bearer_registry.username, password="wrong-token-value"
    )
    with pytest.raises(RegistryAuthError) as info:
        registry_has(f"{bearer_registry.address}/ns/x", "1", "sha256:" + "0" * 64, auth)
    message = str(info.value)
    assert "token endpoint answered HTTP 401" in message and "'ns/oci-user'" in message
    assert "wrong-token-value" not in message
