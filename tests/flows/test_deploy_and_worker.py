"""prefect.yaml deployed with `prefect deploy` to a real server, and a flow run executed by a process worker."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.flows.prefect_env import REPO_ROOT, Deployed, flow_run_ids_in, load_prefect_yaml, yaml_deployment
from trtllm_oci.spec import parse_spec
from trtllm_oci.tasks.plan import artifact_key

pytestmark = pytest.mark.prefect


def _read_deployment(name: str):
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_deployment_by_name(name)


def test_plan_deployment_runs_on_a_process_worker(deployed: Deployed, tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
    from prefect.client.schemas.objects import StateType

    model_dir = tmp_path / "llama-2-7b"
    model_dir.mkdir()
    shutil.copyfile(deployed.demo_model / "config.json", model_dir / "config.json")
    spec = {"model": {"local_dir": str(model_dir)}, "target": {"kind": "local", "gpu_shape": "VM.GPU.A10.1"}}
    out = deployed.server.cli("deployment", "run", "plan/plan", "--params", json.dumps({"spec": spec}))
    (run_id,) = flow_run_ids_in(out.stdout)

    # The worker runs somewhere else than the checkout: prefect.yaml's pull step must bring it to the project.
    worker_cwd = tmp_path / "worker-cwd"
    worker_cwd.mkdir()
    worker = deployed.server.cli("worker", "start", "--pool", "default-pool", "--run-once", cwd=worker_cwd,
                                 timeout=240)

    with get_client(sync_client=True) as client:
        run = client.read_flow_run(run_id)
        assert run.state is not None and run.state.type == StateType.COMPLETED, (
            f"plan run ended {run.state!r}\nworker output:\n{worker.stdout}\n{worker.stderr}")
        assert run.name == "plan-llama-2-7b-none-tp1pp1"
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[run.id])))
    key = artifact_key(f"plan-{parse_spec(spec).release_id}")
    by_key = {a.key: a for a in artifacts}
    assert by_key.keys() == {key, f"{key}-table"}
    markdown = by_key[key]
    assert markdown.type == "markdown"
    assert "LlamaForCausalLM fits on VM.GPU.A10.1" in markdown.data
    assert "| **total** |" in markdown.data
    table = by_key[f"{key}-table"]
    assert table.type == "table"
    rows = json.loads(table.data) if isinstance(table.data, str) else table.data
    weights = next(r for r in rows if r["item"] == "weights_gib")
    # 6.74e9 fp16 parameters of Llama-2-7b, about 12.6 GiB, on the one A10 of VM.GPU.A10.1
    assert 12.0 < weights["gib_per_gpu"] < 13.0


def test_parameters_the_schema_rejects_never_reach_a_worker(deployed: Deployed) -> None:
    """enforce_parameter_schema is on: the server refuses a spec that misses the required model."""
    with pytest.raises(AssertionError) as info:
        deployed.server.cli("deployment", "run", "plan/plan", "--params",
                            json.dumps({"spec": {"target": {"kind": "local"}}}))
    assert "model" in str(info.value)
    assert "Validation" in str(info.value) or "validation" in str(info.value)


def test_watch_releases_schedule_and_concurrency_come_from_prefect_yaml(deployed: Deployed) -> None:
    declared = yaml_deployment("watch-releases")
    dep = _read_deployment("watch_releases/watch-releases")
    assert [(s.schedule.cron, s.schedule.timezone, s.active) for s in dep.schedules] == [
        (s["cron"], s["timezone"], s["active"]) for s in declared["schedules"]]
    assert [s.schedule.cron for s in dep.schedules if s.active] == ["0 * * * *"]
    assert dep.global_concurrency_limit is not None
    assert dep.global_concurrency_limit.limit == declared["concurrency_limit"]["limit"] == 1
    assert dep.concurrency_options is not None
    assert dep.concurrency_options.collision_strategy.value == declared["concurrency_limit"]["collision_strategy"]
    assert dep.concurrency_options.collision_strategy.value == "CANCEL_NEW"
    assert dep.work_pool_name == "default-pool"
    assert dep.parameters == {"models": [], "deployment": "release/release"}


def test_build_engine_is_one_at_a_time_on_the_gpu_pool(deployed: Deployed) -> None:
    declared = yaml_deployment("build-engine")
    dep = _read_deployment("build_engine/build-engine")
    assert dep.global_concurrency_limit is not None and dep.global_concurrency_limit.limit == 1
    assert dep.concurrency_options is not None
    assert dep.concurrency_options.collision_strategy.value == declared["concurrency_limit"]["collision_strategy"]
    assert dep.concurrency_options.collision_strategy.value == "ENQUEUE"
    assert (dep.work_pool_name, dep.work_queue_name) == ("gpu-builds", "builds")
    assert dep.schedules == []


def test_release_trigger_is_registered_as_an_automation(deployed: Deployed) -> None:
    from prefect.client.orchestration import get_client

    declared = yaml_deployment("release")["triggers"]
    assert len(declared) == 1
    with get_client(sync_client=True) as client:
        automations = client.read_automations_by_name("release__automation_1")
    assert len(automations) == 1
    automation = automations[0]
    assert automation.enabled
    trigger = automation.trigger
    assert trigger.expect == set(declared[0]["expect"]) == {"model.released"}
    # The server stores each label's patterns as a list.
    assert dict(trigger.match.items()) == {k: [v] for k, v in declared[0]["match"].items()}
    assert dict(trigger.match.items()) == {"prefect.resource.id": ["hf.model.*"]}
    (action,) = automation.actions
    assert action.type == "run-deployment"
    assert action.deployment_id == deployed.ids["release/release"]
    assert action.parameters == declared[0]["parameters"]


def test_every_deployment_of_prefect_yaml_is_registered_with_pull_step_and_description(deployed: Deployed) -> None:
    """The pull step's directory is rendered at deploy time; an undocumented flow shows 'None' in the UI."""
    declared = {d["name"] for d in load_prefect_yaml()["deployments"]}
    assert {name.split("/", 1)[1] for name in deployed.ids} == declared
    for name in deployed.ids:
        dep = _read_deployment(name)
        assert dep.pull_steps == [
            {"prefect.deployments.steps.set_working_directory": {"directory": str(REPO_ROOT)}}]
        assert dep.description and dep.description != "None", f"{name} has no description"
        assert dep.enforce_parameter_schema
        assert "trtllm-oci" in dep.tags

