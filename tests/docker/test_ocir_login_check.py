"""The pre-flight `registry login` check against a registry with OCIR's rules (tests/docker/token_registry.py):
refused credentials fail it; a repository refused after an accepted login fails it only once the repository
exists (before that, the image stage creates it and the push checks the access)."""

from __future__ import annotations

import json

import pytest

from tests.cloud.conftest import COMPARTMENT, PROJECT, api_key, auth, clients, standin  # noqa: F401
from tests.conftest_docker import skip_if_docker_disabled
from tests.docker.token_registry import token_registry


@pytest.fixture
def strict_registry(tmp_path):
    skip_if_docker_disabled()
    # Its tenancy namespace is not the spec's: the login is good, the spec's repository is not granted.
    with token_registry(tmp_path / "reg", namespace="ns") as reg:
        yield reg


def check(spec, reg, monkeypatch, clients, password: str):  # noqa: F811
    from trtllm_oci.image import RegistryAuth
    from trtllm_oci.release.deployment import OcirLogin, registry_login_check
    from trtllm_oci.settings import current_settings

    monkeypatch.setenv("TRTLLM_OCI_OCI_ENDPOINTS", json.dumps({"ocir": reg.url}))
    login = OcirLogin(lambda: RegistryAuth(registry=reg.address, username=reg.username, password=password),
                      "the test's login")
    return registry_login_check(spec, current_settings(), login, clients)


def test_the_login_check_tells_credentials_from_repository_access(monkeypatch, standin, clients,  # noqa: F811
                                                                  strict_registry) -> None:
    from trtllm_oci.cloud.ocir import ensure_container_repository
    from trtllm_oci.spec import parse_spec

    spec = parse_spec({
        "name": "login-check", "model": {"hf_repo": "org/model", "revision": "0" * 40},
        "target": {"kind": "oci", "region": "us-ashburn-1", "compartment_id": COMPARTMENT, "project_id": PROJECT,
                   "shape": "VM.GPU.A10.1", "ocir_namespace": standin.namespace,
                   "ocir_repository": "trtllm-oci/login-check"},
    })
    wrong = check(spec, strict_registry, monkeypatch, clients, "not-the-token")
    assert wrong.ok is False and "token endpoint answered HTTP 401" in wrong.detail
    assert "the test's login" in wrong.detail and "not-the-token" not in wrong.detail

    unborn = check(spec, strict_registry, monkeypatch, clients, strict_registry.password)
    assert unborn.ok is None and "does not exist yet" in unborn.detail
    assert [(r["method"]) for r in standin.received if r["method"] != "GET"] == [], "the check created something"

    ensure_container_repository(clients.artifacts, COMPARTMENT, "trtllm-oci/login-check")
    refused = check(spec, strict_registry, monkeypatch, clients, strict_registry.password)
    assert refused.ok is False and "The login was accepted" in refused.detail and "IAM policy" in refused.detail
