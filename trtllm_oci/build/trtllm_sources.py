"""The TensorRT-LLM `examples/` scripts of a version, obtained without a manual checkout.

The -trtllm-python-py3 serving images ship TensorRT-LLM as a wheel but not its examples/ (convert_checkpoint.py,
quantize.py), so a build needs the scripts of the very same version from elsewhere:

* the version's source archive (GitHub's tarball of the tag): downloaded once into the cache, checked against
  the sha256 the version table records, and extracted with every member checked to stay inside its
  directory (no absolute paths, no `..`, no links out, no devices);
* or the TensorRT-LLM release image of the same version, which copies examples/ to /app/tensorrt_llm/examples
  (NVIDIA/TensorRT-LLM docker/Dockerfile.multi, `release` stage: WORKDIR /app/tensorrt_llm, COPY examples
  examples); its TensorRT must equal the serving image's, or the scripts' checkpoint would be built against
  another TensorRT than the engines.
"""

from __future__ import annotations

import hashlib
import io
import os
import posixpath
import shutil
import tarfile
import tempfile
import urllib.request
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from trtllm_oci.errors import ArtifactError, ProcessError, TrtllmOciError
from trtllm_oci.versions import SourceArchive

COMPLETE_MARKER = ".trtllm-oci-complete"
RELEASE_IMAGE_EXAMPLES = "/app/tensorrt_llm/examples"
_CHUNK = 1 << 20


class SourceArchiveError(ArtifactError):
    """The source archive cannot be fetched, does not match its checksum, or holds an unsafe member."""


def _download(url: str, dest: Path, timeout_s: float) -> str:
    """Stream `url` to `dest` (via a .part file); return the sha256 of what was written."""
    digest = hashlib.sha256()
    part = dest.with_name(dest.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response, open(part, "wb") as out:
            while chunk := response.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
    except OSError as exc:  # URLError, HTTPError and socket errors are all OSErrors
        part.unlink(missing_ok=True)
        raise SourceArchiveError(f"downloading {url} failed: {exc}; check the URL and the network") from exc
    part.rename(dest)
    return digest.hexdigest()


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _member_target(root: Path, name: str, archive: str) -> Path:
    pure = PurePosixPath(name)
    if pure.is_absolute() or ".." in pure.parts:
        raise SourceArchiveError(f"{archive}: member {name!r} would be written outside the extraction directory")
    target = (root / pure).resolve()
    if not target.is_relative_to(root):
        raise SourceArchiveError(f"{archive}: member {name!r} resolves outside the extraction directory")
    return target


def safe_extract(archive_path: Path, dest: Path) -> None:
    """Extract a tar archive into `dest`, refusing any member that could write outside it."""
    root = dest.resolve()
    label = str(archive_path)
    with tarfile.open(archive_path, "r:*") as archive:
        members = archive.getmembers()
        for member in members:
            target = _member_target(root, member.name, label)
            if member.issym():
                link = PurePosixPath(member.linkname)
                resolved = posixpath.normpath(posixpath.join(posixpath.dirname(member.name), member.linkname))
                if link.is_absolute() or resolved.startswith("../") or resolved == "..":
                    raise SourceArchiveError(
                        f"{label}: symlink {member.name!r} -> {member.linkname!r} points outside the archive"
                    )
            elif member.islnk():
                _member_target(root, member.linkname, label)
            elif not (member.isdir() or member.isreg()):
                raise SourceArchiveError(f"{label}: member {member.name!r} is a device, fifo or other special file")
            del target
        for member in members:
            target = root / member.name
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
            elif member.isreg():
                target.parent.mkdir(parents=True, exist_ok=True)
                source = archive.extractfile(member)
                assert source is not None
                with source, open(target, "wb") as out:
                    shutil.copyfileobj(source, out)
                os.chmod(target, 0o755 if member.mode & 0o111 else 0o644)
            elif member.issym():
                target.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(member.linkname, target)
            elif member.islnk():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(root / member.linkname, target)


def _single_top_dir(extracted: Path) -> Path:
    """GitHub tarballs hold one top directory (TensorRT-LLM-<version>/); the checkout is inside it."""
    entries = [p for p in extracted.iterdir()]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return extracted


def fetch_source_archive(
    version: str,
    archive: SourceArchive,
    cache_root: Path,
    *,
    log: Callable[[str], None] = lambda _line: None,
    timeout_s: float = 120.0,
) -> Path:
    """The checkout directory (holding examples/) of `version`'s source archive, cached under `cache_root`.

    Downloaded once, verified against `archive.sha256`, extracted safely; later calls return the cached
    checkout. Raises SourceArchiveError for an archive without a recorded sha256, a checksum mismatch (the
    download is deleted) or an unsafe member (nothing is left extracted).
    """
    if archive.sha256 is None:
        raise SourceArchiveError(
            f"the version table records no sha256 for TensorRT-LLM {version}'s source archive {archive.url}, so it "
            "cannot be verified; record one (sha256sum of a download you trust) in trtllm_versions.yaml "
            "source_archive.sha256, or pass a checkout with build_host.trtllm_src_dir / TRTLLM_OCI_TRTLLM_SRC"
        )
    base = Path(cache_root) / "trtllm-src" / version
    checkout_root = base / archive.sha256
    if (checkout_root / COMPLETE_MARKER).is_file():
        return _single_top_dir(checkout_root / "src")
    base.mkdir(parents=True, exist_ok=True)
    from trtllm_oci.files import file_lock

    with file_lock(base / ".lock"):
        if (checkout_root / COMPLETE_MARKER).is_file():
            return _single_top_dir(checkout_root / "src")
        tarball = base / f"{archive.sha256}.tar.gz"
        if not tarball.is_file() or _sha256_of(tarball) != archive.sha256:
            log(f"downloading TensorRT-LLM {version} sources from {archive.url}")
            got = _download(archive.url, tarball, timeout_s)
            if got != archive.sha256:
                tarball.unlink(missing_ok=True)
                raise SourceArchiveError(
                    f"{archive.url} has sha256 {got}, but the version table records {archive.sha256} for TensorRT-LLM "
                    f"{version}; the download was deleted. If upstream re-generated the tarball, verify it and update "
                    "source_archive.sha256"
                )
        staging = Path(tempfile.mkdtemp(prefix=".extracting-", dir=base))
        try:
            safe_extract(tarball, staging / "src")
            if not (_single_top_dir(staging / "src") / "examples").is_dir():
                raise SourceArchiveError(f"{archive.url} holds no examples/ directory; is it a TensorRT-LLM tag?")
            (staging / COMPLETE_MARKER).write_text(archive.sha256 + "\n")
            shutil.rmtree(checkout_root, ignore_errors=True)
            staging.rename(checkout_root)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    log(f"TensorRT-LLM {version} sources at {checkout_root}")
    return _single_top_dir(checkout_root / "src")


# --- the release image of the same version -----------------------------------------------------------------


class ReleaseImageError(ProcessError):
    """The release image cannot provide the version's examples/ scripts."""


def release_image_tensorrt_version(client: Any, image: str) -> str:
    """`tensorrt.__version__` inside `image` (python3 of the image, no GPU needed)."""
    output = client.containers.run(
        image,
        ["python3", "-c", "import tensorrt; print(tensorrt.__version__)"],
        remove=True,
        network_mode="none",
        stdout=True,
        stderr=False,
    )
    return output.decode().strip().splitlines()[-1] if output.strip() else ""


def examples_from_release_image(
    client: Any, image: str, serving_tensorrt: str | None, dest: Path, *, log: Callable[[str], None] = lambda _l: None
) -> Path:
    """Copy /app/tensorrt_llm/examples out of the TensorRT-LLM release `image` into `dest/examples`; return
    `dest` (a checkout-like directory). Refused unless the image's TensorRT equals the serving image's."""
    if serving_tensorrt is None:
        raise ReleaseImageError(
            f"the version table records no TensorRT version for this serving image, so {image}'s cannot be checked "
            "against it; use the source archive or build_host.trtllm_src_dir"
        )
    found = release_image_tensorrt_version(client, image)
    if found != serving_tensorrt:
        raise ReleaseImageError(
            f"{image} has TensorRT {found or '(none found)'} but the serving image has {serving_tensorrt}; its "
            "scripts would write checkpoints for another TensorRT than the engines. Use the source archive or "
            "build_host.trtllm_src_dir"
        )
    container = client.containers.create(image, ["true"], network_mode="none")
    try:
        stream, _stat = container.get_archive(RELEASE_IMAGE_EXAMPLES)
        data = io.BytesIO(b"".join(stream))
    finally:
        container.remove(force=True)
    staging = Path(tempfile.mkdtemp(prefix=".examples-", dir=Path(dest).parent))
    try:
        tar_path = staging / "examples.tar"
        tar_path.write_bytes(data.getvalue())
        safe_extract(tar_path, staging / "checkout")
        tar_path.unlink()
        if not (staging / "checkout" / "examples").is_dir():
            raise ReleaseImageError(f"{image} has no {RELEASE_IMAGE_EXAMPLES}")
        (staging / "checkout" / COMPLETE_MARKER).write_text(image + "\n")
        shutil.rmtree(dest, ignore_errors=True)
        (staging / "checkout").rename(dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log(f"TensorRT-LLM examples from {image} (TensorRT {found}) at {dest}")
    return Path(dest)


def resolve_examples_checkout(
    version: str,
    *,
    explicit: str | None,
    archive: SourceArchive | None,
    release_image: str | None,
    serving_tensorrt: str | None,
    cache_root: Path,
    docker_client: Callable[[], Any] | None = None,
    log: Callable[[str], None] = lambda _line: None,
) -> Path:
    """A directory holding `version`'s examples/: the explicit checkout, else the verified source archive, else
    the release image's examples/ (when `docker_client` can reach an engine). Each refusal is kept so the
    final error says why every source was unusable."""
    if explicit:
        return Path(explicit)
    reasons = []
    if archive is not None:
        try:
            return fetch_source_archive(version, archive, cache_root, log=log)
        except SourceArchiveError as exc:
            reasons.append(f"source archive: {exc}")
    if release_image is not None and docker_client is not None:
        dest = Path(cache_root) / "trtllm-src" / version / "release-image"
        if (dest / COMPLETE_MARKER).is_file() and (dest / COMPLETE_MARKER).read_text().strip() == release_image:
            return dest
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            return examples_from_release_image(docker_client(), release_image, serving_tensorrt, dest, log=log)
        except (ReleaseImageError, TrtllmOciError) as exc:
            reasons.append(f"release image: {exc}")
        except Exception as exc:  # noqa: BLE001 - docker-py raises its own hierarchy; report, do not mask
            reasons.append(f"release image {release_image}: {type(exc).__name__}: {exc}")
    tried = "; ".join(reasons) or "the version table names neither a source archive nor a release image"
    raise TrtllmOciError(
        f"no TensorRT-LLM {version} examples/ scripts for the build ({tried}); pass a checkout of tag v{version} with "
        "build_host.trtllm_src_dir / --trtllm-src / TRTLLM_OCI_TRTLLM_SRC"
    )
