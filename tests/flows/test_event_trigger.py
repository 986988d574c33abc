"""The `model.released` event starts a release through the trigger prefect.yaml declares (server automations)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.flows.prefect_env import Deployed, delete_flow_runs

pytestmark = pytest.mark.prefect

# The triggers service reacts in about 10 s (shared/reference/prefect.md); CI shares 2 cores.
TRIGGER_TIMEOUT_S = 120


def _release_runs(deployment_id: Any) -> list[Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    with get_client(sync_client=True) as client:
        return client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])))


def _runs_for(deployment_id: Any, hf_repo: str) -> list[Any]:
    return [r for r in _release_runs(deployment_id)
            if r.parameters.get("spec", {}).get("model", {}).get("hf_repo") == hf_repo]


@pytest.fixture
def created_runs(deployed: Deployed) -> Iterator[list[Any]]:
    """Runs the trigger creates; deleted afterwards so no worker of a later test executes a release."""
    ids: list[Any] = []
    yield ids
    delete_flow_runs(ids)


def test_model_released_event_creates_one_release_run_with_the_payload(deployed: Deployed,
                                                                      created_runs: list[Any]) -> None:
    from prefect.client.schemas.objects import StateType
    from prefect.events import emit_event
    from prefect.events.worker import EventsWorker

    release_id = deployed.ids["release/release"]
    suffix = uuid.uuid4().hex[:8]
    hf_repo = f"acme/released-{suffix}"
    other_repo = f"acme/not-a-model-{suffix}"
    revision = uuid.uuid4().hex + "abcdef12"

    # Emitted first and processed in order: a resource outside `hf.model.*` must start nothing.
    emit_event("model.released", resource={"prefect.resource.id": f"dataset.{other_repo}"},
               payload={"hf_repo": other_repo, "revision": "main"})
    # Another event name on a matching resource starts nothing either.
    emit_event("model.deleted", resource={"prefect.resource.id": f"hf.model.{other_repo}"},
               payload={"hf_repo": other_repo, "revision": "main"})
    emit_event("model.released", resource={"prefect.resource.id": f"hf.model.{hf_repo}"},
               payload={"hf_repo": hf_repo, "revision": revision})
    EventsWorker.drain_all()

    deadline = time.monotonic() + TRIGGER_TIMEOUT_S
    runs: list[Any] = []
    while not runs and time.monotonic() < deadline:
        time.sleep(1)
        runs = _runs_for(release_id, hf_repo)
    created_runs.extend(r.id for r in _runs_for(release_id, hf_repo) + _runs_for(release_id, other_repo))
    assert runs, (f"no release run for {hf_repo} within {TRIGGER_TIMEOUT_S} s of the event\n"
                  f"server log:\n{deployed.server.log_tail()}")
    time.sleep(2)  # a duplicate would come from the same event batch
    runs = _runs_for(release_id, hf_repo)
    assert len(runs) == 1
    (run,) = runs
    assert run.parameters["spec"]["model"] == {"hf_repo": hf_repo, "revision": revision}
    assert run.state is not None and run.state.type == StateType.SCHEDULED
    assert run.deployment_id == release_id
    assert _runs_for(release_id, other_repo) == []


def test_served_release_uses_the_trigger_prefect_deploy_registered(deployed: Deployed) -> None:
    """deployments/serve.py reads the trigger from prefect.yaml: compare it with the server's automation."""
    from prefect.client.orchestration import get_client

    from deployments.serve import triggers_from_prefect_yaml

    (served,) = triggers_from_prefect_yaml("release")
    with get_client(sync_client=True) as client:
        (automation,) = client.read_automations_by_name("release__automation_1")
    registered = automation.trigger
    assert served.expect == registered.expect == {"model.released"}
    assert dict(served.match.items()) == dict(registered.match.items())
    assert (served.posture, served.threshold, served.within) == (registered.posture, registered.threshold,
                                                                registered.within)
    (action,) = automation.actions
    assert served.parameters == action.parameters


def test_served_triggers_name_a_missing_deployment() -> None:
    from deployments.serve import triggers_from_prefect_yaml

    with pytest.raises(KeyError, match=r"'relase'.*'release'"):
        triggers_from_prefect_yaml("relase")
