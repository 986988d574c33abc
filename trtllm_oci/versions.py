"""The TensorRT-LLM version table: which image serves each version and how its CLI is spelled.

Data lives in trtllm_oci/data/trtllm_versions.yaml (with the upstream file each fact was checked in);
this module only loads and validates it.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Literal, cast

from pydantic import BaseModel, ConfigDict, Field, model_validator

from trtllm_oci.errors import InputError
from trtllm_oci.yaml_input import load_table

QuantizationName = Literal["none", "fp8", "int8_sq", "int4_awq", "w4a8_awq", "int8_wo", "int4_wo"]
KvCacheDtypeName = Literal["auto", "fp8", "int8"]
FamilyName = Literal["llama", "mistral", "mixtral", "falcon", "qwen2"]


class UnsupportedVersionError(InputError):
    """A TensorRT-LLM version that is not in the version table."""


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScriptFlags(_Frozen):
    """One upstream CLI (an examples script or trtllm-build) and the flags our builders may pass to it."""

    path: str = Field(description="Path inside the TensorRT-LLM checkout, or the console-script name")
    checked_in: str = Field(description="Upstream file (repo:path@ref) the flags were checked against")
    flags: tuple[str, ...]
    kv_cache_flags: dict[Literal["int8", "fp8"], str] = Field(default_factory=dict)
    qformats: tuple[str, ...] = ()
    plugin_choices: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _kv_flags_are_listed(self) -> ScriptFlags:
        missing = [f for f in self.kv_cache_flags.values() if f not in self.flags]
        if missing:
            raise InputError(f"{self.path}: kv_cache_flags {missing} are not in its flags list")
        return self


class FamilySupport(_Frozen):
    script: str
    engine_name: str | None = Field(
        default=None, description="Legacy build.py MODEL_NAME, used in engine file names"
    )
    quantizations: tuple[QuantizationName, ...]
    kv_cache_dtypes: tuple[KvCacheDtypeName, ...]


class KvCacheLayout(_Frozen):
    flag: str
    value: str


class SourceArchive(_Frozen):
    """A version's source tarball and the sha256 it must have."""

    url: str = Field(description="https://github.com/NVIDIA/TensorRT-LLM/archive/refs/tags/<tag>.tar.gz")
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$", description="None: not yet verified")


class TritonImageRange(_Frozen):
    """First and last Triton release (yy.mm) whose -trtllm-python-py3 image ships this TensorRT-LLM version."""

    first: str = Field(pattern=r"^\d{2}\.\d{2}$")
    last: str = Field(pattern=r"^\d{2}\.\d{2}$")


class PytorchBackendSupport(_Frozen):
    """The LLM-API (PyTorch backend) side of a version; its option lists are in data/llm_api.json."""

    release_image: str = Field(description="trtllm-serve image, nvcr.io/nvidia/tensorrt-llm/release:<version>")
    release_image_evidence: str
    llmapi_triton_images: TritonImageRange = Field(
        description="Triton images that ship this version and its llmapi model under /app/all_models/llmapi"
    )
    llmapi_evidence: str


class TrtllmVersion(_Frozen):
    version: str
    source_tag: str
    source_commit: str | None = None
    serving_image: str
    image_evidence: str
    triton_images: TritonImageRange
    tensorrt_version: str | None = Field(description="TensorRT of the serving image; None where no matrix row says")
    source_archive: SourceArchive | None = None
    release_image: str | None = Field(default=None, description="TensorRT-LLM release image shipping examples/")
    dialect: Literal["legacy_build_py", "convert_then_build"]
    engine_naming: Literal["legacy", "rank"]
    gpu_archs: tuple[str, ...]
    dtypes: tuple[str, ...]
    build_applies_tp_pp: bool = False
    max_length_flag: str | None = None
    kv_cache_layout: KvCacheLayout | None = None
    families: dict[FamilyName, FamilySupport]
    scripts: dict[str, ScriptFlags]
    # Engines (trtllm-build, the Triton C++ backend) exist up to 1.2.1; upstream deleted them after it.
    engine_path: bool = True
    pytorch: PytorchBackendSupport | None = None

    @model_validator(mode="after")
    def _consistent(self) -> TrtllmVersion:
        if not self.triton_images.first <= self.serving_release <= self.triton_images.last:
            raise ValueError(
                f"{self.version}: serving_image {self.serving_image} is outside its triton_images range "
                f"{self.triton_images.first}..{self.triton_images.last}"
            )
        for family, support in self.families.items():
            if support.script not in self.scripts:
                raise InputError(f"{self.version}: family {family} names unknown script {support.script!r}")
            if self.engine_naming == "legacy" and not support.engine_name:
                raise InputError(f"{self.version}: legacy engine naming needs engine_name for {family}")
        if self.dialect == "convert_then_build":
            for needed in ("trtllm_build", "quantize"):
                if needed not in self.scripts:
                    raise InputError(f"{self.version}: convert_then_build needs a {needed!r} script entry")
            build_flags = self.scripts["trtllm_build"].flags
            for flag in (self.max_length_flag, self.kv_cache_layout.flag if self.kv_cache_layout else None):
                if flag is None or flag not in build_flags:
                    raise InputError(
                        f"{self.version}: trtllm-build flag {flag!r} missing from its flags list"
                    )
        return self

    def family(self, name: str) -> FamilySupport:
        """The support entry of a model family (a key of `families`); KeyError for one the version lacks."""
        return self.families[cast(FamilyName, name)]

    @property
    def image_tag(self) -> str:
        return self.serving_image.rsplit(":", 1)[1]

    @property
    def serving_release(self) -> str:
        """The Triton release (yy.mm) of serving_image."""
        return self.image_tag.split("-", 1)[0]

    def script(self, key: str) -> ScriptFlags:
        return self.scripts[key]


class VersionTable(_Frozen):
    default_version: str
    static_batching_until: str = Field(description="Newest TensorRT-LLM whose backend serves gpt_model_type V1")
    versions: tuple[TrtllmVersion, ...]

    @model_validator(mode="after")
    def _default_is_listed(self) -> VersionTable:
        names = [v.version for v in self.versions]
        if len(set(names)) != len(names):
            raise InputError(f"duplicate versions in table: {names}")
        if self.default_version not in names:
            raise InputError(f"default_version {self.default_version} is not one of {names}")
        return self


@lru_cache(maxsize=1)
def load_version_table() -> VersionTable:
    text = resources.files("trtllm_oci.data").joinpath("trtllm_versions.yaml").read_text(encoding="utf-8")
    return VersionTable.model_validate(load_table(text))


def supported_versions() -> list[str]:
    return [v.version for v in load_version_table().versions]


def get_version(version: str) -> TrtllmVersion:
    """The table entry for `version` (a leading "v" is accepted)."""
    wanted = version.strip().removeprefix("v")
    for entry in load_version_table().versions:
        if entry.version == wanted:
            return entry
    raise UnsupportedVersionError(
        f"TensorRT-LLM version {version!r} is not supported; choose one of {supported_versions()} "
        f"(default {DEFAULT_TRTLLM_VERSION}), or add it to trtllm_oci/data/trtllm_versions.yaml with its "
        "serving image and CLI flags checked against that tag's sources."
    )


DEFAULT_TRTLLM_VERSION: str = load_version_table().default_version
