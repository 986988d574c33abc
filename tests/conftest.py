"""Session-wide test setup: isolated Prefect home and caches, one Prefect API server per session."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# Before anything imports prefect: its settings are read at import time.
_SESSION_DIR = Path(tempfile.mkdtemp(prefix="trtllm-oci-tests-"))
os.environ.setdefault("PREFECT_HOME", str(_SESSION_DIR / "prefect-home"))
# Ephemeral start-up takes 20-30 s on 2 cores with a fresh database (shared/reference/prefect.md).
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
os.environ.setdefault("PREFECT_API_REQUEST_TIMEOUT", "120")
os.environ.setdefault("TRTLLM_OCI_CACHE", str(_SESSION_DIR / "cache"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HOME", str(_SESSION_DIR / "hf-home"))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

pytest_plugins = ["tests.conftest_docker"]


@pytest.fixture(scope="session")
def session_dir() -> Path:
    return _SESSION_DIR


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[str]:
    """One Prefect API server (temporary SQLite database) shared by every test that needs Prefect."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield os.environ.get("PREFECT_API_URL", "")


@pytest.fixture(scope="session")
def tiny_model_dir(session_dir: Path) -> Path:
    """A tiny Llama-architecture model with random weights and a locally trained tokenizer."""
    from trtllm_oci.tiny_model import make_tiny_llama

    return make_tiny_llama(session_dir / "tiny-llama")


@pytest.fixture(scope="session")
def tiny_chat_model_dir(tiny_model_dir: Path, session_dir: Path) -> Path:
    """The tiny model with a chat template beside its tokenizer (chat_template.jinja, as transformers 5 saves it):
    what a chat request needs (trtllm-serve answers 400 to chat on a model without one)."""
    import shutil

    from trtllm_oci.tiny_model import TINY_CHAT_TEMPLATE

    chat = shutil.copytree(tiny_model_dir, session_dir / "tiny-llama-chat")
    (chat / "chat_template.jinja").write_text(TINY_CHAT_TEMPLATE)
    return chat
