"""Which Python files land in each Python model's `<model>/1/`: with the models shipped by trtllm_oci.serving,
every module a model imports by bare name must be there, in every repository variant."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

from trtllm_oci.repo.assemble import (
    AssembleError,
    RepoOptions,
    assemble_repository,
    default_python_models_dir,
    python_model_files,
)

# Provided by the Python backend's stub, not by a file of the repository.
STUB_MODULES = {"triton_python_backend_utils"}
SHIPPED_SHARED_MODULES = sorted(p.name for p in default_python_models_dir().glob("*.py"))


def _imported_top_level_names(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _python_model_dirs(model_repository: Path) -> list[Path]:
    return sorted(p.parent for p in model_repository.glob("*/1/model.py"))


def _is_library(name: str) -> bool:
    # A shipped model module imported earlier in this process must not count as a library.
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        return False
    return default_python_models_dir() not in Path(spec.origin).resolve().parents


def _assert_imports_resolve(version_dir: Path) -> None:
    for module in version_dir.glob("*.py"):
        for name in _imported_top_level_names(module) - {"__future__"} - STUB_MODULES:
            beside = (version_dir / f"{name}.py").is_file()
            assert beside or _is_library(name), (
                f"{module.relative_to(version_dir.parents[1])} imports {name}, which is neither in "
                f"{version_dir} nor an installed library"
            )


def test_shipped_models_have_a_shared_module():
    assert "model_config_params.py" in SHIPPED_SHARED_MODULES


@pytest.mark.parametrize(
    "variant",
    [
        pytest.param({"include_bls": False}, id="ensemble-only"),
        pytest.param({"include_bls": True}, id="bls"),
        pytest.param({"include_bls": True, "backend": "reference"}, id="bls-reference"),
        pytest.param({"include_bls": False, "backend": "reference"}, id="ensemble-reference"),
    ],
)
def test_every_python_model_gets_the_shared_modules_it_imports(tmp_path, engine_dir, tokenizer_dir, variant):
    reference = variant.get("backend") == "reference"
    if reference:
        (tokenizer_dir / "config.json").write_text("{}")
    manifest = assemble_repository(
        None if reference else engine_dir,
        tokenizer_dir,
        tmp_path / "repo",
        RepoOptions(trtllm_version="1.2.1", streaming=True, **variant),
        hf_model_dir=tokenizer_dir if reference else None,
    )
    version_dirs = _python_model_dirs(manifest.model_repository)
    expected = {"preprocessing", "postprocessing"}
    expected |= {"tensorrt_llm_bls"} if variant["include_bls"] else set()
    expected |= {"tensorrt_llm"} if reference else set()
    assert {d.parent.name for d in version_dirs} == expected
    for version_dir in version_dirs:
        for shared in SHIPPED_SHARED_MODULES:
            assert (version_dir / shared).read_bytes() == (default_python_models_dir() / shared).read_bytes()
            assert f"model_repository/{version_dir.parent.name}/1/{shared}" in manifest.files
        _assert_imports_resolve(version_dir)
    if variant["include_bls"]:
        assert (manifest.model_repository / "tensorrt_llm_bls" / "1" / "incremental_detokenizer.py").is_file()
        # A model's own helper modules stay with that model.
        assert not (manifest.model_repository / "preprocessing" / "1" / "incremental_detokenizer.py").exists()


def test_files_are_shared_modules_then_own_modules(tmp_path):
    (tmp_path / "bls").mkdir()
    for path in ("shared_b.py", "shared_a.py", "bls/model.py", "bls/helper.py", "bls/notes.txt"):
        (tmp_path / path).write_text(f"# {path}\n")
    files = python_model_files(tmp_path / "bls" / "model.py")
    assert [p.relative_to(tmp_path).as_posix() for p in files] == [
        "shared_a.py", "shared_b.py", "bls/helper.py", "bls/model.py",
    ]


def test_own_module_named_like_a_shared_one_is_refused(tmp_path, engine_dir, tokenizer_dir):
    models = tmp_path / "models"
    for name in ("preprocessing", "postprocessing"):
        (models / name).mkdir(parents=True)
        (models / name / "model.py").write_text(f"# {name}\n")
    (models / "helpers.py").write_text("# shared\n")
    (models / "postprocessing" / "helpers.py").write_text("# postprocessing's own\n")
    out = tmp_path / "repo"
    with pytest.raises(AssembleError, match=r"helpers\.py exists both in .*postprocessing.*rename"):
        assemble_repository(
            engine_dir, tokenizer_dir, out, RepoOptions(trtllm_version="1.2.1"), python_models_dir=models
        )
    assert not out.exists()
    assert not list(tmp_path.glob(".repo.assembling-*"))
