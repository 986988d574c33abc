"""Signers, secret hygiene, OCIR token and container repositories against the stand-in."""

import logging

import oci
import pytest
import requests

from tests.cloud.conftest import COMPARTMENT
from tests.standins.oci_services import OciStandIn
from trtllm_oci.cloud.auth import make_signer
from trtllm_oci.cloud.errors import OciAuthError, OcirError
from trtllm_oci.cloud.ocir import ensure_container_repository, ocir_login_token


def _secret_bits(api_key):
    return [api_key["pem"].splitlines()[1], api_key["pem"].splitlines()[-2]]


def test_api_key_signer_repr_and_config_hide_secrets(auth, api_key):
    for text in (repr(auth), str(auth), repr(auth.config), str(auth.client_kwargs)):
        assert all(bit not in text for bit in _secret_bits(api_key))


def test_pass_phrase_and_key_content_are_redacted(api_key, tmp_path):
    cfg = tmp_path / "config"
    with open(api_key["config_file"]) as fh:
        cfg.write_text(fh.read() + "pass_phrase=hunter2-secret\n")
    auth = make_signer("api_key", config_file=str(cfg))
    assert "hunter2-secret" not in repr(auth.config) and "<redacted>" in repr(auth.config)


@pytest.mark.parametrize("setup, message", [
    (lambda d, k: str(d / "missing"), "not found. Create it with `oci setup config`"),
    (lambda d, k: _config(d, k, profile="OTHER"), "Profile 'DEFAULT' not found"),
    (lambda d, k: _config(d, k, key_file=str(d / "nokey.pem")), "does not exist"),
    (lambda d, k: _config(d, k, key_file=_write(d / "pub.pem", k["key"].public_key())), "not a usable private key"),
    (lambda d, k: _config(d, k, fingerprint="nothex"), "incomplete or malformed"),
])
def test_api_key_errors_are_actionable_and_secret_free(api_key, tmp_path, setup, message):
    with pytest.raises(OciAuthError, match=message) as info:
        make_signer("api_key", config_file=setup(tmp_path, api_key))
    assert info.value.__cause__ is None
    assert all(bit not in str(info.value) for bit in _secret_bits(api_key))


def _write(path, public_key):
    from cryptography.hazmat.primitives import serialization
    path.write_bytes(public_key.public_bytes(serialization.Encoding.PEM,
                                             serialization.PublicFormat.SubjectPublicKeyInfo))
    return str(path)


def _config(d, k, profile="DEFAULT", key_file=None, fingerprint=None, extra=""):
    path = d / "config"
    path.write_text(f"[{profile}]\nuser=ocid1.user.oc1..u\nfingerprint={fingerprint or k['fingerprint']}\n"
                    f"tenancy=ocid1.tenancy.oc1..t\nregion=us-ashburn-1\nkey_file={key_file or k['key_file']}\n{extra}")
    return str(path)


def test_security_token_signer_signs_and_never_shows_the_token(api_key, tmp_path, caplog):
    token = "eyJhbGciOiJSUzI1NiJ9.c2Vzc2lvbi1zZWNyZXQ.c2ln"
    (tmp_path / "token").write_text(token)
    cfg = _config(tmp_path, api_key, extra=f"security_token_file={tmp_path / 'token'}\n")
    auth = make_signer("security_token", config_file=cfg)
    assert token not in repr(auth) and token not in str(auth.config)
    server = OciStandIn({f"ST${token}": api_key["key"].public_key()})
    server.start()
    try:
        caplog.set_level(logging.DEBUG)
        user, jwt = ocir_login_token("iad", auth.signer, base_url=server.url)
        assert user == "BEARER_TOKEN" and jwt.count(".") == 2
        assert token not in caplog.text
    finally:
        server.stop()


def test_security_token_without_token_file_is_clear(api_key, tmp_path):
    with pytest.raises(OciAuthError, match="oci session authenticate"):
        make_signer("security_token", config_file=_config(tmp_path, api_key))


def test_resource_principal_outside_oci_is_clear(monkeypatch):
    monkeypatch.delenv("OCI_RESOURCE_PRINCIPAL_VERSION", raising=False)
    with pytest.raises(OciAuthError, match="OCI_RESOURCE_PRINCIPAL_VERSION"):
        make_signer("resource_principal")


def test_unknown_auth_kind():
    with pytest.raises(OciAuthError, match="use one of api_key"):
        make_signer("password")


def test_ocir_token_signed_request(auth, standin):
    user, token = ocir_login_token("iad", auth.signer, base_url=standin.url)
    assert user == "BEARER_TOKEN" and token
    [req] = standin.requests_to("GET", r"/20180419/docker/token$")
    assert req["headers"]["authorization"].startswith('Signature algorithm="rsa-sha256"')


def test_stand_in_rejects_wrong_key_like_oci(standin, api_key, tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = other.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                              serialization.NoEncryption())
    (tmp_path / "other.pem").write_bytes(pem)
    auth = make_signer("api_key", config_file=_config(tmp_path, api_key, key_file=str(tmp_path / "other.pem")))
    with pytest.raises(OcirError, match="HTTP 401"):
        ocir_login_token("iad", auth.signer, base_url=standin.url)
    response = requests.get(standin.url + "/20180419/docker/token")
    assert response.status_code == 401 and response.json()["code"] == "NotAuthenticated"
    assert "opc-request-id" in response.headers


def test_tampered_body_is_rejected(auth, standin):
    import oci.data_science.models as m
    client = oci.data_science.DataScienceClient(**auth.client_kwargs, service_endpoint=standin.url,
                                                retry_strategy=oci.retry.NoneRetryStrategy())
    signer = auth.signer

    def tamper(request):
        signed = signer(request)
        signed.body = signed.body.replace(b"proj", b"PROJ") if isinstance(signed.body, bytes) else \
            signed.body.replace("proj", "PROJ")
        return signed
    client.base_client.signer = tamper
    with pytest.raises(oci.exceptions.ServiceError) as info:
        client.create_model(m.CreateModelDetails(compartment_id=COMPARTMENT, project_id="proj"))
    assert info.value.status == 401


def test_unknown_and_missing_fields_are_rejected_like_oci(auth, standin):
    client = oci.data_science.DataScienceClient(**auth.client_kwargs, service_endpoint=standin.url,
                                                retry_strategy=oci.retry.NoneRetryStrategy())
    with pytest.raises(oci.exceptions.ServiceError, match="projectId is required"):
        client.create_model({"compartmentId": COMPARTMENT})
    with pytest.raises(oci.exceptions.ServiceError, match="bogusField is not a field"):
        client.create_model({"compartmentId": COMPARTMENT, "projectId": "p", "bogusField": 1})


def test_ensure_container_repository_creates_once(clients, standin):
    first = ensure_container_repository(clients.artifacts, COMPARTMENT, "trtllm-serve")
    again = ensure_container_repository(clients.artifacts, COMPARTMENT, "trtllm-serve")
    assert first == again
    assert len(standin.requests_to("POST", r"/container/repositories$")) == 1


def test_ensure_container_repository_name_taken_elsewhere(clients, standin):
    ensure_container_repository(clients.artifacts, "ocid1.compartment.oc1..elsewhere", "shared-name")
    with pytest.raises(OcirError, match="already exists in another compartment"):
        ensure_container_repository(clients.artifacts, COMPARTMENT, "shared-name")
