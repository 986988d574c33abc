"""Flow `watch_releases`: start `release` once for each new revision of the watched models."""

from __future__ import annotations

from prefect import flow
from trtllm_oci.tasks.watch import find_new_revisions, start_release

from trtllm_oci.watch import WatchedModel


@flow(name="watch_releases", flow_run_name="watch-{deployment}")
def watch_releases(models: list[WatchedModel], deployment: str = "release/release") -> list[str]:
    started: list[str] = []
    for model in models:
        for revision in find_new_revisions(model):
            started.append(start_release(model, revision, deployment))
    return started
