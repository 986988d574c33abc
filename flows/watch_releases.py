"""Flow `watch_releases`: start `release` once for each new revision of the watched models."""

from __future__ import annotations

from prefect import flow

from trtllm_oci.release.watch import WatchedModel
from trtllm_oci.tasks.watch import (
    check_release_deployment,
    find_new_revisions,
    remember_revisions,
    start_release,
)


@flow(name="watch_releases", flow_run_name="watch-{deployment}")
def watch_releases(models: list[WatchedModel], deployment: str = "release/release") -> list[str]:
    """Start `deployment` once per new branch head or matching tag of each watched model; returns the run ids."""
    check_release_deployment(deployment)
    started: list[str] = []
    for model in models:
        found, seen = find_new_revisions(model)
        for revision in found:
            started.append(start_release(model, revision, deployment))
        remember_revisions(model, seen)
    return started
