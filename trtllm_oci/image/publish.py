"""Build and push the serving image unless the registry already holds the same build."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from trtllm_oci.image.build import BUILD_KEY_LABEL, DEFAULT_PLATFORM, build_image, compute_build_key
from trtllm_oci.image.errors import ImagePushError
from trtllm_oci.image.push import push_image
from trtllm_oci.image.refs import RegistryAuth, RegistryLogin, current_auth, parse_image_ref
from trtllm_oci.image.registry_api import registry_has

LogFn = Callable[[str], None]


class PublishedImage(BaseModel):
    """What later stages need: the pinned reference (`repository:tag@digest`) and how it came about."""

    repository: str
    tag: str
    digest: str
    build_key: str
    skipped: bool
    image_id: str | None = None
    # Uncompressed size as the Docker engine measured it (what a deployment's boot volume holds); None when this
    # host does not have the image (a skipped build pushed from elsewhere).
    size_bytes: int | None = None

    @property
    def pinned_ref(self) -> str:
        return f"{self.repository}:{self.tag}@{self.digest}"


def publish_image(
    context_dir: str | Path,
    dockerfile: str | Path,
    repository: str,
    tag: str,
    build_args: Mapping[str, str] | None,
    labels: Mapping[str, str] | None,
    auth: RegistryAuth | RegistryLogin | None,
    docker_client: Any,
    log: LogFn,
    *,
    network_disabled: bool = False,
    registry_scheme: str | None = None,
    platform: str = DEFAULT_PLATFORM,
) -> PublishedImage:
    """Build `repository:tag` and push it, or skip both when the tag already holds this build.

    "Same build" means the same build key (compute_build_key: Dockerfile, build args, labels,
    context files), stored in the image as label ai.trtllm-oci.build-key and read back from the
    registry's copy of the image config. After a push the registry is asked again, so the digest
    returned is the one the registry serves for the tag.

    `auth` may be a RegistryLogin: it is asked for credentials right before each registry operation (the
    look-up, the push after the build, the look-up after the push), so a short-lived token fetched before a
    long build is not the one the push sends. `platform` is the deployment host's (`linux/arm64` on Grace).
    """
    parse_image_ref(repository)
    key = compute_build_key(context_dir, dockerfile, build_args, labels, platform)
    existing = registry_has(repository, tag, key, current_auth(auth), log=log, scheme=registry_scheme,
                            platform=platform)
    if existing is not None:
        log(f"{repository}:{tag} already holds build {key} as {existing}; skipping build and push")
        return PublishedImage(repository=repository, tag=tag, digest=existing, build_key=key, skipped=True,
                              size_bytes=local_image_size(docker_client, f"{repository}:{tag}"))
    image_id = build_image(
        context_dir,
        dockerfile,
        f"{repository}:{tag}",
        build_args,
        {**(labels or {}), BUILD_KEY_LABEL: key},
        docker_client,
        log,
        network_disabled=network_disabled,
        platform=platform,
    )
    pushed = push_image(repository, tag, auth, docker_client, log)
    served = registry_has(repository, tag, key, current_auth(auth), log=log, scheme=registry_scheme,
                          platform=platform)
    if served != pushed:
        raise ImagePushError(
            f"after pushing {repository}:{tag} ({pushed}) the registry serves {served or 'no matching image'} "
            "for that tag; another pipeline may have pushed the same tag concurrently"
        )
    return PublishedImage(
        repository=repository, tag=tag, digest=pushed, build_key=key, skipped=False, image_id=image_id,
        size_bytes=local_image_size(docker_client, image_id or f"{repository}:{tag}"),
    )


def local_image_size(docker_client: Any, ref: str) -> int | None:
    """The image's uncompressed size (`docker image inspect` .Size), None if the engine does not have it."""
    try:
        size = docker_client.images.get(ref).attrs.get("Size")
    except Exception:  # docker.errors.ImageNotFound / APIError: the size is then simply unknown
        return None
    return int(size) if isinstance(size, int) and size > 0 else None
