"""The OCI GPU shape catalog, loaded from data (trtllm_oci/data/gpu_shapes.yaml).

Set TRTLLM_OCI_SHAPES to another YAML file of the same form to change prices or add shapes
without touching code.
"""

from __future__ import annotations

import difflib
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from trtllm_oci.errors import InputError, UnknownShapeError
from trtllm_oci.settings import SHAPES_ENV, shape_catalog_path
from trtllm_oci.yaml_input import load_table, load_user_yaml

FP8_MIN_COMPUTE_CAPABILITY = (8, 9)
# BF16 tensor cores arrived with Ampere; a V100 (SM 7.0) has none, so TensorRT has no bf16 kernels for it.
BF16_MIN_COMPUTE_CAPABILITY = (8, 0)
# What a shape with no price in the catalog shows wherever a price or a cost is printed.
UNKNOWN_PRICE = "–"
# OCI image-spec architecture names: the serving image must hold a manifest for the host's one.
HostArch = Literal["amd64", "arm64"]


class Gpu(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    memory_gib: float = Field(gt=0)
    memory_bandwidth_gbs: float = Field(gt=0)
    compute_capability: str = Field(pattern=r"^\d+\.\d+$", description="SM version, e.g. 8.6")
    fp16_tflops: float = Field(gt=0)

    @property
    def sm(self) -> tuple[int, int]:
        major, minor = self.compute_capability.split(".")
        return int(major), int(minor)

    @property
    def arch(self) -> str:
        """TensorRT's name for the architecture, e.g. sm90; engines only run on the arch they were built for."""
        major, minor = self.sm
        return f"sm{major}{minor}"

    @property
    def supports_fp8(self) -> bool:
        return self.sm >= FP8_MIN_COMPUTE_CAPABILITY


class Shape(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    gpu: Gpu
    gpu_count: int = Field(ge=1)
    price_per_hour_usd: float | None = Field(
        default=None, ge=0, description="whole shape, USD/hour; absent where no source gives one (cost unknown)")
    price_source: str = Field(description="where the price comes from, or why there is none")
    price_date: str | None = None
    host_arch: HostArch = Field(default="amd64", description="CPU architecture of the host the container runs on")
    service_limit_name: str | None = Field(
        default=None, pattern=r"^[a-z0-9][a-z0-9-]*$",
        description="Data Science service limit that counts this shape's GPUs; only names an Oracle source gives")

    @model_validator(mode="after")
    def _dated_price(self) -> Shape:
        if self.price_per_hour_usd is not None and not self.price_date:
            raise ValueError(f"price_per_hour_usd {self.price_per_hour_usd} needs price_date (when it was read)")
        return self

    @property
    def total_memory_gib(self) -> float:
        return self.gpu.memory_gib * self.gpu_count

    @property
    def price_text(self) -> str:
        return price_text(self.price_per_hour_usd)


class ShapeCatalog(BaseModel):
    model_config = ConfigDict(frozen=True)

    shapes: dict[str, Shape]
    source: str

    def get(self, name: str) -> Shape:
        if name in self.shapes:
            return self.shapes[name]
        by_lower = {k.lower(): k for k in self.shapes}
        if name.lower() in by_lower:
            return self.shapes[by_lower[name.lower()]]
        close = difflib.get_close_matches(name, list(self.shapes), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise UnknownShapeError(
            f"unknown shape {name!r}.{hint} Known shapes: {', '.join(sorted(self.shapes))} "
            f"(catalog: {self.source}; add a shape there to use it)."
        )

    def names(self) -> list[str]:
        return sorted(self.shapes)


def price_text(price: float | None) -> str:
    """A shape's hourly price as printed, or the unknown mark for a shape the catalog has no price for."""
    return UNKNOWN_PRICE if price is None else f"${price:.2f}/h"


def price_order(price: float | None) -> tuple[bool, float]:
    """Sort key for prices: cheapest first, an unknown price after every known one."""
    return (price is None, price or 0.0)


class _CatalogFile(BaseModel):
    """The file's form: checked before the shapes are built so an error names the entry, not a traceback."""

    model_config = ConfigDict(extra="forbid")

    gpus: dict[str, dict[str, Any]]
    shapes: dict[str, dict[str, Any]]


def _parse_catalog(raw: object, source: str) -> ShapeCatalog:
    fix = f"compare it with the packaged trtllm_oci/data/gpu_shapes.yaml, or unset {SHAPES_ENV}"
    where = ""
    try:
        if not isinstance(raw, dict):
            raise InputError(f"shape catalog {source} must be a mapping with 'gpus' and 'shapes'; {fix}")
        form = _CatalogFile.model_validate(raw)
        gpus: dict[str, Gpu] = {}
        for name, spec in form.gpus.items():
            where = f"gpus.{name}."
            gpus[name] = Gpu.model_validate({**spec, "name": name})
        shapes: dict[str, Shape] = {}
        for name, spec in form.shapes.items():
            where = f"shapes.{name}."
            spec = dict(spec)
            gpu_name = spec.pop("gpu", None)
            if gpu_name not in gpus:
                raise UnknownShapeError(
                    f"shape {name!r} in {source} names GPU {gpu_name!r}, which the catalog's gpus section "
                    f"does not define (defined: {', '.join(sorted(gpus))})."
                )
            shapes[name] = Shape.model_validate({**spec, "name": name, "gpu": gpus[gpu_name]})
    except ValidationError as exc:
        first = exc.errors()[0]
        field = where + ".".join(str(p) for p in first["loc"])
        raise InputError(f"shape catalog {source}: {field.rstrip('.') or '<top level>'}: {first['msg']} "
                         f"({exc.error_count()} problem(s) there); {fix}") from None
    if not shapes:
        raise InputError(f"shape catalog {source} lists no shapes; {fix}")
    return ShapeCatalog(shapes=shapes, source=source)


@lru_cache(maxsize=4)
def _load(path: str | None) -> ShapeCatalog:
    if path:
        raw = load_user_yaml(Path(path), f"shape catalog ({SHAPES_ENV})",
                             missing_fix=f"point {SHAPES_ENV} at a YAML file like trtllm_oci/data/gpu_shapes.yaml, "
                                         "or unset it")
        source = path
    else:
        raw = load_table(resources.files("trtllm_oci.data").joinpath("gpu_shapes.yaml").read_text())
        source = "trtllm_oci/data/gpu_shapes.yaml"
    return _parse_catalog(raw, source)


def load_catalog(path: str | Path | None = None) -> ShapeCatalog:
    """The catalog from `path`, else $TRTLLM_OCI_SHAPES, else the packaged one."""
    chosen = path or shape_catalog_path()
    return _load(str(chosen) if chosen else None)


def get_shape(name: str) -> Shape:
    return load_catalog().get(name)
