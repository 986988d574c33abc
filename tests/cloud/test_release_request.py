"""From a release spec to the BYOC request: image, Triton command line, predict endpoint."""

from __future__ import annotations

from pathlib import Path

import pytest

from trtllm_oci.cloud.deployment import build_environment_variables
from trtllm_oci.errors import SpecError
from trtllm_oci.release.deployment import deployment_request, serving_image_platform, serving_image_ref
from trtllm_oci.serving.launch import parse_args, server_argv
from trtllm_oci.spec import load_spec, parse_spec

EXAMPLE = Path(__file__).parents[2] / "examples" / "release-oci-llama2-13b.yaml"


def test_streaming_goes_to_the_bls_when_the_repository_has_one() -> None:
    spec = load_spec(EXAMPLE)
    assert build_environment_variables(deployment_request(spec, artifact_size_bytes=10**9))[
        "MODEL_DEPLOY_PREDICT_ENDPOINT"] == "/v2/models/ensemble/generate_stream"
    bls = spec.model_copy(update={"serving": spec.serving.model_copy(update={"include_bls": True})})
    assert build_environment_variables(deployment_request(bls, artifact_size_bytes=10**9))[
        "MODEL_DEPLOY_PREDICT_ENDPOINT"] == "/v2/models/tensorrt_llm_bls/generate_stream"


def test_cmd_serves_the_model_repository_inside_the_artifact_with_world_size_ranks() -> None:
    req = deployment_request(load_spec(EXAMPLE), artifact_size_bytes=10**9)
    argv = server_argv(parse_args(req.cmd[2:]))  # what the image's launcher runs
    repo_flags = [a for a in argv if a.startswith("--model-repository=")]
    assert set(repo_flags) == {"--model-repository=/opt/ds/model/deployed_model/repository/model_repository"}
    assert argv.count("-n") == 2 and req.server_port == req.health_port == 8000
    assert serving_image_ref(load_spec(EXAMPLE)).startswith("iad.ocir.io/mytenancynamespace/")


def test_a_local_target_cannot_be_deployed() -> None:
    with pytest.raises(SpecError, match="target.kind='local'"):
        deployment_request(parse_spec({"model": {"hf_repo": "a/b"}}), artifact_size_bytes=1)


@pytest.mark.parametrize("passed, tag", [(None, None), (True, "passed"), (False, "failed")])
def test_the_quality_gate_verdict_goes_into_the_request(passed, tag) -> None:
    from trtllm_oci.cloud.deployment import QUALITY_TAG, build_create_model_deployment_details

    req = deployment_request(load_spec(EXAMPLE), artifact_size_bytes=10**9, quality_passed=passed)
    assert req.quality_verdict == tag
    assert build_create_model_deployment_details(req).freeform_tags.get(QUALITY_TAG) == tag


def test_the_serving_image_is_built_for_the_target_shapes_host() -> None:
    spec = load_spec(EXAMPLE)
    assert serving_image_platform(spec) == "linux/amd64"
    grace = spec.model_copy(update={"target": spec.target.model_copy(update={"shape": "BM.GPU.GB200.4"})})
    assert serving_image_platform(grace) == "linux/arm64"
