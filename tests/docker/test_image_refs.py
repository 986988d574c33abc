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


def test_only_a_login_that_gives_other_credentials_is_renewed():
    from trtllm_oci.image.refs import renewed_auth

    def token(value: str) -> RegistryAuth:
        return RegistryAuth.ocir_token("iad", value)

    class Source:
        """A caching login (the shape of OcirTokenSource): the same token until told to drop it."""

        def __init__(self) -> None:
            self.issued = 0
            self.cached: RegistryAuth | None = None

        def __call__(self) -> RegistryAuth:
            if self.cached is None:
                self.issued += 1
                self.cached = token(f"jwt-{self.issued}")
            return self.cached

        def invalidate(self) -> None:
            self.cached = None

    source = Source()
    refused = source()
    assert renewed_auth(source, refused) == token("jwt-2")
    fixed = RegistryAuth.ocir("iad", "ns", "user", "auth-token")
    assert renewed_auth(fixed, fixed) is None
    assert renewed_auth(lambda: fixed, fixed) is None  # an auth token kept in a Secret: asking again gives it again
    assert renewed_auth(None, fixed) is None
    tokens = iter(["a", "b"])
    assert renewed_auth(lambda: token(next(tokens)), token("z")) == token("a")  # no cache: simply asked again
