"""OCIR API calls: a docker login token from any OCI signer, and container-repository creation.

Token: a signed `GET https://<region-key>.ocir.io/20180419/docker/token` answers `{"token": <JWT>}`, usable as
`docker login -u BEARER_TOKEN -p <JWT>` (https://www.ateam-oracle.com/authentication-mechanisms-for-oci-container-registry-ocir).
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import oci
import requests
from oci.artifacts.models import CreateContainerRepositoryDetails

from trtllm_oci.cloud.errors import OcirError, OcirLoginRefusedError
from trtllm_oci.image.refs import RegistryAuth

OCIR_TOKEN_PATH = "/20180419/docker/token"
OCIR_TOKEN_USERNAME = "BEARER_TOKEN"
_REGION_KEY_RE = re.compile(r"^[a-z]{3}$|^[a-z0-9-]{3,32}$")


def ocir_login_token(region_key: str, signer: Any, *, base_url: str | None = None,
                     timeout: float = 30.0) -> tuple[str, str]:
    """(username, password) for `docker login <region_key>.ocir.io`; the password is a short-lived JWT."""
    token, _ = _fetch_token(region_key, signer, base_url=base_url, timeout=timeout)
    return OCIR_TOKEN_USERNAME, token


class OcirTokenSource:
    """A registry login for OCIR that is fetched when it is used, not when the pipeline starts.

    OCIR's docker tokens are short-lived (https://www.ateam-oracle.com/authentication-mechanisms-for-oci-container-
    registry-ocir; the endpoint answers `expires_in`); a build before the push can outlast one. Call it right
    before each registry operation: it returns the cached login while it is fresh (half its lifetime, or
    `fresh_for_seconds`) and fetches a new one otherwise. `registry`: the address OCIR is reached through when it
    is not `<region_key>.ocir.io` (the `ocir` endpoint), so the login names the registry the push goes to.
    """

    def __init__(self, region_key: str, signer: Any, *, base_url: str | None = None,
                 fresh_for_seconds: float | None = None, timeout: float = 30.0, registry: str | None = None) -> None:
        self.region_key = region_key
        self.signer = signer
        self.base_url = base_url
        self.fresh_for_seconds = fresh_for_seconds
        self.timeout = timeout
        self.registry = registry
        self._auth: RegistryAuth | None = None
        self._good_until = 0.0
        self.fetches = 0

    def __call__(self) -> RegistryAuth:
        return self.registry_auth()

    def invalidate(self) -> None:
        """Forget the cached login, so the next call fetches a new token: the registry refused this one before its
        half lifetime (a push that outlasted it, a clock that runs ahead of ours)."""
        self._auth = None
        self._good_until = 0.0

    def registry_auth(self) -> RegistryAuth:
        if self._auth is None or time.monotonic() >= self._good_until:
            token, expires_in = _fetch_token(self.region_key, self.signer, base_url=self.base_url,
                                             timeout=self.timeout)
            lifetime = self.fresh_for_seconds if self.fresh_for_seconds is not None else (expires_in or 300) / 2
            self._auth = RegistryAuth.ocir_token(self.region_key, token, registry=self.registry)
            self._good_until = time.monotonic() + lifetime
            self.fetches += 1
        return self._auth


def _fetch_token(region_key: str, signer: Any, *, base_url: str | None, timeout: float) -> tuple[str, float | None]:
    if not _REGION_KEY_RE.match(region_key or ""):
        raise OcirError(f"region key {region_key!r} is not an OCIR region key such as 'iad', 'fra' or 'phx'.")
    url = (base_url or f"https://{region_key}.ocir.io").rstrip("/") + OCIR_TOKEN_PATH
    try:
        response = requests.get(url, auth=signer, timeout=timeout)
    except requests.RequestException as exc:
        raise OcirError(f"could not reach {url} for an OCIR token ({type(exc).__name__}).") from None
    if response.status_code in (401, 403):
        raise OcirLoginRefusedError(
            f"GET {url} returned HTTP {response.status_code}: OCIR refused the OCI identity that signed the request "
            "(target.auth / target.profile); check that its key or session is valid and that a policy grants it "
            "'manage repos' (push) in the tenancy or compartment.")
    if response.status_code != 200:
        raise OcirError(
            f"GET {url} returned HTTP {response.status_code}; the signing principal needs "
            "'manage repos' (push) or 'read repos' (pull) in the tenancy or compartment."
        )
    try:
        payload = response.json()
        token = payload.get("token") or payload.get("access_token")
        expires_in = payload.get("expires_in")
    except (ValueError, AttributeError):
        token, expires_in = None, None
    if not token:
        raise OcirError(f"GET {url} answered without a token field; is {url} an OCIR endpoint?")
    return token, float(expires_in) if isinstance(expires_in, int | float) else None


def container_repository_id(artifacts: oci.artifacts.ArtifactsClient, compartment_id: str, name: str) -> str | None:
    """OCID of the live repository `name` in `compartment_id`, None when there is none (a read, nothing created)."""
    found = oci.pagination.list_call_get_all_results(
        artifacts.list_container_repositories, compartment_id, display_name=name).data
    items = getattr(found, "items", found)
    live = [r for r in items if r.display_name == name and r.lifecycle_state != "DELETED"]
    return live[0].id if live else None


def ensure_container_repository(artifacts: oci.artifacts.ArtifactsClient, compartment_id: str, name: str, *,
                                is_public: bool = False) -> str:
    """OCID of repository `name` in `compartment_id`, created (private, mutable) if missing."""
    def find() -> str | None:
        return container_repository_id(artifacts, compartment_id, name)

    existing = find()
    if existing:
        return existing
    try:
        return artifacts.create_container_repository(
            CreateContainerRepositoryDetails(compartment_id=compartment_id, display_name=name,
                                             is_public=is_public, is_immutable=False),
            opc_retry_token=uuid.uuid4().hex).data.id
    except oci.exceptions.ServiceError as exc:
        if exc.status != 409:
            raise OcirError(f"creating container repository {name!r} failed: HTTP {exc.status} {exc.code}: "
                            f"{exc.message}") from None
    raced = find()
    if raced:
        return raced
    raise OcirError(
        f"container repository {name!r} already exists in another compartment of this tenancy (names are unique per "
        f"tenancy namespace); use that compartment instead of {compartment_id} or choose another repository name."
    )
