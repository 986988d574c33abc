"""Serve every trtllm-oci flow from this one process, without work pools (single-host setups).

    python deployments/serve.py --watch models.yaml --cron "0 * * * *"

Runs until interrupted; on shutdown the deployments stay active (pause_on_shutdown=False) so a restarted
service picks up where it left off.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml
from prefect.events import DeploymentEventTrigger

PREFECT_YAML = Path(__file__).resolve().parents[1] / "prefect.yaml"


def triggers_from_prefect_yaml(deployment: str, path: Path = PREFECT_YAML) -> list[DeploymentEventTrigger]:
    """The triggers prefect.yaml declares for `deployment`, so the served and the deployed setups cannot drift."""
    declared = yaml.safe_load(path.read_text())["deployments"]
    for dep in declared:
        if dep["name"] == deployment:
            return [DeploymentEventTrigger(**{k: v for k, v in t.items() if k != "type"})
                    for t in dep.get("triggers", [])]
    raise KeyError(f"{path} declares no deployment named {deployment!r}; it has {[d['name'] for d in declared]}")


def main() -> None:
    # Imported here so that reading prefect.yaml's triggers does not need every flow's dependencies.
    from prefect import serve
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy

    from trtllm_oci.flows.assemble import assemble
    from trtllm_oci.flows.benchmark import benchmark
    from trtllm_oci.flows.build_engine import build_engine
    from trtllm_oci.flows.deploy import deploy
    from trtllm_oci.flows.plan import plan
    from trtllm_oci.flows.release import release
    from trtllm_oci.flows.teardown import teardown
    from trtllm_oci.flows.watch_releases import watch_releases
    from trtllm_oci.release.watch import WatchedModel

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--watch", type=Path, help="YAML list of watched models (WatchedModel fields)")
    parser.add_argument("--cron", default="0 * * * *", help="watch schedule (default: hourly)")
    parser.add_argument("--limit", type=int, default=4, help="flow runs at once in this process")
    args = parser.parse_args()

    watched = [WatchedModel.model_validate(m) for m in yaml.safe_load(args.watch.read_text())] if args.watch else []
    serve(
        release.to_deployment(name="release", triggers=triggers_from_prefect_yaml("release")),
        watch_releases.to_deployment(
            name="watch-releases", cron=args.cron, parameters={"models": [m.model_dump() for m in watched]},
            concurrency_limit=ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW),
        ),
        plan.to_deployment(name="plan"),
        build_engine.to_deployment(name="build-engine", concurrency_limit=1),
        assemble.to_deployment(name="assemble"),
        deploy.to_deployment(name="deploy"),
        benchmark.to_deployment(name="benchmark"),
        teardown.to_deployment(name="teardown"),
        limit=args.limit,
        pause_on_shutdown=False,
    )


if __name__ == "__main__":
    main()
