"""The environment, read in one place, and every path derived from it.

Only this module reads the process environment (the libraries we drive read their own: huggingface_hub
its HF_HUB_* variables, the oci SDK its OCI_* ones, Prefect its PREFECT_* ones). Callers ask for a
`Settings` when a stage starts and pass the paths and values on as arguments, so nothing below the release
layer looks at the environment. `current_settings()` reads the environment at each call, so a long-lived
worker or a test that changes a variable sees the change.

    $TRTLLM_OCI_HOME (default ~/.cache/trtllm-oci)
        models/                 downloaded Hugging Face snapshots (flows and CLI alike)
        releases/<release id>/  a release's workspace (repository, artifact, benchmark, report)
        engines/                the local engine cache, unless $TRTLLM_OCI_CACHE names another directory
        engine-downloads/<key>  engines fetched from an oci:// engine cache
        demo-models/            the tiny demo model
        evaluation/             quality-gate task sets fetched from the Hub, and their converted data
    <engine cache>/../baselines the quality gate's source scores (one JSON per source commit, task set, harness)
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from trtllm_oci.errors import InputError


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRTLLM_OCI_", extra="ignore", frozen=True)

    home: Path = Field(default_factory=lambda: Path.home() / ".cache" / "trtllm-oci",
                       description="Root of workspaces, downloaded models and the default engine cache")
    cache: Path | None = Field(default=None, description="Local engine cache root (default: <home>/engines)")
    shapes: Path | None = Field(default=None, description="Another GPU shape catalog YAML")
    trtllm_src: Path | None = Field(default=None, description="TensorRT-LLM checkout at the version's source tag")
    oci_endpoints_json: str = Field(
        default="", validation_alias=AliasChoices("TRTLLM_OCI_OCI_ENDPOINTS"),
        description='JSON {"object_storage": "https://...", ...}: OCI service endpoint overrides')
    ocir_token_url: str | None = Field(default=None, description="OCIR docker token endpoint override")
    triton_stub_numpy: str | None = Field(
        default=None, description="pip requirement or wheel path for the python-backend stub's numpy<2")
    hf_token: SecretStr | None = Field(default=None, validation_alias=AliasChoices("HF_TOKEN"))
    hf_endpoint: str | None = Field(default=None, validation_alias=AliasChoices("HF_ENDPOINT"))
    oci_resource_principal_version: str | None = Field(
        default=None, validation_alias=AliasChoices("OCI_RESOURCE_PRINCIPAL_VERSION"),
        description="Set by OCI services that inject a resource principal")

    @field_validator("home", "cache", "shapes", "trtllm_src", mode="after")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return None if value is None else value.expanduser()

    @field_validator("hf_token", "hf_endpoint", "ocir_token_url", "triton_stub_numpy", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def releases_dir(self) -> Path:
        return self.home / "releases"

    @property
    def engine_cache_root(self) -> Path:
        return self.cache or self.home / "engines"

    @property
    def engine_downloads_dir(self) -> Path:
        return self.home / "engine-downloads"

    @property
    def baselines_dir(self) -> Path:
        """The quality gate's source scores, beside the local engine cache (one JSON per baseline key)."""
        return self.engine_cache_root.parent / "baselines"

    @property
    def evaluation_dir(self) -> Path:
        """Evaluation task sets fetched from the Hub (evaluation-sets/) and their converted data (datasets-cache/)."""
        return self.home / "evaluation"

    @property
    def demo_models_dir(self) -> Path:
        return self.home / "demo-models"

    @property
    def hf_token_value(self) -> str | None:
        return self.hf_token.get_secret_value() if self.hf_token else None

    @property
    def oci_endpoints(self) -> dict[str, str]:
        """TRTLLM_OCI_OCI_ENDPOINTS parsed; an error names the variable and shows a valid value."""
        text = self.oci_endpoints_json.strip()
        if not text:
            return {}
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise InputError(f"TRTLLM_OCI_OCI_ENDPOINTS is not JSON ({exc}); set it to e.g. "
                             '\'{"object_storage": "https://objectstorage.us-ashburn-1.oraclecloud.com"}\' or unset it'
                             ) from None
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise InputError("TRTLLM_OCI_OCI_ENDPOINTS must be a JSON object of service name -> endpoint URL, "
                             f"got {text!r}")
        return value


def current_settings() -> Settings:
    """The settings of the environment as it is now."""
    return Settings()
