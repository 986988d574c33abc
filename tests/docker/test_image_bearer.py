"""Push and look-up against a registry that answers with Bearer challenges (OCIR's scheme)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest_docker import skip_if_docker_disabled
from tests.docker.conftest import write_busybox_context
from tests.docker.token_registry import token_registry
from trtllm_oci.image import RegistryAuth, RegistryAuthError, publish_image, registry_has


@pytest.fixture(scope="module")
def bearer_registry(tmp_path_factory):
    skip_if_docker_disabled()
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


def test_the_stand_in_refuses_what_ocir_refuses(bearer_registry):
    """The token endpoint's rules (tests/docker/token_registry.py, each cited there): OCIR's user form, the
    tenancy's own namespace, no anonymous access."""
    ns, user = bearer_registry.username.split("/", 1)
    digest = "sha256:" + "0" * 64

    def look_up(username: str | None, repository: str) -> str | None:
        auth = RegistryAuth(registry=bearer_registry.address, username=username,
                            password=bearer_registry.password) if username else None
        return registry_has(f"{bearer_registry.address}/{repository}", "1", digest, auth)

    assert look_up(bearer_registry.username, f"{ns}/x") is None  # let in; no such image
    with pytest.raises(RegistryAuthError, match="must be '<tenancy-namespace>/<user>'"):
        look_up(user, f"{ns}/x")  # the bare user, without the namespace
    with pytest.raises(RegistryAuthError, match=f"refused user '{bearer_registry.username}'"):
        look_up(bearer_registry.username, f"other-{ns}/x")  # good login, another tenancy's repository
    with pytest.raises(RegistryAuthError, match="Anonymous users"):
        look_up(None, f"{ns}/x")
    [other] = [g for g in bearer_registry.grants if g.scopes and f"other-{ns}/" in g.scopes[0]]
    assert other.granted == (), "a scope outside the namespace was granted"


def test_a_bearer_login_is_refused_once_it_has_expired(tmp_path: Path):
    """`BEARER_TOKEN` + a JWT from /20180419/docker/token, good only while `login_token_valid` says so."""
    import time

    skip_if_docker_disabled()
    expires = {"live": time.time() + 60, "dead": time.time() - 1}
    with token_registry(tmp_path / "reg", login_token_valid=lambda t: expires.get(t, 0) > time.time()) as reg:
        def look_up(token: str) -> str | None:
            auth = RegistryAuth(registry=reg.address, username="BEARER_TOKEN", password=token)
            return registry_has(f"{reg.address}/ns/x", "1", "sha256:" + "0" * 64, auth)

        assert look_up("live") is None
        with pytest.raises(RegistryAuthError, match="invalid or has expired"):
            look_up("dead")
