"""Model-artifact zip of an assembled repository for OCI Data Science (BYOC).

The zip is ZIP64 (engines exceed 4 GiB), streamed chunk-wise (never a whole file in memory), deterministic
(sorted paths, 1980-01-01 timestamps, fixed permissions: the same repository gives the same sha256, so an
unchanged artifact can be recognised and not uploaded again) and written atomically (temp file, rename).
Links to files are followed, so engines land in the zip as real files, but only the links assemble made (its
manifest lists them; it links only files that stay inside their engine or model directory) and links that
stay inside the repository: any other link is refused, so the artifact never carries a file from elsewhere on
the host. Links to directories are not followed.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from pydantic import BaseModel

from trtllm_oci.errors import ArtifactError
from trtllm_oci.files import inside
from trtllm_oci.repo.assemble import MANIFEST_NAME, OCI_DEPLOY_PREFIX, read_manifest

CHUNK_BYTES = 8 * 1024 * 1024
FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip header can hold
FILE_MODE = 0o644
# Every entry is stored, not deflated: engines and weights are dense fp16/fp8/int4 bytes on which deflate spends
# minutes of CPU per GiB to save a few percent, which would make packaging CPU-bound instead of I/O-bound; the
# compressible files (configs, tokenizer.json) are a rounding error next to them; and stored bytes do not depend
# on the zlib build, so the sha256 is the same on every machine.


class PackageError(ArtifactError, ValueError):
    """The repository cannot be packaged as an artifact."""


class _HashingWriter:
    """Write-only, non-seekable sink that hashes what passes through.

    zipfile then streams each entry with a data descriptor instead of seeking back to patch the local header,
    so the sha256 is computed in the same pass as the write (no second read of a multi-GiB zip).
    """

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._position = 0
        self.digest = hashlib.sha256()

    def close(self) -> None:
        """The caller closes the underlying file; zipfile closes only what it opened."""

    def write(self, data: bytes) -> int:
        self._raw.write(data)
        self.digest.update(data)
        self._position += len(data)
        return len(data)

    def tell(self) -> int:
        return self._position

    def flush(self) -> None:
        self._raw.flush()


class PackageResult(BaseModel):
    zip_path: Path
    sha256: str
    size_bytes: int
    entries: list[str]


def _collect(repo_dir: Path, assembled: set[str]) -> list[tuple[str, Path]]:
    """(archive name, path) of every file; `assembled` holds the relative paths assemble wrote."""
    files: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(repo_dir):
        dirnames.sort()
        for name in dirnames:
            if (Path(dirpath) / name).is_symlink():
                raise PackageError(f"{Path(dirpath) / name} is a link to a directory; assemble writes none, so "
                                   "reassemble the repository (links to directories are not followed)")
        for name in filenames:
            path = Path(dirpath) / name
            relative = str(PurePosixPath(*path.relative_to(repo_dir).parts))
            if not path.exists():
                raise PackageError(
                    f"{path} is a dangling link; reassemble the repository (its source was removed)"
                )
            if path.is_symlink() and relative not in assembled and not inside(repo_dir, path):
                raise PackageError(
                    f"{path} is a link to {os.path.realpath(path)}, outside the repository, that assemble did not "
                    "make; refusing to put that file into the artifact. Remove the link, or reassemble")
            files.append((relative, path))
    return sorted(files)


def package_repository(repo_dir: Path, zip_path: Path, arc_root: str | None = None) -> PackageResult:
    """Zip `repo_dir` into `zip_path` under the top folder `arc_root` (default: the repo dir's name).

    The artifact is unzipped at /opt/ds/model/deployed_model, so the repository must have been assembled with
    deploy_root = /opt/ds/model/deployed_model/<arc_root>; a mismatch is refused here rather than as a
    missing-engine error in the deployment.
    """
    repo_dir = Path(repo_dir).absolute()
    zip_path = Path(zip_path).absolute()
    arc_root = arc_root or repo_dir.name
    assembled: set[str] = set()
    if (repo_dir / MANIFEST_NAME).is_file():
        manifest = read_manifest(repo_dir)
        assembled = set(manifest.files)
        expected = f"{OCI_DEPLOY_PREFIX}/{arc_root}"
        if manifest.deploy_root != expected:
            raise PackageError(
                f"{repo_dir} was assembled for deploy_root={manifest.deploy_root!r} but this artifact unpacks to "
                f"{expected!r}; reassemble with deploy_root={expected!r} or pass arc_root matching it"
            )
    if zip_path.is_relative_to(repo_dir):
        raise PackageError(f"zip path {zip_path} is inside the repository {repo_dir}; write it elsewhere")
    files = _collect(repo_dir, assembled)
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{zip_path.name}.", suffix=".partial", dir=zip_path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        entries = []
        with tmp.open("wb") as raw:
            sink = _HashingWriter(raw)
            with zipfile.ZipFile(sink, "w", allowZip64=True) as archive:
                for arcname, path in files:
                    size = path.stat().st_size
                    info = zipfile.ZipInfo(f"{arc_root}/{arcname}", date_time=FIXED_DATE_TIME)
                    info.external_attr = (stat.S_IFREG | FILE_MODE) << 16
                    info.create_system = 3  # unix, so external_attr permissions are honoured by unzip
                    info.compress_type = zipfile.ZIP_STORED
                    info.file_size = size
                    with path.open("rb") as src, archive.open(info, "w", force_zip64=True) as dst:
                        while chunk := src.read(CHUNK_BYTES):
                            dst.write(chunk)
                    entries.append(info.filename)
        sha256 = sink.digest.hexdigest()
        os.chmod(tmp, 0o644)
        tmp.replace(zip_path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    sha_path = zip_path.with_name(zip_path.name + ".sha256")
    sha_tmp = sha_path.with_name(f".{sha_path.name}.partial")
    sha_tmp.write_text(f"{sha256}  {zip_path.name}\n")
    sha_tmp.replace(sha_path)
    return PackageResult(
        zip_path=zip_path, sha256=sha256, size_bytes=zip_path.stat().st_size, entries=entries
    )
