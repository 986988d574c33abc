"""`trtllm-oci deploy --spec RELEASE.yaml`: the OCI Model Deployment of a release (or its request bodies)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from trtllm_oci.cli_commands.arg_types import positive_number


def add_deploy_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "deploy",
        help="deploy a release on OCI Data Science (BYOC), or print the requests with --dry-run",
        description="With --dry-run, print without calling OCI the request bodies deploy would send "
        "(create_model, create_model_deployment, as the oci SDK serialises them) and the checks it ran "
        "(the model checks and the capacity plan on target.shape from the model's config.json, image reference, "
        "cmd+entrypoint < 2048 bytes, environment < 2048 bytes, ports, timeout, scaling); a failed check exits 2. "
        "The image digest and model OCID appear as ${...} placeholders: they exist only after the push and "
        "the create. Without --dry-run the whole release flow runs with the spec (build, image, deploy, benchmark).",
    )
    p.add_argument("--spec", required=True, help="release spec YAML with target.kind: oci")
    p.add_argument("--artifact-size-gb", type=positive_number,
                   help="unzipped artifact size for STORAGE_SIZE_IN_GB (default: estimated from the model's weights)")
    p.add_argument("--dry-run", action="store_true", help="print the requests and checks; call nothing")
    p.add_argument("--json", action="store_true", help="JSON output")
    p.set_defaults(handler=run_deploy)


def run_deploy(args: argparse.Namespace) -> int:
    from trtllm_oci.errors import InputError
    from trtllm_oci.spec import load_spec

    spec = load_spec(args.spec)
    if not args.dry_run:
        from trtllm_oci.cli_commands.prefect_env import use_own_prefect_state

        use_own_prefect_state()
        from trtllm_oci.flows.release import release

        report = release(spec)
        print(report.model_dump_json(indent=2) if args.json else f"deployed: {report.endpoint}")
        return 0

    from trtllm_oci.cloud.deployment import dry_run_plan
    from trtllm_oci.release.deployment import artifact_route, deployment_request, planned_reference_layout

    facts, unavailable = _model_facts(spec)
    model_checks = _run_model_checks(spec, facts, unavailable)
    if args.artifact_size_gb:
        size = int(args.artifact_size_gb * 1e9)
    elif facts is None:
        raise InputError(f"{unavailable}; or give the artifact size with --artifact-size-gb")
    else:
        size = estimated_artifact_bytes(spec, facts)
    route = artifact_route(spec, size)
    plan = dry_run_plan(deployment_request(spec, artifact_size_bytes=size, artifact_route=route.route,
                                           layout=planned_reference_layout(spec, route)),
                        artifact_route=route)
    plan["checks"] = model_checks + plan["checks"]
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


def _model_facts(spec) -> tuple[Any, str | None]:
    """(the model's facts, None), or (None, why config.json could not be read: the Hub unreachable...)."""
    from trtllm_oci.errors import AccessError, ServiceError
    from trtllm_oci.release.model import model_facts
    from trtllm_oci.settings import current_settings

    settings = current_settings()
    try:
        return model_facts(spec.model, settings, settings.hf_token_value), None
    # Unreachable or not granted, not wrong: the checks that need config.json are reported as not run.
    except (ServiceError, AccessError) as exc:
        return None, str(exc)


def _run_model_checks(spec, facts, unavailable: str | None) -> list[dict[str, Any]]:
    """The release's model checks and capacity plan (raising, like validate_request, on the first failure)."""
    from trtllm_oci.release.model import chat_template_present
    from trtllm_oci.release.plan import chat_uses, preflight
    from trtllm_oci.settings import current_settings

    if facts is None:
        reason = f"not run: {unavailable}"
        return [{"check": "model checks", "ok": None, "detail": reason},
                {"check": "capacity plan", "ok": None, "detail": reason}]
    settings = current_settings()
    chat_template = chat_template_present(spec.model, settings, settings.hf_token_value) if chat_uses(spec) else None
    verdict = preflight(spec, facts, chat_template=chat_template).plan
    checks = [{"check": "model checks", "ok": True,
               "detail": f"tp={spec.parallelism.tp} pp={spec.parallelism.pp} max_seq_len={spec.build.max_seq_len} "
                         f"on {facts.architecture} ({facts.num_attention_heads} heads, {facts.num_kv_heads} KV heads, "
                         f"{facts.num_layers} layers, {facts.context_tokens}-token context)"}]
    assert verdict is not None  # an OCI target always names a shape
    checks.append({"check": "capacity plan", "ok": True, "detail": "; ".join(verdict.reasons)})
    return checks


def estimated_artifact_bytes(spec, facts) -> int:
    """Engines (or the checkpoint) ≈ the weights at their quantized size, from config.json alone."""
    from trtllm_oci.release import deployment

    return deployment.estimated_artifact_bytes(spec, facts)
