"""`Settings`: the environment read through pydantic-settings (see the package docstring)."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from trtllm_oci.errors import InputError
from trtllm_oci.settings import shape_catalog_path


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRTLLM_OCI_", extra="ignore", frozen=True)

    home: Path = Field(default_factory=lambda: Path.home() / ".cache" / "trtllm-oci",
                       description="Root of workspaces, downloaded models and the default engine cache")
    cache: Path | None = Field(default=None, description="Local engine cache root (default: <home>/engines)")
    trtllm_src: Path | None = Field(default=None, description="TensorRT-LLM checkout at the version's source tag")
    oci_endpoints_json: str = Field(
        default="", validation_alias=AliasChoices("TRTLLM_OCI_OCI_ENDPOINTS"),
        description='JSON {"object_storage": "https://...", "ocir": "https://...", ...}: OCI service endpoint overrides; '
                    '"ocir" is the address OCIR is reached through for the image push')
    ocir_token_url: str | None = Field(default=None, description="OCIR docker token endpoint override")
    triton_stub_numpy: str | None = Field(
        default=None, description="pip requirement or wheel path for the python-backend stub's numpy<2")
    hf_token: SecretStr | None = Field(default=None, validation_alias=AliasChoices("HF_TOKEN"))
    hf_endpoint: str | None = Field(default=None, validation_alias=AliasChoices("HF_ENDPOINT"))
    oci_resource_principal_version: str | None = Field(
        default=None, validation_alias=AliasChoices("OCI_RESOURCE_PRINCIPAL_VERSION"),
        description="Set by OCI services that inject a resource principal")
    prefect_api_url: str | None = Field(default=None, validation_alias=AliasChoices("PREFECT_API_URL"),
                                        description="The user's Prefect server (or Cloud) API")
    prefect_home_env: Path | None = Field(default=None, validation_alias=AliasChoices("PREFECT_HOME"),
                                          description="The user's own Prefect home")
    prefect_profile: str | None = Field(default=None, validation_alias=AliasChoices("PREFECT_PROFILE"))
    prefect_database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("PREFECT_API_DATABASE_CONNECTION_URL",
                                                    "PREFECT_SERVER_DATABASE_CONNECTION_URL"))

    @field_validator("home", "cache", "trtllm_src", "prefect_home_env", mode="after")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return None if value is None else value.expanduser()

    @field_validator("hf_token", "hf_endpoint", "ocir_token_url", "triton_stub_numpy", "prefect_api_url",
                     "prefect_home_env", "prefect_profile", "prefect_database_url", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @property
    def shapes(self) -> Path | None:
        """Another GPU shape catalog YAML ($TRTLLM_OCI_SHAPES)."""
        return shape_catalog_path()

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
    def own_prefect_home(self) -> Path:
        return self.home / "prefect"

    def prefect_environment(self) -> dict[str, str]:
        """The PREFECT_* variables the CLI and the demo set before Prefect loads: none when the user points at
        a server (PREFECT_API_URL, in the environment or in the active profile of their Prefect home) or at a
        home of their own (PREFECT_HOME); otherwise PREFECT_HOME=$TRTLLM_OCI_HOME/prefect, so the embedded API's
        database is ours and another Prefect version on the machine can neither migrate it nor break on it."""
        if self.prefect_api_url or self.prefect_home_env is not None:
            return {}
        if _profile_api_url(Path.home() / ".prefect" / "profiles.toml", self.prefect_profile):
            return {}
        return {"PREFECT_HOME": str(self.own_prefect_home)}

    def prefect_database(self, environment: dict[str, str]) -> Path | None:
        """The SQLite file the embedded Prefect API will open with `environment` applied, or None when it
        will use a server or a database URL the user configured."""
        if self.prefect_api_url or self.prefect_database_url:
            return None
        home = environment.get("PREFECT_HOME")
        if home is not None:
            return Path(home) / "prefect.db"
        return None if self.prefect_home_env is None else self.prefect_home_env / "prefect.db"

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


def _profile_api_url(profiles: Path, chosen: str | None) -> str | None:
    """PREFECT_API_URL of the active profile in a Prefect profiles.toml (`prefect config set` writes it there),
    or None; an unreadable file counts as none."""
    import tomllib

    try:
        data = tomllib.loads(profiles.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    name = chosen or data.get("active")
    profile = (data.get("profiles") or {}).get(name) if isinstance(name, str) else None
    value = profile.get("PREFECT_API_URL") if isinstance(profile, dict) else None
    return value if isinstance(value, str) and value else None


def current_settings() -> Settings:
    """The settings of the environment as it is now."""
    return Settings()
