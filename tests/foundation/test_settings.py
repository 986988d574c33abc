"""The environment is read in one place; every path derives from TRTLLM_OCI_HOME unless overridden."""

from __future__ import annotations

from pathlib import Path

import pytest

from trtllm_oci.errors import InputError
from trtllm_oci.settings import current_settings


@pytest.fixture(autouse=True)
def _no_project_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TRTLLM_OCI_HOME", "TRTLLM_OCI_CACHE", "TRTLLM_OCI_OCI_ENDPOINTS", "HF_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def test_default_cache_root_honours_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TRTLLM_OCI_CACHE", str(tmp_path / "c"))
    assert current_settings().engine_cache_root == tmp_path / "c"
    monkeypatch.delenv("TRTLLM_OCI_CACHE")
    assert current_settings().engine_cache_root == Path.home() / ".cache" / "trtllm-oci" / "engines"


def test_every_path_hangs_off_the_home_and_the_cache_moves_alone(monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    monkeypatch.setenv("TRTLLM_OCI_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TRTLLM_OCI_CACHE", str(tmp_path / "elsewhere" / "engines"))
    s = current_settings()
    assert s.models_dir == tmp_path / "home" / "models"
    assert s.releases_dir == tmp_path / "home" / "releases"
    assert s.engine_downloads_dir == tmp_path / "home" / "engine-downloads"
    assert s.engine_cache_root == tmp_path / "elsewhere" / "engines"


def test_hf_token_is_kept_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_SecretValue123")
    s = current_settings()
    assert s.hf_token_value == "hf_SecretValue123"
    assert "hf_SecretValue123" not in repr(s) and "hf_SecretValue123" not in str(s.model_dump())


@pytest.mark.parametrize(("value", "match"), [("{not json", "is not JSON"), ('["a"]', "JSON object")])
def test_bad_oci_endpoints_name_the_variable_and_a_valid_value(monkeypatch: pytest.MonkeyPatch, value: str,
                                                                match: str) -> None:
    monkeypatch.setenv("TRTLLM_OCI_OCI_ENDPOINTS", value)
    with pytest.raises(InputError, match=match) as err:
        _ = current_settings().oci_endpoints
    assert "TRTLLM_OCI_OCI_ENDPOINTS" in str(err.value)
