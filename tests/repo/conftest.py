"""Fixtures for repository tests: fake engine and tokenizer dirs (see fake_engines.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.repo.fake_engines import write_tokenizer_dir, write_trtllm_build_engine


@pytest.fixture
def engine_dir(tmp_path: Path) -> Path:
    return write_trtllm_build_engine(tmp_path / "engine_src", tp=2, pp=1)


@pytest.fixture
def tokenizer_dir(tmp_path: Path) -> Path:
    return write_tokenizer_dir(tmp_path / "hf")


@pytest.fixture
def python_models_dir(tmp_path: Path) -> Path:
    """<name>/model.py files: assembly copies them verbatim, so their content is irrelevant to these tests
    (the integration test uses the real ones shipped by trtllm_oci.serving)."""
    root = tmp_path / "python_models"
    for name in ("preprocessing", "postprocessing", "tensorrt_llm_bls", "tensorrt_llm_reference"):
        (root / name).mkdir(parents=True)
        (root / name / "model.py").write_text(f"# {name} model used by repository layout tests\n")
    return root
