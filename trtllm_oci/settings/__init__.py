"""The environment, read in one place (this package), and every path derived from it.

Only this package reads the process environment (the libraries we drive read their own: huggingface_hub
its HF_HUB_* variables, the oci SDK its OCI_* ones, Prefect its PREFECT_* ones; it reads the few
PREFECT_* ones that decide whose Prefect state the CLI uses, see `prefect_environment`). Callers ask for a
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
        prefect/                the CLI's and the demo's own Prefect home (database, results), unless the
                                user names a Prefect server or home of their own
    <engine cache>/../baselines the quality gate's source scores (one JSON per source commit, task set, harness)

`Settings` (in `environment`, read by pydantic-settings) loads when first asked for: importing
pydantic-settings took ~45 ms of `trtllm-oci plan`'s start-up, and plan on a local config.json needs only
$TRTLLM_OCI_SHAPES, which `shape_catalog_path` reads without it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trtllm_oci.settings.environment import Settings, current_settings

__all__ = ["SHAPES_ENV", "Settings", "current_settings", "shape_catalog_path"]

SHAPES_ENV = "TRTLLM_OCI_SHAPES"


def shape_catalog_path() -> Path | None:
    """$TRTLLM_OCI_SHAPES (another GPU shape catalog YAML), read as `Settings` reads its path fields: the name
    in any case, the value a path with ~ expanded, an empty value kept (tests/foundation check the two agree)."""
    value = None
    for name, text in os.environ.items():  # the last of several spellings wins, as in pydantic-settings
        if name.lower() == SHAPES_ENV.lower():
            value = text
    return None if value is None else Path(value).expanduser()


def __getattr__(name: str) -> Any:
    if name in ("Settings", "current_settings"):
        from trtllm_oci.settings import environment

        return getattr(environment, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
