"""A push refused for its login is sent once more with a new token, when the login can give one.

A ~45 GB push can outlast the OCIR docker token it started with ("The bearer token expires automatically and must
be regenerated": https://www.ateam-oracle.com/authentication-mechanisms-for-oci-container-registry-ocir, option 2);
the registry keeps the layers pushed before the refusal, so the second push sends only what is missing. The
registry is tests/docker/token_registry.py (the real distribution binary behind OCIR's token-endpoint rules), its
BEARER_TOKEN logins the OCI stand-in's /20180419/docker/token JWTs, which expire with no leeway.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.cloud.conftest import api_key, auth, standin  # noqa: F401
from tests.conftest_docker import skip_if_docker_disabled
from tests.docker.token_registry import OCIR_TOKEN_USERNAME, token_registry
from trtllm_oci.cloud.ocir import OcirTokenSource
from trtllm_oci.image import RegistryAuth, RegistryAuthError, RegistryClient, push_image
from trtllm_oci.release.deployment import OcirLogin


@pytest.fixture
def ocir(tmp_path: Path, standin):  # noqa: F811
    skip_if_docker_disabled()
    with token_registry(tmp_path / "ocir", namespace=standin.namespace,
                        login_token_valid=standin.ocir_login_valid) as reg:
        yield reg


def _tagged(docker_client, busybox_image: str, repository: str, tag: str) -> None:
    docker_client.images.get(busybox_image).tag(repository, tag)


def _attempts(lines: list[str], repository: str, tag: str) -> int:
    return sum(1 for line in lines if line.startswith(f"pushing {repository}:{tag}"))


def test_a_token_refused_at_the_push_is_fetched_again_once(
    docker_client, busybox_image, standin, auth, ocir,  # noqa: F811
) -> None:
    """The source took its token for fresh (fetched before a long build, good for an hour as far as it knew), but
    OCIR let it expire: the push is refused, the source is told to drop it, and the push with a new one succeeds."""
    standin.ocir_token_seconds = 1
    source = OcirTokenSource("iad", auth.signer, base_url=standin.url, registry=ocir.address,
                             fresh_for_seconds=3600)
    stale = source().password.get_secret_value()
    time.sleep(1.2)
    assert not standin.ocir_login_valid(stale)
    standin.ocir_token_seconds = 300
    repository, tag = f"{ocir.address}/{standin.namespace}/token-retry", "1"
    _tagged(docker_client, busybox_image, repository, tag)
    _tagged(docker_client, busybox_image, repository, "layers-pushed-before")
    # The layers are already in the registry, as those an earlier attempt got through before its refusal are.
    push_image(repository, "layers-pushed-before", RegistryAuth(
        registry=ocir.address, username=ocir.username, password=ocir.password), docker_client, [].append)
    lines: list[str] = []

    digest = push_image(repository, tag, OcirLogin(source, "a docker token signed by the test key"),
                        docker_client, lines.append)

    assert source.fetches == 2
    assert _attempts(lines, repository, tag) == 2
    [retry] = [line for line in lines if "fetched a new one" in line]
    assert f"registry {ocir.address} refused the login of {OCIR_TOKEN_USERNAME!r}" in retry
    assert stale not in "\n".join(lines)
    second = lines[lines.index(retry) + 1:]
    assert [line for line in second if line.endswith("Layer already exists")] and not [
        line for line in second if line.endswith(" Pushed")], "the second push sent layers the registry held"
    refused = [g for g in ocir.refusals() if g.username == OCIR_TOKEN_USERNAME]
    assert refused and all(g.at < ocir.pushes_granted()[-1].at for g in refused)
    assert RegistryClient(ocir.address, source()).manifest(f"{standin.namespace}/token-retry", tag)[0] == digest


def test_a_login_refused_twice_is_raised_after_the_second_push(
    docker_client, busybox_image, standin, auth, ocir,  # noqa: F811
) -> None:
    """Every token the source hands out is dead on arrival (lifetime 0): one refetch, then the registry's error."""
    standin.ocir_token_seconds = 0
    source = OcirTokenSource("iad", auth.signer, base_url=standin.url, registry=ocir.address)
    repository, tag = f"{ocir.address}/{standin.namespace}/token-dead", "1"
    _tagged(docker_client, busybox_image, repository, tag)
    lines: list[str] = []

    with pytest.raises(RegistryAuthError) as info:
        push_image(repository, tag, source, docker_client, lines.append)

    assert source.fetches == 2 and _attempts(lines, repository, tag) == 2
    error = info.value
    assert error.registry == ocir.address and error.username == OCIR_TOKEN_USERNAME
    message = str(error)
    assert f"registry {ocir.address} refused user {OCIR_TOKEN_USERNAME!r}" in message
    assert "'BEARER_TOKEN' with a fresh token" in message and "IAM policy" in message
    assert all(token not in message for token in standin.ocir_login_tokens)
    assert ocir.pushes_granted() == []


@pytest.mark.parametrize("given_as", ["credentials", "login"])
def test_a_wrong_fixed_password_is_not_pushed_again(
    tmp_path: Path, docker_client, busybox_image, auth_registry, given_as: str
) -> None:
    """htpasswd (as an auth token in the `ocir-auth-token` Secret): asking again gives the same password, so the
    push is tried once and raised with today's message, the same whichever way the credentials came."""
    repository, tag = f"{auth_registry.address}/team/fixed-{given_as}", "t"
    _tagged(docker_client, busybox_image, repository, tag)
    wrong = RegistryAuth(registry=auth_registry.address, username=auth_registry.username,
                         password="not-the-password-" + "y" * 8)
    asked: list[RegistryAuth] = []

    def stored() -> RegistryAuth:
        asked.append(wrong)
        return wrong

    given = wrong if given_as == "credentials" else OcirLogin(stored, "an auth token in a Secret block")
    lines: list[str] = []
    with pytest.raises(RegistryAuthError) as info:
        push_image(repository, tag, given, docker_client, lines.append)
    with pytest.raises(RegistryAuthError) as plain:
        push_image(repository, tag, wrong, docker_client, [].append)

    assert _attempts(lines, repository, tag) == 1
    assert not any("fetched a new one" in line for line in lines)
    assert str(info.value) == str(plain.value)
    assert f"registry {auth_registry.address} refused user {auth_registry.username!r}" in str(info.value)
