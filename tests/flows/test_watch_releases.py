"""The release watcher: which revisions are new (pure), and the flow against the Hub stand-in and a real server.

The flow runs in-process against the session's `prefect server start`, reads the Hub stand-in through
HF_ENDPOINT, keeps its state in Prefect Variables and starts runs of prefect.yaml's release/release deployment
(registered by `prefect deploy --all`; the runs stay Scheduled, no worker takes them).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import huggingface_hub.constants
import pytest

from tests.flows.prefect_env import Deployed, delete_flow_runs
from tests.standins.hf_hub import HfHubStandIn, StandInRepo
from trtllm_oci.release.watch import NewRevision, WatchedModel, WatchState, new_revisions, variable_name

A, B, C, D = ("a" * 40, "b" * 40, "c" * 40, "d" * 40)
REPO = "acme/llm"


def _rev(sha: str, ref: str, kind: str) -> NewRevision:
    return NewRevision(hf_repo=REPO, sha=sha, ref=ref, kind=kind)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------- pure logic

NEW_REVISION_CASES = [
    # (id, branch, tag_pattern, state, branch_sha, tags, expected found, expected state)
    ("first look releases the branch head only", "main", "v*", None, A, {"v1": B},
     [_rev(A, "main", "branch")], WatchState(branch_sha=A, tags={"v1": B})),
    ("nothing changed", "main", "v*", WatchState(branch_sha=A, tags={"v1": B}), A, {"v1": B},
     [], WatchState(branch_sha=A, tags={"v1": B})),
    ("branch moved", "main", None, WatchState(branch_sha=A), B, {},
     [_rev(B, "main", "branch")], WatchState(branch_sha=B)),
    ("new matching tag", "main", "v*", WatchState(branch_sha=A, tags={"v1": B}), A, {"v1": B, "v2": C},
     [_rev(C, "v2", "tag")], WatchState(branch_sha=A, tags={"v1": B, "v2": C})),
    ("non-matching tag is neither released nor remembered", "main", "v*", WatchState(branch_sha=A), A,
     {"nightly": C}, [], WatchState(branch_sha=A)),
    ("tag moved to another commit", None, "v*", WatchState(tags={"v1": B}), None, {"v1": C},
     [_rev(C, "v1", "tag")], WatchState(tags={"v1": C})),
    ("new tag on the new branch head is one release", "main", "v*", WatchState(branch_sha=A), B, {"v2": B},
     [_rev(B, "main", "branch")], WatchState(branch_sha=B, tags={"v2": B})),
    ("two new tags, in name order", "main", "v*", WatchState(branch_sha=A), A, {"v3": D, "v2": C},
     [_rev(C, "v2", "tag"), _rev(D, "v3", "tag")], WatchState(branch_sha=A, tags={"v2": C, "v3": D})),
    ("two new tags on one commit are one release", None, "v*", WatchState(), None, {"v2": C, "v2.0": C},
     [_rev(C, "v2", "tag")], WatchState(tags={"v2": C, "v2.0": C})),
    ("tags only: first look records them", None, "v*", None, None, {"v1": B}, [], WatchState(tags={"v1": B})),
    ("deleted tag is forgotten, not released", "main", "v*", WatchState(branch_sha=A, tags={"v1": B}), A, {},
     [], WatchState(branch_sha=A)),
    ("glob is case-sensitive", "main", "v*", WatchState(branch_sha=A), A, {"V2": C}, [], WatchState(branch_sha=A)),
    ("branch ignored when not watched", None, None, WatchState(), A, {}, [], WatchState()),
]


@pytest.mark.parametrize(("branch", "tag_pattern", "state", "branch_sha", "tags", "found", "new_state"),
                         [c[1:] for c in NEW_REVISION_CASES], ids=[c[0] for c in NEW_REVISION_CASES])
def test_new_revisions(branch: str | None, tag_pattern: str | None, state: WatchState | None,
                       branch_sha: str | None, tags: dict[str, str], found: list[NewRevision],
                       new_state: WatchState) -> None:
    model = WatchedModel(hf_repo=REPO, branch=branch, tag_pattern=tag_pattern)
    got, got_state = new_revisions(model, state, branch_sha, tags)
    assert got == found
    assert got_state == new_state


def test_idempotency_key_is_per_repo_and_commit_not_per_ref() -> None:
    assert _rev(A, "main", "branch").idempotency_key == _rev(A, "v1", "tag").idempotency_key
    assert _rev(A, "main", "branch").idempotency_key != _rev(B, "main", "branch").idempotency_key
    other = NewRevision(hf_repo="acme/other", sha=A, ref="main", kind="branch")
    assert other.idempotency_key != _rev(A, "main", "branch").idempotency_key


def test_variable_names_are_valid_and_distinct() -> None:
    import re

    names = {variable_name(r) for r in ("Acme/LLM", "acme/llm", "acme/l.l.m", "acme/l-l-m", "x/" + "y" * 300)}
    assert len(names) == 5
    assert all(re.fullmatch(r"[a-z0-9_-]{1,255}", n) for n in names)


def test_watched_model_rejects_unknown_fields() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="tag_glob"):
        WatchedModel(hf_repo=REPO, tag_glob="v*")  # type: ignore[call-arg]


# ------------------------------------------------------------------------------- flow against a real server


@pytest.fixture(scope="module")
def hub() -> Iterator[HfHubStandIn]:
    with HfHubStandIn() as standin:
        yield standin


@pytest.fixture
def watcher_env(monkeypatch: pytest.MonkeyPatch, hub: HfHubStandIn, deployed: Deployed) -> Iterator[list[Any]]:
    """Hub stand-in as HF_ENDPOINT, online; yields a list collecting release runs to delete afterwards."""
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    # tests/conftest.py sets HF_HUB_OFFLINE=1 so nothing reaches the real Hub; huggingface_hub reads it at import.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    created: list[Any] = []
    yield created
    delete_flow_runs(created)


def _new_repo(hub: HfHubStandIn, head: str, tags: dict[str, str] | None = None) -> str:
    repo_id = f"acme/watched-{uuid.uuid4().hex[:8]}"
    commits = {sha: {"config.json": f'{{"commit": "{sha}"}}'.encode()} for sha in {head, *(tags or {}).values()}}
    hub.add_repo(StandInRepo(repo_id, commits, refs={"main": head, **(tags or {})}, tags=set(tags or ())))
    return repo_id


def _files(sha: str) -> dict[str, bytes]:
    return {"config.json": f'{{"commit": "{sha}"}}'.encode()}


def _release_runs(deployed: Deployed, hf_repo: str) -> list[Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterTags,
    )

    with get_client(sync_client=True) as client:
        return client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployed.ids["release/release"]])),
            flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[f"model:{hf_repo}"])),
        )


def _revisions(deployed: Deployed, hf_repo: str, created: list[Any]) -> list[str]:
    runs = _release_runs(deployed, hf_repo)
    created.extend(r.id for r in runs)
    assert all(r.parameters["spec"]["model"]["hf_repo"] == hf_repo for r in runs)
    return sorted(r.parameters["spec"]["model"]["revision"] for r in runs)


def _watch(*models: WatchedModel, deployment: str = "release/release") -> list[str]:
    from trtllm_oci.flows.watch_releases import watch_releases

    return watch_releases(models=list(models), deployment=deployment)


@pytest.mark.prefect
def test_branch_head_is_released_once_per_new_commit(deployed: Deployed, hub: HfHubStandIn,
                                                     watcher_env: list[Any]) -> None:
    repo = _new_repo(hub, A)
    model = WatchedModel(hf_repo=repo, release={"quantization": {"method": "fp8"}})

    first = _watch(model)
    assert len(first) == 1
    assert _revisions(deployed, repo, watcher_env) == [A]
    (run,) = _release_runs(deployed, repo)
    assert str(run.id) == first[0]
    # The watched model's release settings ride along; the model part is the repo at the exact commit.
    assert run.parameters["spec"]["quantization"]["method"] == "fp8"
    assert run.parameters["spec"]["model"] == {"hf_repo": repo, "revision": A, "local_dir": None}

    assert _watch(model) == []
    assert _revisions(deployed, repo, watcher_env) == [A]

    hub.move_ref(repo, "main", B, _files(B))
    second = _watch(model)
    assert len(second) == 1 and second != first
    assert _revisions(deployed, repo, watcher_env) == [A, B]


@pytest.mark.prefect
def test_new_matching_tag_is_released_and_existing_tags_are_not(deployed: Deployed, hub: HfHubStandIn,
                                                               watcher_env: list[Any]) -> None:
    repo = _new_repo(hub, A, tags={"v1.0": B})
    model = WatchedModel(hf_repo=repo, tag_pattern="v*")

    assert len(_watch(model)) == 1
    assert _revisions(deployed, repo, watcher_env) == [A]  # the branch head; v1.0 predates the watch

    hub.move_ref(repo, "v2.0", C, _files(C), tag=True)
    hub.move_ref(repo, "nightly-2", D, _files(D), tag=True)
    assert len(_watch(model)) == 1
    assert _revisions(deployed, repo, watcher_env) == [A, C]

    # A new tag on a commit that was already released starts nothing new (same idempotency key).
    hub.move_ref(repo, "v2.0-final", C, tag=True)
    _watch(model)
    assert _revisions(deployed, repo, watcher_env) == [A, C]


@pytest.mark.prefect
def test_overlapping_watchers_start_one_release(deployed: Deployed, hub: HfHubStandIn,
                                                watcher_env: list[Any]) -> None:
    from prefect.variables import Variable

    repo = _new_repo(hub, A)
    model = WatchedModel(hf_repo=repo)
    _watch(model)
    hub.move_ref(repo, "main", B, _files(B))
    state_both_read = Variable.get(variable_name(repo))

    first = _watch(model)
    # The second watcher read the state before the first one wrote it, so it sees B as new as well.
    Variable.set(variable_name(repo), state_both_read, overwrite=True)
    second = _watch(model)

    assert len(first) == 1
    assert second == first
    assert _revisions(deployed, repo, watcher_env) == [A, B]


@pytest.mark.prefect
def test_revision_whose_release_could_not_start_is_started_by_the_next_look(deployed: Deployed, hub: HfHubStandIn,
                                                                           watcher_env: list[Any]) -> None:
    from trtllm_oci.flows.watch_releases import watch_releases

    repo = _new_repo(hub, A)
    misconfigured = WatchedModel(hf_repo=repo, release={"quantization": {"method": "int3"}})
    state = watch_releases(models=[misconfigured], return_state=True)
    assert state.is_failed()
    with pytest.raises(Exception, match="int3"):
        state.result()
    assert _revisions(deployed, repo, watcher_env) == []

    # Once the watch list is fixed, the next look still sees the commit as new.
    assert len(_watch(WatchedModel(hf_repo=repo))) == 1
    assert _revisions(deployed, repo, watcher_env) == [A]


@pytest.mark.prefect
def test_unknown_deployment_fails_before_the_hub_is_asked(deployed: Deployed, hub: HfHubStandIn,
                                                          watcher_env: list[Any]) -> None:
    from prefect.variables import Variable

    from trtllm_oci.flows.watch_releases import watch_releases
    from trtllm_oci.tasks.watch import DeploymentNotFoundError

    repo = _new_repo(hub, A)
    state = watch_releases(models=[WatchedModel(hf_repo=repo)], deployment="release/relaese", return_state=True)
    assert state.is_failed()
    with pytest.raises(DeploymentNotFoundError, match=r"'release/relaese'.*prefect deploy --name relaese"):
        state.result()
    assert hub.requests_matching(f"/api/models/{repo}") == []
    assert Variable.get(variable_name(repo)) is None


@pytest.mark.prefect
def test_unknown_repo_fails_the_watch_naming_the_repo(deployed: Deployed, hub: HfHubStandIn,
                                                     watcher_env: list[Any]) -> None:
    from prefect.variables import Variable

    from trtllm_oci.flows.watch_releases import watch_releases

    missing = f"acme/missing-{uuid.uuid4().hex[:8]}"
    state = watch_releases(models=[WatchedModel(hf_repo=missing)], return_state=True)
    assert state.is_failed()
    with pytest.raises(Exception, match=missing):
        state.result()
    assert Variable.get(variable_name(missing)) is None
    assert len(hub.requests_matching(f"/api/models/{missing}")) == 1  # a missing repo is not retried
