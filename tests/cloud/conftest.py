"""Fixtures: a throwaway API key + OCI config file, the OCI stand-in, and SDK clients pointed at it."""

from __future__ import annotations

import hashlib
import os
import zipfile

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.standins.oci_services import OciStandIn
from trtllm_oci.cloud.auth import make_signer
from trtllm_oci.cloud.clients import OciClients, RetryPolicy
from trtllm_oci.cloud.deployment import DeploymentRequest
from trtllm_oci.cloud.waiting import WaitPolicy

TENANCY = "ocid1.tenancy.oc1..standintenancy"
USER = "ocid1.user.oc1..standinuser"
COMPARTMENT = "ocid1.compartment.oc1..standincompartment"
PROJECT = "ocid1.datascienceproject.oc1.iad.standinproject"
DIGEST = "sha256:" + "ab" * 32
FAST_RETRY = RetryPolicy(max_attempts=4, total_elapsed_seconds=30, base_sleep_seconds=0.01,
                         max_sleep_seconds=0.05, jitter_seconds=0.01)
FAST_WAIT = WaitPolicy(timeout_seconds=10.0, poll_seconds=0.05)


# The SDK waiter (oci/waiter.py) sleeps 1 s, 2 s, 4 s ... between polls, sized for real services. Against the
# stand-in, whose work requests finish in a fraction of a second, the same waiter runs with its sleeps scaled
# down; everything else about it (the back-off order, the deadline on real elapsed time) is unchanged.
WAITER_TIME_SCALE = 0.02


@pytest.fixture(autouse=True)
def fast_sdk_waiter(monkeypatch):
    import types

    import oci.waiter

    real = oci.waiter.time
    monkeypatch.setattr(oci.waiter, "time", types.SimpleNamespace(
        time=real.time, sleep=lambda seconds: real.sleep(seconds * WAITER_TIME_SCALE)))


@pytest.fixture(scope="session")
def api_key(tmp_path_factory):
    """(private key, config file path, key file path, PEM text, fingerprint) of a fresh test API key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption()).decode()
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    digest = hashlib.md5(der).hexdigest()
    fingerprint = ":".join(digest[i:i + 2] for i in range(0, 32, 2))
    home = tmp_path_factory.mktemp("oci")
    key_file = home / "key.pem"
    key_file.write_text(pem)
    os.chmod(key_file, 0o600)
    config_file = home / "config"
    config_file.write_text(
        f"[DEFAULT]\nuser={USER}\nfingerprint={fingerprint}\ntenancy={TENANCY}\nregion=us-ashburn-1\n"
        f"key_file={key_file}\n"
    )
    return {"key": key, "pem": pem, "config_file": str(config_file), "key_file": str(key_file),
            "fingerprint": fingerprint, "home": home}


@pytest.fixture(scope="session")
def auth(api_key):
    return make_signer("api_key", profile="DEFAULT", config_file=api_key["config_file"])


@pytest.fixture
def standin(api_key):
    server = OciStandIn({f"{TENANCY}/{USER}/{api_key['fingerprint']}": api_key["key"].public_key()},
                        lifecycle_delay=0.15)
    server.start()
    yield server
    server.stop()
    assert server.response_errors == [], "the stand-in built answers the SDK would misread"


@pytest.fixture
def clients(auth, standin):
    endpoints = {name: standin.url for name in ("data_science", "object_storage", "artifacts", "limits")}
    return OciClients(auth, endpoints=endpoints, timeout=(2.0, 1.0), retry=FAST_RETRY)


@pytest.fixture
def artifact_zip(tmp_path):
    """A small real zip shaped like the Triton model repository artifact."""
    path = tmp_path / "artifact.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("repo/ensemble/config.pbtxt", 'name: "ensemble"\nplatform: "ensemble"\n')
        zf.writestr("repo/tensorrt_llm/1/rank0.engine", os.urandom(64 * 1024))
    return str(path)


def make_request(**overrides) -> DeploymentRequest:
    fields = dict(
        region="us-ashburn-1", compartment_id=COMPARTMENT, project_id=PROJECT, shape="VM.GPU.A10.2",
        instance_count=1, bandwidth_mbps=10, display_name="llama-tp2", release_id="rel-001",
        image="iad.ocir.io/standinns/trtllm-serve:1.0", image_digest=DIGEST,
        cmd=["python3", "/opt/trtllm_oci/launch.py", "--world-size", "2", "--http-port", "8080"],
        server_port=8080, health_port=8080, artifact_size_bytes=30 * 10**9, image_size_bytes=25 * 10**9,
    )
    fields.update(overrides)
    return DeploymentRequest(**fields)
