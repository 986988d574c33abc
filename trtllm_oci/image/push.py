"""Push an image through the Docker engine and read the manifest digest the registry stored."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from trtllm_oci.errors import InputError
from trtllm_oci.image.errors import ImagePushError, RegistryAuthError
from trtllm_oci.image.refs import (
    RegistryAuth,
    RegistryLogin,
    current_auth,
    parse_image_ref,
    renewed_auth,
    validate_tag,
)

LogFn = Callable[[str], None]

# Registry and daemon wordings for refused credentials or access: distribution's
# "unauthorized: authentication required", "denied: requested access to the resource is denied",
# dockerd's "no basic auth credentials", OCIR's "unauthorized: Not Authorized" / "Anonymous users ...".
_AUTH_ERROR_RE = re.compile(
    r"(?i)unauthori[sz]ed|authentication required|denied|forbidden|no basic auth credentials|"
    r"incorrect username or password|not authorized|anonymous users"
)
_DIGEST_RE = re.compile(r"digest: (sha256:[0-9a-f]{64})")
_PROGRESS_STATUSES = {"Pushing", "Waiting", "Preparing"}


def push_image(
    repository: str,
    tag: str,
    auth: RegistryAuth | RegistryLogin | None,
    docker_client: Any,
    log: LogFn,
) -> str:
    """Push local image `repository:tag` and return its manifest digest (sha256:...).

    `repository` names its registry (`iad.ocir.io/ns/repo`). Credentials go with the push
    request only; nothing is written to the client's or the daemon's credential store.

    A RegistryLogin is asked for them right before the push. When the registry refuses them and the login
    gives others once asked again (a short-lived OCIR token the push outlasted, or one the login took for
    fresh), the push is sent once more with those: the registry keeps the layers pushed before the refusal,
    so only the rest is sent. Fixed credentials, or a second refusal, raise RegistryAuthError.
    """
    first = current_auth(auth)
    try:
        return _push_once(repository, tag, first, docker_client, log)
    except RegistryAuthError as refused:
        renewed = renewed_auth(auth, first) if first is not None else None
        if first is None or renewed is None:
            raise
        log(f"registry {refused.registry} refused the login of {first.username!r} during the push "
            f"({refused.registry_says}); fetched a new one, pushing {repository}:{tag} again (layers already "
            "pushed are skipped)")
    # Outside the handler: a second refusal is raised as the registry's own answer, not as "during handling".
    return _push_once(repository, tag, renewed, docker_client, log)


def _push_once(
    repository: str,
    tag: str,
    registry_auth: RegistryAuth | None,
    docker_client: Any,
    log: LogFn,
) -> str:
    import docker.errors

    ref = parse_image_ref(repository)
    if ref.tag or ref.digest:
        raise InputError(f"repository {repository!r} must not carry a tag or digest; pass the tag separately")
    validate_tag(tag)
    if registry_auth is not None and registry_auth.registry != ref.registry:
        raise InputError(
            f"credentials are for registry {registry_auth.registry!r} but {repository} is in {ref.registry!r}"
        )
    username = registry_auth.username if registry_auth else None

    def scrub(text: str) -> str:
        return registry_auth.scrub(text) if registry_auth else text

    def fail(message: str) -> Exception:
        message = scrub(message.strip())
        if "does not exist locally" in message or "No such image" in message:
            return ImagePushError(
                f"there is no local image {repository}:{tag} to push; build or tag it first"
            )
        if _AUTH_ERROR_RE.search(message):
            hint = (
                "Check the user form ('<namespace>/<user>' or '<namespace>/<identity-domain>/<user>' for OCIR, "
                "'BEARER_TOKEN' with a fresh token), that the auth token is current, and that an IAM policy lets "
                f"this user push to {ref.repository}"
                if registry_auth
                else "Pass RegistryAuth credentials for this registry"
            )
            return RegistryAuthError(ref.registry, username, message, hint)
        return ImagePushError(f"pushing {repository}:{tag} failed: {message}")

    auth_config = registry_auth.docker_auth_config() if registry_auth else None
    digest: str | None = None
    seen: set[tuple[str, str]] = set()
    log(f"pushing {repository}:{tag}" + (f" as {username}" if username else ""))
    try:
        for event in docker_client.api.push(
            repository, tag=tag, stream=True, decode=True, auth_config=auth_config
        ):
            if "error" in event or "errorDetail" in event:
                raise fail(event.get("error") or event["errorDetail"].get("message", ""))
            status = event.get("status", "")
            aux = event.get("aux")
            if isinstance(aux, dict) and aux.get("Digest"):
                digest = aux["Digest"]
            elif status:
                match = _DIGEST_RE.search(status)
                if match and digest is None:
                    digest = match.group(1)
                key = (event.get("id", ""), status)
                if status not in _PROGRESS_STATUSES and key not in seen:
                    seen.add(key)
                    log(" ".join(x for x in key if x))
    except docker.errors.ImageNotFound as exc:
        raise ImagePushError(
            f"there is no local image {repository}:{tag} to push; build or tag it first"
        ) from exc
    except docker.errors.APIError as exc:
        raise fail(str(exc.explanation or exc)) from exc
    if digest is None:
        raise ImagePushError(f"the push of {repository}:{tag} ended without the registry reporting a digest")
    log(f"pushed {repository}:{tag} as {digest}")
    return digest
