"""Just enough of the registry HTTP API v2 to ask "does this tag already hold this build?".

Manifests are fetched with the schema-2/OCI Accept headers; authentication follows the
challenge in the 401 (`WWW-Authenticate: Basic ...` as an htpasswd registry sends, or
`Bearer realm=...,service=...,scope=...` as OCIR and Docker Hub send, answered by fetching a
token from the realm with the credentials) — the Docker token protocol,
distribution/distribution:docs/spec/auth/token.md.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from trtllm_oci.errors import InputError
from trtllm_oci.image.build import BUILD_KEY_LABEL, DEFAULT_PLATFORM
from trtllm_oci.image.errors import RegistryAuthError, RegistryError, RepositoryAccessRefusedError
from trtllm_oci.image.refs import RegistryAuth, parse_image_ref, validate_tag

LogFn = Callable[[str], None]

MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
MANIFEST_LIST_V2 = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
_INDEX_TYPES = {MANIFEST_LIST_V2, OCI_INDEX}
_ACCEPT = ", ".join([MANIFEST_V2, OCI_MANIFEST, MANIFEST_LIST_V2, OCI_INDEX])
_CHALLENGE_PARAM_RE = re.compile(r'(\w+)="([^"]*)"')


def _default_scheme(registry: str) -> str:
    """Plain HTTP only for loopback, the same default dockerd applies to insecure registries."""
    host = registry.rsplit(":", 1)[0] if registry.count(":") == 1 else registry
    if host == "localhost":
        return "http"
    try:
        return "http" if ipaddress.ip_address(host.strip("[]")).is_loopback else "https"
    except ValueError:
        return "https"


@dataclass(frozen=True)
class ManifestInfo:
    digest: str
    media_type: str
    labels: dict[str, str]


class RegistryClient:
    """Reads manifests and config blobs from one registry, handling Basic and Bearer challenges."""

    def __init__(
        self,
        registry: str,
        auth: RegistryAuth | None = None,
        *,
        scheme: str | None = None,
        timeout_s: float = 30.0,
        session: requests.Session | None = None,
    ) -> None:
        if auth is not None and auth.registry != registry:
            raise InputError(
                f"credentials are for registry {auth.registry!r} but the image is in {registry!r}; "
                "pass the RegistryAuth of the image's registry"
            )
        self.registry = registry
        self.auth = auth
        self.base_url = f"{scheme or _default_scheme(registry)}://{registry}"
        self.timeout_s = timeout_s
        self._session = session or requests.Session()
        self._authorization: str | None = None
        self._bearer = False  # a token endpoint accepted these credentials

    def _refused(self, says: str, *, logged_in: bool = False) -> RegistryAuthError:
        username = self.auth.username if self.auth else None
        says = self.auth.scrub(says) if self.auth else says
        hint = (
            "Check the user form ('<namespace>/<user>' or '<namespace>/<identity-domain>/<user>' for OCIR), "
            "that the auth token is current, and that an IAM policy lets this user read the repository"
            if self.auth
            else "Pass RegistryAuth credentials for this registry"
        )
        if logged_in:
            return RepositoryAccessRefusedError(
                self.registry, username, says,
                "The login was accepted; check that an IAM policy lets this user read and push the repository")
        return RegistryAuthError(self.registry, username, says, hint)

    def _basic(self) -> tuple[str, str] | None:
        return (self.auth.username, self.auth.password.get_secret_value()) if self.auth else None

    def _authorize(self, challenge: str, scope: str) -> None:
        scheme, _, params_text = challenge.partition(" ")
        params = dict(_CHALLENGE_PARAM_RE.findall(params_text))
        if scheme.lower() == "basic":
            if self.auth is None:
                raise self._refused("authentication required (Basic)")
            username, password = self.auth.username, self.auth.password.get_secret_value()
            self._authorization = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
            return
        if scheme.lower() != "bearer" or "realm" not in params:
            raise RegistryError(
                f"registry {self.registry} sent an authentication challenge this client cannot answer: {challenge!r}"
            )
        query = {"scope": params.get("scope", scope)}
        if "service" in params:
            query["service"] = params["service"]
        try:
            response = self._session.get(
                params["realm"], params=query, auth=self._basic(), timeout=self.timeout_s
            )
        except requests.RequestException as exc:
            raise RegistryError(
                f"token endpoint {params['realm']} of registry {self.registry} is unreachable: {exc}"
            ) from exc
        if response.status_code in (401, 403):
            raise self._refused(
                f"token endpoint answered HTTP {response.status_code}: {response.text.strip()[:300]}"
            )
        if response.status_code != 200:
            raise RegistryError(
                f"token endpoint {params['realm']} of registry {self.registry} answered HTTP {response.status_code}: "
                f"{response.text.strip()[:300]}"
            )
        body = response.json()
        token = body.get("token") or body.get("access_token")
        if not token:
            raise RegistryError(f"token endpoint {params['realm']} answered without a token")
        self._authorization = f"Bearer {token}"
        self._bearer = self.auth is not None

    def _get(self, path: str, scope: str, headers: dict[str, str] | None = None) -> requests.Response:
        url = f"{self.base_url}{path}"
        for attempt in range(2):
            request_headers = dict(headers or {})
            if self._authorization:
                request_headers["Authorization"] = self._authorization
            try:
                response = self._session.get(url, headers=request_headers, timeout=self.timeout_s)
            except requests.RequestException as exc:
                raise RegistryError(
                    f"registry {self.registry} is unreachable at {self.base_url}: {exc}"
                ) from exc
            if response.status_code != 401:
                break
            if attempt == 1:
                raise self._refused(_error_text(response), logged_in=self._bearer)
            self._authorize(response.headers.get("WWW-Authenticate", ""), scope)
        if response.status_code == 403:
            raise self._refused(_error_text(response), logged_in=self._bearer)
        return response

    def manifest(self, repository: str, reference: str) -> tuple[str, str, dict[str, Any]] | None:
        """(digest, media type, manifest) of `repository:reference`, or None when absent."""
        scope = f"repository:{repository}:pull"
        response = self._get(f"/v2/{repository}/manifests/{reference}", scope, {"Accept": _ACCEPT})
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise RegistryError(
                f"registry {self.registry} answered HTTP {response.status_code} for manifest "
                f"{repository}:{reference}: {_error_text(response)}"
            )
        body = response.content
        computed = "sha256:" + hashlib.sha256(body).hexdigest()
        header = response.headers.get("Docker-Content-Digest")
        if header and header.startswith("sha256:") and header != computed:
            raise RegistryError(
                f"registry {self.registry} sent manifest {repository}:{reference} with Docker-Content-Digest {header} "
                f"but its bytes hash to {computed}"
            )
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        manifest = json.loads(body)
        return header or computed, manifest.get("mediaType") or media_type, manifest

    def config_labels(self, repository: str, manifest: dict[str, Any]) -> dict[str, str]:
        config_digest = manifest.get("config", {}).get("digest")
        if not config_digest:
            raise RegistryError(f"manifest of {repository} in {self.registry} has no config blob")
        # Blob GETs may redirect to object storage; requests drops Authorization when the host changes.
        response = self._get(f"/v2/{repository}/blobs/{config_digest}", f"repository:{repository}:pull")
        if response.status_code != 200:
            raise RegistryError(
                f"registry {self.registry} answered HTTP {response.status_code} for config blob {config_digest}: "
                f"{_error_text(response)}"
            )
        config = response.json()
        return dict((config.get("config") or {}).get("Labels") or {})

    def inspect(self, repository: str, reference: str, platform: str = DEFAULT_PLATFORM) -> ManifestInfo | None:
        """The tag's digest and its image's labels; of a multi-platform index, those of `platform`'s image."""
        found = self.manifest(repository, reference)
        if found is None:
            return None
        digest, media_type, manifest = found
        if media_type in _INDEX_TYPES:
            platform_manifest = _pick_platform(manifest, platform)
            if platform_manifest is None:
                return ManifestInfo(digest=digest, media_type=media_type, labels={})
            sub = self.manifest(repository, platform_manifest)
            if sub is None:
                return ManifestInfo(digest=digest, media_type=media_type, labels={})
            manifest = sub[2]
        return ManifestInfo(
            digest=digest, media_type=media_type, labels=self.config_labels(repository, manifest)
        )


    def check_access(self, repository: str) -> str:
        """Log in and read `repository`'s tag list, pushing nothing: what the credentials get before any build.

        200 (tags listed) or 404 NAME_UNKNOWN (a repository the first push creates) mean the registry let these
        credentials in for the repository; a refusal of the login or of the repository raises RegistryAuthError.
        Push rights are not provable without pushing; a pull grant shows the user, the token and the namespace.
        """
        response = self._get(f"/v2/{repository}/tags/list", f"repository:{repository}:pull")
        who = f"user {self.auth.username!r}" if self.auth else "anonymous access"
        if response.status_code == 200:
            return f"{self.registry} let {who} read {repository}"
        if response.status_code == 404:
            return f"{self.registry} let {who} in; {repository} has no image yet (the push creates it)"
        raise RegistryError(f"registry {self.registry} answered HTTP {response.status_code} for the tags of "
                            f"{repository}: {_error_text(response)}")


def _pick_platform(index: dict[str, Any], platform: str) -> str | None:
    os_name, _, architecture = platform.partition("/")
    for entry in index.get("manifests", []):
        entry_platform = entry.get("platform") or {}
        if entry_platform.get("os") == os_name and entry_platform.get("architecture") == architecture:
            return entry.get("digest")
    return None


def _error_text(response: requests.Response) -> str:
    try:
        errors = response.json().get("errors") or []
        text = "; ".join(f"{e.get('code', '')}: {e.get('message', '')}".strip(": ") for e in errors)
    except ValueError:
        text = ""
    return text or f"HTTP {response.status_code} {response.reason}"


def registry_has(
    repository: str,
    tag: str,
    build_key: str,
    auth: RegistryAuth | None,
    *,
    log: LogFn | None = None,
    scheme: str | None = None,
    timeout_s: float = 30.0,
    platform: str = DEFAULT_PLATFORM,
) -> str | None:
    """Digest of `repository:tag` if the registry holds it with label ai.trtllm-oci.build-key == build_key
    (read from `platform`'s image where the tag is a multi-platform index).

    `repository` names its registry (`iad.ocir.io/ns/repo`, `127.0.0.1:5000/team/repo`).
    Returns None when the tag is absent or holds a different build (then the caller rebuilds).
    """
    ref = parse_image_ref(repository)
    if ref.tag or ref.digest:
        raise InputError(f"repository {repository!r} must not carry a tag or digest; pass the tag separately")
    validate_tag(tag)
    client = RegistryClient(ref.registry, auth, scheme=scheme, timeout_s=timeout_s)
    info = client.inspect(ref.repository, tag, platform)
    if info is None:
        if log:
            log(f"{repository}:{tag} is not in the registry")
        return None
    found_key = info.labels.get(BUILD_KEY_LABEL)
    if found_key != build_key:
        if log:
            log(
                f"{repository}:{tag} exists ({info.digest}) but holds build key {found_key or '(none)'}, "
                f"not {build_key}; it will be rebuilt and the tag moved"
            )
        return None
    return info.digest
