from __future__ import annotations

import hashlib
import json
import struct
import zipfile

import pytest

from trtllm_oci.repo.assemble import RepoOptions, assemble_repository, oci_deploy_root
from trtllm_oci.repo.package import FIXED_DATE_TIME, PackageError, package_repository


@pytest.fixture
def oci_repo(tmp_path, engine_dir, tokenizer_dir, python_models_dir):
    options = RepoOptions(trtllm_version="1.2.1", deploy_root=oci_deploy_root("llama"))
    return assemble_repository(
        engine_dir, tokenizer_dir, tmp_path / "llama", options, python_models_dir=python_models_dir
    )


def test_zip_is_deterministic_and_records_sha256(tmp_path, oci_repo):
    first = package_repository(oci_repo.root, tmp_path / "out" / "a.zip")
    second = package_repository(oci_repo.root, tmp_path / "out" / "b.zip")
    assert first.sha256 == second.sha256
    assert first.sha256 == hashlib.sha256((tmp_path / "out" / "a.zip").read_bytes()).hexdigest()
    assert (tmp_path / "out" / "a.zip.sha256").read_text() == f"{first.sha256}  a.zip\n"
    assert first.entries == sorted(first.entries)


def test_zip_is_zip64_readable_with_real_engine_bytes(tmp_path, oci_repo, engine_dir):
    result = package_repository(oci_repo.root, tmp_path / "artifact.zip")
    with zipfile.ZipFile(result.zip_path) as archive:
        assert archive.testzip() is None
        info = archive.getinfo("llama/engine/rank1.engine")
        assert info.date_time == FIXED_DATE_TIME
        assert (info.external_attr >> 16) & 0o777 == 0o644
        assert info.compress_type == zipfile.ZIP_STORED
        local_header = _local_header_extra(result.zip_path, info)
        assert archive.read("llama/engine/rank1.engine") == (engine_dir / "rank1.engine").read_bytes()
        names = archive.namelist()
    # force_zip64 writes the ZIP64 extended-information extra field (header id 0x0001) in each local header,
    # so entries of any size (multi-GiB engines) are announced as ZIP64 before their data.
    assert local_header[:2] == b"\x01\x00"
    assert "llama/model_repository/tensorrt_llm/config.pbtxt" in names
    assert "llama/manifest.json" in names
    extracted = tmp_path / "x"
    zipfile.ZipFile(result.zip_path).extractall(extracted)
    assert not (extracted / "llama" / "engine" / "rank0.engine").is_symlink()


def _local_header_extra(zip_path, info: zipfile.ZipInfo) -> bytes:
    with open(zip_path, "rb") as f:
        f.seek(info.header_offset)
        header = f.read(30)
        assert header[:4] == b"PK\x03\x04"
        name_len, extra_len = struct.unpack("<HH", header[26:30])
        f.seek(info.header_offset + 30 + name_len)
        return f.read(extra_len)


def test_deploy_root_mismatch_is_refused(tmp_path, oci_repo):
    with pytest.raises(
        PackageError,
        match=r"assembled for deploy_root='/opt/ds/model/deployed_model/llama' but this "
        r"artifact unpacks to '/opt/ds/model/deployed_model/other'",
    ):
        package_repository(oci_repo.root, tmp_path / "a.zip", arc_root="other")
    assert not (tmp_path / "a.zip").exists()


def test_zip_inside_repo_is_refused(oci_repo):
    with pytest.raises(PackageError, match=r"is inside the repository"):
        package_repository(oci_repo.root, oci_repo.root / "a.zip")


def test_dangling_link_leaves_no_partial_zip(tmp_path, oci_repo):
    (oci_repo.root / "engine" / "extra.bin").symlink_to(tmp_path / "gone.bin")
    (tmp_path / "out").mkdir()
    with pytest.raises(PackageError, match=r"extra.bin is a dangling link; reassemble"):
        package_repository(oci_repo.root, tmp_path / "out" / "a.zip")
    assert list((tmp_path / "out").iterdir()) == []


def test_read_error_mid_write_leaves_no_partial_zip(tmp_path, oci_repo):
    # Reading /proc/self/mem at offset 0 fails with EIO: a file that breaks after the zip was opened. The
    # manifest lists the link, as it lists every link assemble makes (an unlisted one is refused up front).
    (oci_repo.root / "tokenizer" / "zz_unreadable").symlink_to("/proc/self/mem")
    manifest_path = oci_repo.root / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["files"] = sorted([*manifest["files"], "tokenizer/zz_unreadable"])
    manifest_path.write_text(json.dumps(manifest))
    (tmp_path / "out").mkdir()
    with pytest.raises(OSError):
        package_repository(oci_repo.root, tmp_path / "out" / "a.zip")
    assert list((tmp_path / "out").iterdir()) == []


def test_same_inputs_assembled_elsewhere_give_the_same_zip(
    tmp_path, engine_dir, tokenizer_dir, python_models_dir
):
    options = RepoOptions(trtllm_version="1.2.1", deploy_root=oci_deploy_root("llama"))
    digests = []
    for where in ("a", "b"):
        manifest = assemble_repository(
            engine_dir,
            tokenizer_dir,
            tmp_path / where / "llama",
            options,
            python_models_dir=python_models_dir,
        )
        digests.append(package_repository(manifest.root, tmp_path / f"{where}.zip").sha256)
    assert digests[0] == digests[1]
