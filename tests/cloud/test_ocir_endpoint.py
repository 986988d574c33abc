"""OCIR through another address (the `ocir` entry of TRTLLM_OCI_OCI_ENDPOINTS): the push, the registry API and
the docker token go there; the deployment still names the region's OCIR reference."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trtllm_oci.errors import InputError
from trtllm_oci.image.refs import RegistryEndpoint
from trtllm_oci.release.deployment import deployment_request, push_image_ref, registry_auth, serving_image_ref
from trtllm_oci.settings import current_settings
from trtllm_oci.spec import load_spec

EXAMPLE = Path(__file__).parents[2] / "examples" / "release-oci-llama2-13b.yaml"


def endpoints(monkeypatch, **entries: str) -> None:
    monkeypatch.setenv("TRTLLM_OCI_OCI_ENDPOINTS", json.dumps(entries))


def test_without_an_endpoint_the_push_goes_to_the_regions_ocir(monkeypatch) -> None:
    monkeypatch.delenv("TRTLLM_OCI_OCI_ENDPOINTS", raising=False)
    spec = load_spec(EXAMPLE)
    assert str(push_image_ref(spec, current_settings())) == serving_image_ref(spec)


def test_an_ocir_endpoint_moves_the_push_but_not_the_image_the_deployment_pulls(monkeypatch) -> None:
    endpoints(monkeypatch, ocir="https://ocir.internal.example:8443/")
    spec = load_spec(EXAMPLE)
    pushed = push_image_ref(spec, current_settings())
    canonical = serving_image_ref(spec)
    assert pushed.registry == "ocir.internal.example:8443"
    assert str(pushed) == "ocir.internal.example:8443/" + canonical.split("/", 1)[1]
    assert deployment_request(spec, artifact_size_bytes=10**9).image == canonical


@pytest.mark.parametrize("value", ["ftp://ocir.example", "https://ocir.example/v2", "https://", "ocir example"])
def test_a_malformed_ocir_endpoint_names_the_variable_and_the_form(monkeypatch, value: str) -> None:
    endpoints(monkeypatch, ocir=value)
    with pytest.raises(InputError, match=r"TRTLLM_OCI_OCI_ENDPOINTS\['ocir'\].*https://<host>\[:port\]"):
        push_image_ref(load_spec(EXAMPLE), current_settings())


def test_registry_endpoint_forms() -> None:
    assert RegistryEndpoint.parse("127.0.0.1:5000", what="x") == RegistryEndpoint("127.0.0.1:5000", None)
    assert RegistryEndpoint.parse("http://127.0.0.1:5000", what="x") == RegistryEndpoint("127.0.0.1:5000", "http")


def test_the_login_is_for_the_endpoint_and_the_token_comes_from_it(monkeypatch, standin, clients) -> None:
    monkeypatch.delenv("TRTLLM_OCI_OCIR_TOKEN_URL", raising=False)
    endpoints(monkeypatch, ocir=standin.url)  # the stand-in serves OCIR's /20180419/docker/token
    spec = load_spec(EXAMPLE)
    auth = registry_auth(spec.target, clients, current_settings())
    assert auth.registry == standin.url.removeprefix("http://") and auth.username == "BEARER_TOKEN"
    assert len(standin.requests_to("GET", r"^/20180419/docker/token$")) == 1
    stored = registry_auth(spec.target, clients, current_settings(), stored_auth_token="ci-user:tok")
    assert stored.registry == auth.registry and stored.username.endswith("/ci-user")


@pytest.mark.parametrize(("stored_user", "login"), [
    ("ci-user", "{ns}/ci-user"),
    ("oracleidentitycloudservice/jo@example.com", "{ns}/oracleidentitycloudservice/jo@example.com"),
    ("{ns}/ci-user", "{ns}/ci-user"),  # the docker login user, pasted whole
    ("{ns}/Default/ci-user", "{ns}/Default/ci-user"),
])
def test_the_secret_takes_each_ocir_user_form(stored_user, login, monkeypatch, standin, clients) -> None:
    """OCIR's login users: `<namespace>/<user>`, `<namespace>/oracleidentitycloudservice/<user>` (IDCS), and
    `<namespace>/<identity-domain>/<user>` (tests/docker/token_registry.py cites them)."""
    endpoints(monkeypatch, ocir=standin.url)
    spec = load_spec(EXAMPLE)
    ns = spec.target.ocir_namespace
    auth = registry_auth(spec.target, clients, current_settings(), f"{stored_user.format(ns=ns)}:tok:with:colons")
    assert auth.username == login.format(ns=ns) and auth.password.get_secret_value() == "tok:with:colons"
    assert standin.requests_to("GET", r"/20180419/docker/token$") == [], "an auth token needs no docker token"


@pytest.mark.parametrize(("stored", "why"), [
    ("no-colon-token", r"must hold '<user>:<auth token>'"),
    ("ci-user:", r"must hold '<user>:<auth token>'"),
    ("othertenancy/domain/ci-user:s3cr3t", r"names user 'othertenancy/domain/ci-user'.*target.ocir_namespace"),
    ("a/b/c/d:s3cr3t", r"not an OCIR login"),
])
def test_a_secret_in_another_form_is_refused_naming_the_form(stored, why, monkeypatch, standin, clients) -> None:
    endpoints(monkeypatch, ocir=standin.url)
    spec = load_spec(EXAMPLE)
    with pytest.raises(InputError, match=why) as refused:
        registry_auth(spec.target, clients, current_settings(), stored)
    assert "s3cr3t" not in str(refused.value) and "no-colon-token" not in str(refused.value)
