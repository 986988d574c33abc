"""Serve every trtllm-oci flow from this one process, without work pools (single-host setups).

    python deployments/serve.py --watch models.yaml --cron "0 * * * *"

Runs until interrupted; on shutdown the deployments stay active (pause_on_shutdown=False) so a restarted
service picks up where it left off.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml
from prefect import serve
from prefect.events import DeploymentEventTrigger

from trtllm_oci.flows.assemble import assemble
from trtllm_oci.flows.benchmark import benchmark
from trtllm_oci.flows.build_engine import build_engine
from trtllm_oci.flows.deploy import deploy
from trtllm_oci.flows.plan import plan
from trtllm_oci.flows.release import release
from trtllm_oci.flows.teardown import teardown
from trtllm_oci.flows.watch_releases import watch_releases
from trtllm_oci.watch import WatchedModel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--watch", type=Path, help="YAML list of watched models (WatchedModel fields)")
    parser.add_argument("--cron", default="0 * * * *", help="watch schedule (default: hourly)")
    parser.add_argument("--limit", type=int, default=4, help="flow runs at once in this process")
    args = parser.parse_args()

    watched = [WatchedModel.model_validate(m) for m in yaml.safe_load(args.watch.read_text())] if args.watch else []
    model_released = DeploymentEventTrigger(
        expect={"model.released"},
        match={"prefect.resource.id": "hf.model.*"},
        parameters={"spec": {"model": {"hf_repo": "{{ event.payload.hf_repo }}",
                                       "revision": "{{ event.payload.revision }}"}}},
    )
    serve(
        release.to_deployment(name="release", triggers=[model_released]),
        watch_releases.to_deployment(name="watch-releases", cron=args.cron,
                                     parameters={"models": [m.model_dump() for m in watched]}),
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
