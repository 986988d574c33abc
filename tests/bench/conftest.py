"""A real tritonserver (from the nvidia-pytriton wheel) serving tests/bench/models/timed_stream."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

MODELS_DIR = Path(__file__).parent / "models"


@pytest.fixture(scope="session")
def timed_triton(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from trtllm_oci.serving.local import LocalTriton

    repo = tmp_path_factory.mktemp("bench-repo")
    shutil.copytree(MODELS_DIR / "timed_stream", repo / "timed_stream")
    with LocalTriton(repo, ready_timeout_s=120.0) as server:
        yield server


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_model_dir: Path):
    from trtllm_oci.bench.tokens import load_tokenizer

    return load_tokenizer(tiny_model_dir)
