"""Short-lived credentials through long waits: session tokens refreshed, OCIR tokens fetched when used."""

from __future__ import annotations

import os
import time

import pytest

from tests.cloud.conftest import COMPARTMENT, FAST_RETRY, FAST_WAIT, make_request
from tests.standins.oci_services import OciStandIn, session_token
from trtllm_oci.cloud.auth import make_signer
from trtllm_oci.cloud.clients import OciClients
from trtllm_oci.cloud.deployment import deploy
from trtllm_oci.cloud.errors import OciAuthError
from trtllm_oci.cloud.ocir import OcirTokenSource


def _profile(tmp_path, api_key, token: str):
    token_file = tmp_path / "token"
    token_file.write_text(token)
    config = tmp_path / "config"
    config.write_text(f"[S]\nfingerprint={api_key['fingerprint']}\ntenancy=ocid1.tenancy.oc1..t\nregion=us-ashburn-1\n"
                      f"key_file={api_key['key_file']}\nsecurity_token_file={token_file}\n")
    return str(config), token_file


def _fake_oci_cli(tmp_path, token_file, new_token: str, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "oci"
    script.write_text(f"#!/bin/sh\necho \"$*\" >> {tmp_path}/cli-calls\nprintf '%s' '{new_token}' > {token_file}\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")


@pytest.fixture
def session_standin(api_key):
    tokens = [session_token(2), session_token(3600)]
    server = OciStandIn({f"ST${t}": api_key["key"].public_key() for t in tokens}, lifecycle_delay=0.1)
    server.start()
    yield server, tokens
    server.stop()


def _clients(auth, standin):
    endpoints = {name: standin.url for name in ("data_science", "object_storage", "artifacts", "limits")}
    return OciClients(auth, endpoints=endpoints, timeout=(2.0, 2.0), retry=FAST_RETRY)


def test_a_session_token_is_refreshed_before_it_expires(session_standin, api_key, tmp_path, monkeypatch,
                                                        artifact_zip):
    standin, (short, long) = session_standin
    config, token_file = _profile(tmp_path, api_key, short)
    _fake_oci_cli(tmp_path, token_file, long, monkeypatch)
    auth = make_signer("security_token", profile="S", config_file=config)
    time.sleep(2.1)  # the first token is now expired: a signer that read it once would be refused
    result = deploy(_clients(auth, standin), make_request(), artifact_zip, wait=FAST_WAIT)
    assert result.lifecycle_state == "ACTIVE" and standin.auth_failures == 0
    calls = (tmp_path / "cli-calls").read_text().splitlines()
    assert calls and calls[0].startswith("session refresh --profile S --config-file")


def test_a_token_file_refreshed_by_someone_else_is_picked_up(session_standin, api_key, tmp_path):
    standin, (short, long) = session_standin
    config, token_file = _profile(tmp_path, api_key, long)
    auth = make_signer("security_token", profile="S", config_file=config)
    clients = _clients(auth, standin)
    clients.data_science.list_model_deployment_shapes(COMPARTMENT)
    standin.keys = {f"ST${short}": api_key["key"].public_key()}  # the old token is revoked...
    token_file.write_text(short)  # ...and the new one written by `oci session refresh` in another shell
    os.utime(token_file, ns=(time.time_ns(), time.time_ns() + 10**9))
    clients.data_science.list_model_deployment_shapes(COMPARTMENT)
    assert standin.auth_failures == 0


def test_an_expired_token_without_a_way_to_refresh_is_a_clear_error(session_standin, api_key, tmp_path,
                                                                    monkeypatch):
    standin, (short, _) = session_standin
    config, _ = _profile(tmp_path, api_key, short)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    auth = make_signer("security_token", profile="S", config_file=config)
    time.sleep(2.1)
    with pytest.raises(OciAuthError, match="oci session refresh --profile S"):
        _clients(auth, standin).data_science.list_model_deployment_shapes(COMPARTMENT)
    assert standin.received == []  # refused before a request that would only earn a 401


def test_ocir_tokens_are_fetched_again_when_they_get_old(standin, auth):
    source = OcirTokenSource("iad", auth.signer, base_url=standin.url, fresh_for_seconds=0.5)
    first = source.registry_auth()
    assert source.registry_auth() is first  # still fresh: no second call
    time.sleep(0.6)
    second = source.registry_auth()
    assert second is not first and second.username == "BEARER_TOKEN"
    assert len(standin.requests_to("GET", r"/20180419/docker/token$")) == 2


def test_an_invalidated_ocir_token_is_fetched_again_while_still_fresh(standin, auth):
    source = OcirTokenSource("iad", auth.signer, base_url=standin.url, fresh_for_seconds=3600)
    first = source()
    source.invalidate()  # the registry refused it though it was "fresh"
    second = source()
    assert second.password != first.password and source() is second
    assert source.fetches == 2 and len(standin.requests_to("GET", r"/20180419/docker/token$")) == 2
