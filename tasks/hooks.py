"""State-change hooks: what a failed or crashed release leaves behind, and releasing it."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from trtllm_oci.tasks.common import run_logger


def release_failed(flow: Any, flow_run: Any, state: Any) -> None:
    """Remove the run's half-written scratch files and say what needs attention.

    Containers are removed by the runner and half-created cloud resources by `deploy` itself (it deletes
    what its own call created); whatever it could not delete carries the release tag, so the teardown flow
    finds it. The engine cache needs nothing: an entry only appears complete in one rename.
    """
    log = run_logger()
    params = flow_run.parameters or {}
    out_dir = params.get("out_dir")
    if out_dir:
        # A crash (not an exception) skips assemble's own clean-up of its sibling staging directory.
        for scratch in Path(out_dir).glob(".*.assembling-*"):
            shutil.rmtree(scratch, ignore_errors=True)
    spec = params.get("spec") or {}
    target = spec.get("target", {}) if isinstance(spec, dict) else {}
    hint = (
        " Any OCI resources a failed deploy could not delete carry the release's freeform tag: run the "
        "`teardown` flow with the same spec to remove them."
        if target.get("kind") == "oci"
        else ""
    )
    log.error("release run %s ended %s: %s.%s", flow_run.name, state.name, state.message, hint)
