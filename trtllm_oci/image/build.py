"""Build an image with docker-py, streaming the builder's output, and fingerprint what goes into it."""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from trtllm_oci.image.errors import ImageBuildError

# The serving image's build context ships inside the package (infra/Dockerfile.serving links to it), so
# the image stage also works from an installed wheel, not only from a source checkout.
SERVING_CONTEXT = Path(__file__).resolve().parent / "serving_context"

LogFn = Callable[[str], None]

BUILD_KEY_LABEL = "ai.trtllm-oci.build-key"
_BUILD_KEY_VERSION = b"trtllm-oci build key v1\n"
# Build args end up in `docker history` of the pushed image; secrets must come at run time.
_SECRET_ARG_RE = re.compile(r"(?i)(token|password|passwd|secret|private_key|api_key|credential)")
_TAIL = 40
# What every OCI GPU shape ran until Grace hosts (GB200); keys of images built for it stay as they were.
DEFAULT_PLATFORM = "linux/amd64"


def _resolve_dockerfile(context_dir: Path, dockerfile: str | Path) -> Path:
    path = Path(dockerfile)
    if not path.is_absolute():
        path = context_dir / path
    if not path.is_file():
        raise ImageBuildError(f"Dockerfile {str(path)!r} does not exist (context {str(context_dir)!r})")
    return path


def _dockerignore_patterns(context_dir: Path) -> list[str]:
    # Same parsing as docker-py's api/build.py so the fingerprint covers exactly what is sent.
    ignore = context_dir / ".dockerignore"
    if not ignore.exists():
        return []
    lines = [line.strip() for line in ignore.read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def _check_inputs(context_dir: Path, build_args: Mapping[str, str]) -> Path:
    context_dir = Path(context_dir)
    if not context_dir.is_dir():
        raise ImageBuildError(f"build context {str(context_dir)!r} is not a directory")
    for name, value in build_args.items():
        if not isinstance(value, str):
            raise ImageBuildError(f"build arg {name}={value!r} must be a string")
        if _SECRET_ARG_RE.search(name):
            raise ImageBuildError(
                f"build arg {name!r} looks like a secret; build args are readable in `docker history` of the "
                "pushed image. Pass secrets to the container at run time instead"
            )
    return context_dir.resolve()


def compute_build_key(
    context_dir: str | Path,
    dockerfile: str | Path,
    build_args: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
    platform: str = DEFAULT_PLATFORM,
) -> str:
    """sha256 over everything that decides the image: Dockerfile, build args, labels, target platform, context files.

    Context files are those docker-py sends (`.dockerignore` honoured), each with its relative
    path, mode and content (symlinks by target). Two builds with the same key produce the same
    image as far as this project can tell; a mutable BASE_IMAGE tag is the exception, so pin
    BASE_IMAGE by digest when exact reproducibility matters.
    """
    from docker.utils.build import exclude_paths

    context = _check_inputs(Path(context_dir), build_args or {})
    dockerfile_path = _resolve_dockerfile(context, dockerfile)
    digest = hashlib.sha256(_BUILD_KEY_VERSION)
    digest.update(b"dockerfile\0" + dockerfile_path.read_bytes() + b"\0")
    meta: dict[str, object] = {
        "build_args": dict(sorted((build_args or {}).items())),
        "labels": {k: v for k, v in sorted((labels or {}).items()) if k != BUILD_KEY_LABEL},
    }
    if platform != DEFAULT_PLATFORM:  # absent for amd64, so images pushed before platforms were keyed still match
        meta["platform"] = platform
    digest.update(json.dumps(meta, sort_keys=True).encode() + b"\0")
    relative_dockerfile = (
        str(dockerfile_path.relative_to(context)) if dockerfile_path.is_relative_to(context) else None
    )
    for rel in sorted(
        exclude_paths(str(context), _dockerignore_patterns(context), dockerfile=relative_dockerfile)
    ):
        path = context / rel
        info = path.lstat()
        digest.update(rel.encode() + b"\0" + oct(stat.S_IMODE(info.st_mode)).encode() + b"\0")
        if stat.S_ISLNK(info.st_mode):
            digest.update(b"link\0" + os.readlink(path).encode() + b"\0")
        elif stat.S_ISREG(info.st_mode):
            file_digest = hashlib.sha256()
            with path.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    file_digest.update(block)
            digest.update(b"file\0" + file_digest.digest())
        else:
            digest.update(b"dir\0")
    return "sha256:" + digest.hexdigest()


def _foreign_platform_hint(tail: list[str], platform: str) -> str:
    if not any("exec format error" in line for line in tail):
        return ""
    return (f" (the image is for {platform}, and this Docker engine cannot run that architecture's programs in "
            "RUN steps: build on a host of that architecture - its DockerHost block - or register QEMU "
            "emulation with `docker run --privileged tonistiigi/binfmt --install all`)")


def build_image(
    context_dir: str | Path,
    dockerfile: str | Path,
    tag: str,
    build_args: Mapping[str, str] | None,
    labels: Mapping[str, str] | None,
    docker_client: Any,
    log: LogFn,
    *,
    network_disabled: bool = False,
    pull: bool = False,
    platform: str = DEFAULT_PLATFORM,
    nocache: bool = False,
) -> str:
    """Build `dockerfile` in `context_dir` as `tag`; return the image id (sha256:...).

    `network_disabled` runs RUN steps with `--network none` (tests, air-gapped hosts);
    `pull` re-pulls the base image even when a local copy exists; `platform` is the host the image runs on
    (`linux/arm64` for a Grace host), also when the builder is another architecture.
    """
    import docker.errors

    build_args = dict(build_args or {})
    context = _check_inputs(Path(context_dir), build_args)
    dockerfile_path = _resolve_dockerfile(context, dockerfile)
    tail: list[str] = []
    image_id: str | None = None
    pending = ""

    def emit(text: str) -> None:
        nonlocal pending
        text = pending + text
        *lines, pending = text.split("\n")
        for line in lines:
            line = line.rstrip("\r")
            tail.append(line)
            del tail[:-_TAIL]
            log(line)

    def flush() -> None:
        if pending:
            emit("\n")

    log(f"building {tag} from {dockerfile_path} (context {context})")
    try:
        stream = docker_client.api.build(
            path=str(context),
            dockerfile=str(dockerfile_path),
            tag=tag,
            buildargs=build_args,
            labels=dict(labels or {}),
            rm=True,
            forcerm=True,
            pull=pull,
            decode=True,
            network_mode="none" if network_disabled else None,
            platform=platform,
            nocache=nocache,
        )
        for event in stream:
            if "stream" in event:
                emit(event["stream"])
            elif "status" in event:
                emit(" ".join(str(event[k]) for k in ("id", "status") if event.get(k)) + "\n")
            if "error" in event or "errorDetail" in event:
                flush()
                message = event.get("error") or event["errorDetail"].get("message", "")
                raise ImageBuildError(
                    f"building {tag} failed: {message.strip()}{_foreign_platform_hint([*tail, message], platform)}"
                    f"\n--- last {len(tail)} build lines ---\n" + "\n".join(tail)
                )
            aux = event.get("aux")
            if isinstance(aux, dict) and aux.get("ID"):
                image_id = aux["ID"]
    except docker.errors.APIError as exc:
        raise ImageBuildError(f"the Docker engine refused to build {tag}: {exc.explanation or exc}") from exc
    flush()
    if image_id is None:
        try:
            image_id = docker_client.images.get(tag).id
        except docker.errors.ImageNotFound as exc:
            raise ImageBuildError(
                f"the build of {tag} ended without producing an image; last lines:\n" + "\n".join(tail)
            ) from exc
    built_for = docker_client.images.get(image_id).attrs.get("Architecture")
    wanted = platform.partition("/")[2]
    if built_for != wanted:
        # The classic builder's layer cache does not key on the platform: after an arm64 build of the same
        # steps it hands back the arm64 layers for an amd64 build.
        if nocache:
            raise ImageBuildError(f"the Docker engine built {tag} for {built_for}, not {platform} as asked; build "
                                  f"on a {platform} host (its DockerHost block)")
        log(f"the build cache gave {tag} for {built_for}; building it again for {platform} without the cache")
        return build_image(context_dir, dockerfile, tag, build_args, labels, docker_client, log,
                           network_disabled=network_disabled, pull=pull, platform=platform, nocache=True)
    return image_id
