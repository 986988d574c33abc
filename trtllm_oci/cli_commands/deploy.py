"""`trtllm-oci deploy --spec RELEASE.yaml`: the OCI Model Deployment of a release (or its request bodies)."""

from __future__ import annotations

import argparse
import json


def add_deploy_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "deploy",
        help="deploy a release on OCI Data Science (BYOC), or print the requests with --dry-run",
        description="With --dry-run, print without calling OCI the request bodies deploy would send "
        "(create_model, create_model_deployment, as the oci SDK serialises them) and the checks it ran "
        "(image reference, cmd+entrypoint < 2048 bytes, environment < 2048 bytes, ports, timeout, scaling). "
        "The image digest and model OCID appear as ${...} placeholders: they exist only after the push and "
        "the create. Without --dry-run the whole release flow runs with the spec (build, image, deploy, benchmark).",
    )
    p.add_argument("--spec", required=True, help="release spec YAML with target.kind: oci")
    p.add_argument("--artifact-size-gb", type=float,
                   help="unzipped artifact size for STORAGE_SIZE_IN_GB (default: estimated from the model's weights)")
    p.add_argument("--dry-run", action="store_true", help="print the requests and checks; call nothing")
    p.add_argument("--json", action="store_true", help="JSON output")
    p.set_defaults(handler=run_deploy)


def run_deploy(args: argparse.Namespace) -> int:
    from trtllm_oci.spec import load_spec

    spec = load_spec(args.spec)
    if not args.dry_run:
        from trtllm_oci.flows.release import release

        report = release(spec)
        print(report.model_dump_json(indent=2) if args.json else f"deployed: {report.endpoint}")
        return 0

    from trtllm_oci.cloud.deployment import dry_run_plan
    from trtllm_oci.release.deployment import artifact_route, deployment_request

    size = int(args.artifact_size_gb * 1e9) if args.artifact_size_gb else estimated_artifact_bytes(spec)
    route = artifact_route(spec, size)
    plan = dry_run_plan(deployment_request(spec, artifact_size_bytes=size, artifact_route=route.route),
                        artifact_route=route)
    plan["artifact_route"] = {"route": route.route, "reason": route.reason,
                              "bucket": route.bucket.uri if route.bucket else None}
    plan["artifact_size_bytes"] = size
    if args.json:
        print(json.dumps(plan, indent=2))
    else:
        for check in plan["checks"]:
            mark = {True: "ok", False: "FAIL", None: "--"}[check["ok"]]
            print(f"[{mark:>4}] {check['check']}: {check['detail']}")
        env = plan["create_model_deployment"]["modelDeploymentConfigurationDetails"]["environmentConfigurationDetails"]
        print("cmd:", " ".join(env["cmd"]))
    return 0


def estimated_artifact_bytes(spec) -> int:
    """Engines (or the checkpoint) ≈ the weights at their quantized size, from config.json alone."""
    from trtllm_oci.errors import InputError, TrtllmOciError
    from trtllm_oci.release import deployment
    from trtllm_oci.release.model import model_facts
    from trtllm_oci.settings import current_settings

    settings = current_settings()
    try:
        facts = model_facts(spec.model, settings, settings.hf_token_value)
    except TrtllmOciError as exc:
        raise InputError(f"{exc}; or give the artifact size with --artifact-size-gb") from None
    return deployment.estimated_artifact_bytes(spec, facts)
