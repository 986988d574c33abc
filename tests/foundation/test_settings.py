"""The environment is read in one place; every path derives from TRTLLM_OCI_HOME unless overridden."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from trtllm_oci.errors import InputError
from trtllm_oci.settings import current_settings, shape_catalog_path


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


class _PathFieldAsBefore(BaseSettings):
    """How `Settings` read $TRTLLM_OCI_SHAPES while it was one of its fields (pydantic-settings, same config)."""

    model_config = SettingsConfigDict(env_prefix="TRTLLM_OCI_", extra="ignore", frozen=True)

    shapes: Path | None = None

    @field_validator("shapes", mode="after")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return None if value is None else value.expanduser()


@pytest.mark.parametrize("env", [{}, {"TRTLLM_OCI_SHAPES": "/srv/shapes.yaml"}, {"TRTLLM_OCI_SHAPES": "~/s.yaml"},
                                 {"TRTLLM_OCI_SHAPES": ""}, {"trtllm_oci_shapes": "rel/s.yaml"},
                                 {"TRTLLM_OCI_SHAPES": "/a.yaml", "trtllm_oci_shapes": "/b.yaml"}])
def test_the_shape_catalog_variable_reads_as_a_pydantic_settings_field_would(
        monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name in [n for n in os.environ if n.lower() == "trtllm_oci_shapes"]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert shape_catalog_path() == _PathFieldAsBefore().shapes == current_settings().shapes


def test_the_shape_catalog_loads_without_importing_pydantic_settings() -> None:
    code = ("import sys; from trtllm_oci.shapes import load_catalog; load_catalog(); "
            "print('pydantic_settings' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
