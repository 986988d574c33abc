"""Image references, registry credentials and the OCIR naming rules.

OCIR (Oracle Cloud Infrastructure Registry): images live at
`<region-key>.ocir.io/<tenancy-namespace>/<repo>:<tag>`; `docker login` takes
`<namespace>/<username>`, `<namespace>/oracleidentitycloudservice/<username>` for IDCS-federated
users, `<namespace>/<identity-domain>/<username>` in identity-domain tenancies, or the user
`BEARER_TOKEN` with a short-lived token from `GET https://<region-key>.ocir.io/20180419/docker/token`
(see shared/reference/oci.md section 3 and
https://docs.oracle.com/iaas/Content/Registry/Tasks/registrypushingimagesusingthedockercli.htm).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from trtllm_oci.errors import InputError

OCIR_TOKEN_USERNAME = "BEARER_TOKEN"
OCIR_DOMAIN = "ocir.io"
IDCS_FEDERATION_DOMAIN = "oracleidentitycloudservice"

# Docker reference grammar, distribution/reference:regexp.go (path components and tags).
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPO_PATH_RE = re.compile(rf"^{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_HOST_RE = re.compile(
    r"^(?:localhost|[A-Za-z0-9.-]+\.[A-Za-z0-9.-]+|[A-Za-z0-9.-]+:\d+|[A-Za-z0-9.-]+\.[A-Za-z0-9-]+:\d+)$"
)
# Region keys are three letters (iad, fra); region identifiers look like us-ashburn-1 and also resolve.
_REGION_RE = re.compile(r"^(?:[a-z]{3}|[a-z]{2}-[a-z]+-\d+)$")
_NAMESPACE_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


@dataclass(frozen=True)
class ImageRef:
    """`registry/repository:tag[@digest]`, split. `repository` has no registry host."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """`registry/repository`, what `docker push` and the Docker API call the repository."""
        return f"{self.registry}/{self.repository}"

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    def on_registry(self, registry: str) -> ImageRef:
        """The same repository, tag and digest reached through another registry address."""
        return ImageRef(registry=registry, repository=self.repository, tag=self.tag, digest=self.digest)


@dataclass(frozen=True)
class RegistryEndpoint:
    """The address this host reaches a registry through (a private endpoint, a proxy in front of it):
    `host[:port]` as image references and `docker push` name it, and the scheme of its HTTP API (None: https,
    or http on loopback, as dockerd decides for a registry it was not told about)."""

    host: str
    scheme: str | None = None

    @classmethod
    def parse(cls, text: str, *, what: str) -> RegistryEndpoint:
        """`https://host[:port]`, `http://host:port` or a bare `host[:port]`; nothing after the host."""
        scheme, sep, rest = text.strip().partition("://")
        if not sep:
            scheme, rest = "", scheme
        host = rest.rstrip("/")
        if scheme not in ("", "http", "https") or not host or not _HOST_RE.match(host) or "/" in host:
            raise InputError(
                f"{what} {text!r} is not a registry address; write it as 'https://<host>[:port]' (or a bare "
                "'<host>[:port]'), without a path, e.g. 'https://iad.ocir.io'"
            )
        return cls(host=host, scheme=scheme or None)


def parse_image_ref(ref: str) -> ImageRef:
    """Split an image reference that names its registry (e.g. `iad.ocir.io/ns/repo:tag`)."""
    rest, has_digest, digest_text = ref.partition("@")
    digest = digest_text if has_digest else None
    if digest is not None and not _DIGEST_RE.match(digest):
        raise InputError(f"image reference {ref!r}: digest {digest!r} is not 'sha256:' + 64 hex characters")
    first, _, path = rest.partition("/")
    if not path or not _HOST_RE.match(first):
        raise InputError(
            f"image reference {ref!r} does not start with a registry host; write it as "
            "'<host>[:port]/<repository>[:tag]', e.g. 'iad.ocir.io/mytenancy/triton-trtllm:1.0'"
        )
    tag = None
    last_slash = path.rfind("/")
    if ":" in path[last_slash + 1 :]:
        path, tag = path.rsplit(":", 1)
        validate_tag(tag)
    validate_repository_path(path)
    return ImageRef(registry=first, repository=path, tag=tag, digest=digest)


def validate_repository_path(path: str) -> str:
    if not _REPO_PATH_RE.match(path):
        raise InputError(
            f"repository {path!r} is not a valid image name: use lowercase letters, digits and "
            "'.', '_', '-' separators, with '/' between components"
        )
    return path


def validate_tag(tag: str) -> str:
    if not _TAG_RE.match(tag):
        raise InputError(
            f"image tag {tag!r} is invalid: 1-128 characters of letters, digits, '_', '.', '-', not starting with '.' or '-'"
        )
    return tag


def ocir_registry(region_key: str) -> str:
    if not _REGION_RE.match(region_key):
        raise InputError(
            f"OCIR region {region_key!r} is neither a region key (three lowercase letters, e.g. 'iad') "
            "nor a region identifier (e.g. 'us-ashburn-1')"
        )
    return f"{region_key}.{OCIR_DOMAIN}"


def ocir_image_ref(region_key: str, namespace: str, repo: str, tag: str) -> str:
    """`<region-key>.ocir.io/<namespace>/<repo>:<tag>`."""
    if not _NAMESPACE_RE.match(namespace):
        raise InputError(
            f"OCIR namespace {namespace!r} is invalid: it is the tenancy's Object Storage namespace, "
            "lowercase letters and digits (get it with `oci os ns get`)"
        )
    validate_repository_path(repo)
    validate_tag(tag)
    return f"{ocir_registry(region_key)}/{namespace}/{repo}:{tag}"


def ocir_username(namespace: str, username: str, identity_domain: str | None = None) -> str:
    """The `docker login` user: `<namespace>/<user>` or `<namespace>/<identity-domain>/<user>`.

    Pass identity_domain='oracleidentitycloudservice' for IDCS-federated users.
    """
    if not _NAMESPACE_RE.match(namespace):
        raise InputError(f"OCIR namespace {namespace!r} is invalid (the tenancy's Object Storage namespace)")
    if not username or "/" in username:
        raise InputError(f"OCIR user {username!r} must be the bare user name (often an e-mail), without '/'")
    if identity_domain is not None and (not identity_domain or "/" in identity_domain):
        raise InputError(
            f"identity domain {identity_domain!r} must be a single non-empty name, e.g. 'Default'"
        )
    parts = [namespace, identity_domain, username] if identity_domain else [namespace, username]
    return "/".join(parts)


class RegistryAuth(BaseModel):
    """Credentials for one registry. `password` is an auth token or, with user BEARER_TOKEN, a registry token."""

    model_config = ConfigDict(frozen=True)

    registry: str = Field(min_length=1)
    username: str = Field(min_length=1)
    password: SecretStr

    @field_validator("registry")
    @classmethod
    def _bare_host(cls, registry: str) -> str:
        if "://" in registry or "/" in registry:
            raise InputError(
                f"registry {registry!r} must be a bare host[:port] such as 'iad.ocir.io', without scheme or path"
            )
        return registry

    @field_validator("password")
    @classmethod
    def _non_empty(cls, password: SecretStr) -> SecretStr:
        if not password.get_secret_value():
            raise InputError(
                "registry password/token is empty; for OCIR create an auth token (Profile > Auth tokens)"
            )
        return password

    @classmethod
    def ocir(
        cls,
        region_key: str,
        namespace: str,
        username: str,
        auth_token: str,
        identity_domain: str | None = None,
        *,
        registry: str | None = None,
    ) -> RegistryAuth:
        """`registry`: the address OCIR is reached through when it is not `<region_key>.ocir.io`."""
        return cls(
            registry=registry or ocir_registry(region_key),
            username=ocir_username(namespace, username, identity_domain),
            password=SecretStr(auth_token),
        )

    @classmethod
    def ocir_token(cls, region_key: str, token: str, *, registry: str | None = None) -> RegistryAuth:
        """Login with a token from OCIR's /20180419/docker/token endpoint (no stored auth token needed)."""
        return cls(
            registry=registry or ocir_registry(region_key), username=OCIR_TOKEN_USERNAME, password=SecretStr(token)
        )

    def docker_auth_config(self) -> dict[str, str]:
        return {
            "username": self.username,
            "password": self.password.get_secret_value(),
            "serveraddress": self.registry,
        }

    def scrub(self, text: str) -> str:
        """Remove the secret from text that may echo it (daemon or registry messages)."""
        secret = self.password.get_secret_value()
        return text.replace(secret, "***") if secret else text


# A login obtained when it is used: called right before each registry operation, so a short-lived token (OCIR's
# BEARER_TOKEN login) is fetched again when an earlier one may have expired during a long build.
RegistryLogin = Callable[[], RegistryAuth]


def current_auth(auth: RegistryAuth | RegistryLogin | None) -> RegistryAuth | None:
    """The credentials to send now: `auth` itself, or what the login gives at this moment."""
    if auth is None or isinstance(auth, RegistryAuth):
        return auth
    return auth()


@runtime_checkable
class RenewableLogin(Protocol):
    """A RegistryLogin that caches its credential and can be told to drop it (OcirTokenSource): the registry refused
    a token the login still took for fresh, so the next call must fetch a new one."""

    def __call__(self) -> RegistryAuth: ...

    def invalidate(self) -> None: ...


def renewed_auth(auth: RegistryAuth | RegistryLogin | None, refused: RegistryAuth) -> RegistryAuth | None:
    """A credential other than `refused` from `auth`, asked again (after `invalidate` where it caches one); None
    when `auth` cannot give another: fixed credentials, or a login that hands out the same ones every time (an auth
    token kept in a Secret), where sending them again would only be refused again."""
    if auth is None or isinstance(auth, RegistryAuth):
        return None
    if isinstance(auth, RenewableLogin):
        auth.invalidate()
    again = auth()
    return None if again == refused else again
