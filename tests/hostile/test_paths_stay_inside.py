"""Nothing from a name, a link, a listing or an archive lands outside its directory, and nothing from
elsewhere on the host lands in an artifact."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import pytest

from tests.repo.fake_engines import write_tokenizer_dir, write_trtllm_build_engine
from trtllm_oci.errors import ArtifactError, InputError, SpecError
from trtllm_oci.files import PathEscapeError, path_inside
from trtllm_oci.release.workspace import Workspace
from trtllm_oci.repo.assemble import AssembleError, RepoOptions, assemble_repository, oci_deploy_root
from trtllm_oci.repo.package import PackageError, package_repository
from trtllm_oci.settings import Settings
from trtllm_oci.spec import parse_spec


@pytest.fixture
def python_models_dir(tmp_path: Path) -> Path:
    root = tmp_path / "python_models"
    for name in ("preprocessing", "postprocessing", "tensorrt_llm_bls", "tensorrt_llm_reference"):
        (root / name).mkdir(parents=True)
        (root / name / "model.py").write_text(f"# {name}\n")
    return root


def _assemble(engine_dir: Path, tokenizer_dir: Path, out: Path, python_models_dir: Path):
    return assemble_repository(engine_dir, tokenizer_dir, out,
                               RepoOptions(trtllm_version="1.2.1", deploy_root=oci_deploy_root(out.name)),
                               python_models_dir=python_models_dir)


@pytest.mark.parametrize("name", ["../../../escaped", "/abs/dir", "..", ".hidden", "a/b", "x" * 101, "tab\there"])
def test_a_release_name_that_is_not_one_path_component_is_refused(name: str) -> None:
    with pytest.raises(SpecError, match="not a release name"):
        parse_spec({"model": {"local_dir": "/m"}, "name": name})


def test_the_workspace_of_a_release_stays_under_releases(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    spec = parse_spec({"model": {"local_dir": "/models/Some Model!"}, "name": "ok-name_1.0"})
    assert Workspace.for_release(spec, settings).root == (tmp_path / "home" / "releases" / "ok-name_1.0").resolve()
    # A name the spec accepts, whose directory someone replaced by a link out of releases/: refused.
    (tmp_path / "home" / "releases" / "ok-name_1.0").rmdir()
    (tmp_path / "home" / "releases" / "ok-name_1.0").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(PathEscapeError, match="leads outside"):
        Workspace.for_release(spec, settings)
    assert not (tmp_path / "elsewhere").exists()


def test_derived_release_ids_are_single_components() -> None:
    spec = parse_spec({"model": {"hf_repo": "org/" + "Very.Long_Model..Name" * 10}})
    assert "/" not in spec.release_id and ".." not in spec.model.short_name and len(spec.model.short_name) <= 48


@pytest.mark.parametrize("relative", ["../x", "a/../../x", "/etc/passwd", "", "a\x00b"])
def test_paths_from_a_listing_must_stay_inside_their_root(tmp_path: Path, relative: str) -> None:
    with pytest.raises(PathEscapeError, match="the manifest"):
        path_inside(tmp_path, relative, "the manifest")
    assert isinstance(PathEscapeError("x"), ArtifactError)


def test_a_link_in_the_engine_dir_to_a_host_file_is_not_packaged(tmp_path: Path, python_models_dir: Path) -> None:
    engine = write_trtllm_build_engine(tmp_path / "engine", tp=1, pp=1)
    (engine / "notes.txt").symlink_to("/etc/hostname")
    with pytest.raises(AssembleError, match=r"notes.txt is a link to /etc/hostname, outside .*not followed"):
        _assemble(engine, write_tokenizer_dir(tmp_path / "hf"), tmp_path / "repo", python_models_dir)
    assert not (tmp_path / "repo").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".repo")] == []  # no staging left


def test_a_link_in_the_tokenizer_dir_out_of_it_is_refused(tmp_path: Path, python_models_dir: Path) -> None:
    tokenizer = write_tokenizer_dir(tmp_path / "hf")
    secret = tmp_path / "id_rsa"
    secret.write_text("PRIVATE KEY")
    (tokenizer / "vocab.txt").symlink_to(secret)
    with pytest.raises(AssembleError, match="vocab.txt is a link to"):
        _assemble(write_trtllm_build_engine(tmp_path / "engine", tp=1, pp=1), tokenizer, tmp_path / "repo",
                  python_models_dir)


def test_a_hub_cache_snapshot_links_into_its_blobs_and_is_accepted(tmp_path: Path, python_models_dir: Path) -> None:
    # huggingface_hub's cache: models--org--name/snapshots/<sha>/<file> -> ../../blobs/<hash>
    source = write_tokenizer_dir(tmp_path / "src")
    repo_cache = tmp_path / "hub" / "models--acme--tiny"
    snapshot = repo_cache / "snapshots" / ("a" * 40)
    (repo_cache / "blobs").mkdir(parents=True)
    snapshot.mkdir(parents=True)
    for index, file in enumerate(sorted(p for p in source.iterdir() if p.is_file())):
        blob = repo_cache / "blobs" / f"blob{index}"
        blob.write_bytes(file.read_bytes())
        (snapshot / file.name).symlink_to(os.path.relpath(blob, snapshot))
    manifest = _assemble(write_trtllm_build_engine(tmp_path / "engine", tp=1, pp=1), snapshot, tmp_path / "repo",
                         python_models_dir)
    assert any(name.startswith("tokenizer/") for name in manifest.files)


def test_package_refuses_a_link_assemble_did_not_make(tmp_path: Path, python_models_dir: Path) -> None:
    out = tmp_path / "repo"
    _assemble(write_trtllm_build_engine(tmp_path / "engine", tp=1, pp=1), write_tokenizer_dir(tmp_path / "hf"), out,
              python_models_dir)
    (out / "engine" / "extra").symlink_to("/etc/hostname")
    (tmp_path / "zips").mkdir()
    with pytest.raises(PackageError, match="extra is a link to /etc/hostname, outside the repository"):
        package_repository(out, tmp_path / "zips" / "a.zip")
    assert list((tmp_path / "zips").iterdir()) == []
    (out / "engine" / "extra").unlink()
    (out / "linked-dir").symlink_to("/etc", target_is_directory=True)
    with pytest.raises(PackageError, match="link to a directory"):
        package_repository(out, tmp_path / "zips" / "a.zip")
    (out / "linked-dir").unlink()
    result = package_repository(out, tmp_path / "zips" / "a.zip")
    with zipfile.ZipFile(result.zip_path) as archive:
        assert not any("hostname" in name or "linked-dir" in name for name in archive.namelist())
        assert json.loads(archive.read("repo/manifest.json"))["files"]


def test_a_hub_answer_that_is_not_a_commit_sha_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import HfApi

    from trtllm_oci.hub.download import resolve_revision
    from trtllm_oci.hub.errors import HubTransferError

    class Info:
        sha = "../../../../tmp/evil"

    monkeypatch.setattr(HfApi, "model_info", lambda self, *a, **k: Info())
    with pytest.raises(HubTransferError, match="not a 40-character hex sha"):
        resolve_revision("acme/tiny", "main")


def test_a_repo_id_that_climbs_is_not_a_directory_name() -> None:
    from trtllm_oci.hub.download import repo_dir_name

    assert repo_dir_name("acme/tiny-llm") == "acme--tiny-llm"
    for bad in ("../etc", "acme/../../x", "/abs", "a/b/c"):
        with pytest.raises(InputError):
            repo_dir_name(bad)
