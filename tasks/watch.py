"""Stage tasks of `watch_releases`: read the Hub, remember what was seen, start releases."""

from __future__ import annotations

from prefect import task
from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment
from prefect.exceptions import ObjectNotFound
from prefect.tasks import exponential_backoff
from prefect.variables import Variable

from trtllm_oci.errors import InputError
from trtllm_oci.release.watch import (
    NewRevision,
    WatchedModel,
    WatchState,
    new_revisions,
    release_spec_for,
    variable_name,
)
from trtllm_oci.settings import current_settings
from trtllm_oci.tasks.common import hf_token, retry_if_transient, run_logger


class DeploymentNotFoundError(InputError, LookupError):
    """The deployment the watcher should start is not registered on the Prefect server."""


@task(name="check-release-deployment", task_run_name="check-{deployment}", timeout_seconds=60)
def check_release_deployment(deployment: str) -> str:
    """The deployment's id; fails on the first look, not when a release comes out, if the name is wrong."""
    with get_client(sync_client=True) as client:
        try:
            return str(client.read_deployment_by_name(deployment).id)
        except ObjectNotFound:
            raise DeploymentNotFoundError(
                f"deployment {deployment!r} (flow/deployment) is not registered on the Prefect server; register it "
                f"with `prefect deploy --name {deployment.split('/')[-1]}` or pass the watcher's `deployment` "
                f"parameter as the name `prefect deployment ls` shows"
            ) from None


@task(
    name="find-new-revisions",
    task_run_name="watch-{model.hf_repo}",
    retries=3,
    retry_delay_seconds=exponential_backoff(backoff_factor=5),
    retry_jitter_factor=0.5,
    retry_condition_fn=retry_if_transient,
    timeout_seconds=300,
)
def find_new_revisions(model: WatchedModel) -> tuple[list[NewRevision], WatchState]:
    """New revisions since the last look, and the state to remember once their releases have started."""
    from huggingface_hub import HfApi

    settings = current_settings()
    api = HfApi(endpoint=settings.hf_endpoint, token=hf_token(settings))
    branch_sha = api.model_info(model.hf_repo, revision=model.branch).sha if model.branch else None
    tags = {}
    if model.tag_pattern:
        tags = {t.name: t.target_commit for t in api.list_repo_refs(model.hf_repo).tags}
    name = variable_name(model.hf_repo)
    stored = Variable.get(name, default=None)
    state = WatchState.model_validate(stored) if stored else None
    found, new_state = new_revisions(model, state, branch_sha, tags)
    run_logger().info("%s: %d new revision(s) %s", model.hf_repo, len(found), [f"{r.ref}@{r.sha[:12]}" for r in found])
    return found, new_state


@task(name="remember-revisions", task_run_name="remember-{model.hf_repo}", timeout_seconds=60)
def remember_revisions(model: WatchedModel, state: WatchState) -> None:
    """Written only after every release of the look has started: a failed start is retried by the next look
    (the idempotency key keeps the ones that did start from starting twice)."""
    Variable.set(variable_name(model.hf_repo), state.model_dump(), overwrite=True)


@task(name="start-release", task_run_name="start-release-{revision.hf_repo}@{revision.ref}", timeout_seconds=120)
def start_release(model: WatchedModel, revision: NewRevision, deployment: str) -> str:
    """Start `release` for one revision; the idempotency key makes a second start of the same sha a no-op."""
    spec = release_spec_for(model, revision)
    run = run_deployment(
        name=deployment,
        parameters={"spec": spec.model_dump(mode="json")},
        idempotency_key=revision.idempotency_key,
        timeout=0,
        as_subflow=False,
        tags=["trtllm-oci", f"model:{revision.hf_repo}"],
    )
    run_logger().info("release of %s@%s: flow run %s", revision.hf_repo, revision.sha[:12], run.id)
    return str(run.id)
