"""OCIR naming and image-reference parsing (no engine needed)."""

from __future__ import annotations

import pytest

from trtllm_oci.image import (
    OCIR_TOKEN_USERNAME,
    RegistryAuth,
    ocir_image_ref,
    ocir_username,
    parse_image_ref,
)


def test_ocir_image_ref():
    assert (
        ocir_image_ref("iad", "axk2xyz", "triton-trtllm", "25.12-llama3")
        == "iad.ocir.io/axk2xyz/triton-trtllm:25.12-llama3"
    )
    assert (
        ocir_image_ref("us-ashburn-1", "ns", "team/serving", "1") == "us-ashburn-1.ocir.io/ns/team/serving:1"
    )


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("IAD", "ns", "r", "t"), "'IAD'"),
        (("iad", "My_NS!", "r", "t"), "'My_NS!'"),
        (("iad", "ns", "Triton", "t"), "'Triton'"),
        (("iad", "ns", "r", "-bad"), "'-bad'"),
    ],
)
def test_ocir_image_ref_rejects(args, needle):
    with pytest.raises(ValueError, match=needle):
        ocir_image_ref(*args)


def test_ocir_usernames():
    assert ocir_username("ns", "jane@example.com") == "ns/jane@example.com"
    assert ocir_username("ns", "jane@example.com", "Default") == "ns/Default/jane@example.com"
    assert ocir_username("ns", "jane", "oracleidentitycloudservice") == "ns/oracleidentitycloudservice/jane"
    with pytest.raises(ValueError, match="bare user name"):
        ocir_username("ns", "ns/jane")


def test_registry_auth_forms_keep_the_secret_out_of_repr():
    auth = RegistryAuth.ocir("fra", "ns", "jane", "tok-123", identity_domain="Default")
    assert (auth.registry, auth.username) == ("fra.ocir.io", "ns/Default/jane")
    assert "tok-123" not in repr(auth) and "tok-123" not in str(auth)
    assert auth.scrub("bad password tok-123") == "bad password ***"
    token = RegistryAuth.ocir_token("iad", "eyJhbGciOi")
    assert token.username == OCIR_TOKEN_USERNAME and token.registry == "iad.ocir.io"
    with pytest.raises(ValueError, match="empty"):
        RegistryAuth(registry="iad.ocir.io", username="u", password="")
    with pytest.raises(ValueError, match="bare host"):
        RegistryAuth(registry="https://iad.ocir.io", username="u", password="p")


def test_parse_image_ref():
    ref = parse_image_ref("127.0.0.1:5000/team/serving:1.0@sha256:" + "a" * 64)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (
        "127.0.0.1:5000",
        "team/serving",
        "1.0",
        "sha256:" + "a" * 64,
    )
    assert str(ref) == "127.0.0.1:5000/team/serving:1.0@sha256:" + "a" * 64
    assert parse_image_ref("iad.ocir.io/ns/repo").tag is None
    with pytest.raises(ValueError, match="registry host"):
        parse_image_ref("ubuntu:22.04")
    with pytest.raises(ValueError, match="digest"):
        parse_image_ref("iad.ocir.io/ns/repo@sha256:short")
