"""The stable CLI interfaces, run as a user runs them: in a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# The installed console script, as a user runs it (the venv's bin beside this interpreter).
TRTLLM_OCI = Path(sys.executable).with_name("trtllm-oci")

CONFIGS = Path(__file__).parent.parent / "data" / "hf_configs"
EXAMPLES = Path(__file__).parents[2] / "examples"


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(TRTLLM_OCI), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
    )


def model_dir(tmp_path: Path, name: str) -> Path:
    """A directory holding only config.json, as the planner interface allows."""
    directory = tmp_path / name
    directory.mkdir()
    shutil.copy(CONFIGS / f"{name}.json", directory / "config.json")
    return directory


@pytest.mark.parametrize(
    ("model", "shape", "quant", "tp", "pp", "fits", "weights"),
    [
        ("llama-2-13b-hf", "VM.GPU.A10.1", "none", 1, 1, False, 24.2),
        ("llama-2-13b-hf", "VM.GPU.A10.1", "int4_wo", 1, 1, True, 6.5),
        ("llama-2-13b-hf", "VM.GPU.A10.2", "none", 2, 1, True, 12.3),
        ("llama-2-70b-hf", "BM.GPU.H100.8", "none", 2, 1, True, 64.4),
        ("llama-2-70b-hf", "BM.GPU.H100.8", "fp8", 1, 2, True, 32.5),
        ("mixtral-8x7b-v0.1", "BM.GPU4.8", "none", 8, 1, True, 11.0),
        ("mixtral-8x7b-v0.1", "VM.GPU.A10.2", "none", 2, 1, False, 43.6),
    ],
)
def test_plan_json_interface(tmp_path, model, shape, quant, tp, pp, fits, weights) -> None:
    result = cli("plan", "--model", str(model_dir(tmp_path, model)), "--shape", shape, "--quant", quant,
                 "--tp", str(tp), "--pp", str(pp), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["fits"] is fits
    assert data["reasons"] and all(isinstance(r, str) for r in data["reasons"])
    assert data["per_gpu"]["weights_gib"] == pytest.approx(weights, abs=0.6)
    assert data["per_gpu"]["total_gib"] >= data["per_gpu"]["weights_gib"] + data["per_gpu"]["kv_cache_gib"]
    assert data["gpu"]["memory_gib"] > 0
    if not fits:
        assert data["alternatives"], "a verdict that does not fit lists what would"


def test_plan_without_quant_lists_candidates_sorted_by_price(tmp_path) -> None:
    result = cli("plan", "--model", str(model_dir(tmp_path, "llama-2-13b-hf")), "--max-seq-len", "2048", "--json")
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    prices = [p["price_per_hour_usd"] for p in found]
    priced = [p for p in prices if p is not None]
    assert found and all(p["fits"] for p in found)
    assert priced == sorted(priced) and prices == priced + [None] * (len(prices) - len(priced))
    assert all(p["limits"]["max_seq_len"] == 2048 and p["max_concurrent_sequences"] >= 1 for p in found)


def test_plan_without_max_seq_len_fits_a_short_context_model_and_an_explicit_one_is_checked(tmp_path) -> None:
    model = str(model_dir(tmp_path, "falcon-40b"))  # max_position_embeddings 2048, no rope scaling
    result = cli("plan", "--model", model, "--json")
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found and all(p["limits"]["max_seq_len"] == 2048 and p["limits"]["max_input_len"] == 2047 for p in found)
    refused = cli("plan", "--model", model, "--max-seq-len", "4096")
    assert refused.returncode == 2 and "--max-seq-len 4096" in refused.stderr and "2048-token context" in refused.stderr


def test_plan_checks_explicit_limits_before_asking_the_hub() -> None:
    result = cli("plan", "--model", "meta-llama/Llama-2-7b-hf", "--max-seq-len", "8", "--max-input-len", "16",
                 env={"HF_ENDPOINT": "http://127.0.0.1:9"})
    assert result.returncode == 2, result.stderr
    assert "max_input_len (16) must be below build.max_seq_len (8)" in result.stderr
    assert "Hub" not in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--shape", "VM.GPU.A11.1", "--quant", "none", "--tp", "1", "--pp", "1"], "unknown shape 'VM.GPU.A11.1'"),
        (["--shape", "VM.GPU.A10.1", "--quant", "none", "--tp", "1", "--pp", "1", "--max-seq-len", "8",
          "--max-input-len", "16"], "max_input_len (16) must be below build.max_seq_len (8)"),
    ],
)
def test_plan_bad_input_exits_2_with_a_clear_message(tmp_path, args, message) -> None:
    result = cli("plan", "--model", str(model_dir(tmp_path, "llama-2-7b-hf")), *args)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_plan_unknown_architecture_is_a_clear_error(tmp_path) -> None:
    bad = tmp_path / "gpt2"
    bad.mkdir()
    (bad / "config.json").write_text(json.dumps({"architectures": ["GPT2LMHeadModel"], "n_layer": 12}))
    result = cli("plan", "--model", str(bad), "--shape", "VM.GPU.A10.1")
    assert result.returncode == 2 and "GPT2LMHeadModel" in result.stderr


def test_build_dry_run_json_interface(tmp_path) -> None:
    args = ["build", "--model", str(model_dir(tmp_path, "llama-2-7b-hf")), "--quant", "int4_wo", "--tp", "2",
            "--pp", "1", "--trtllm-version", "0.12.0", "--shape", "VM.GPU.A10.2", "--dry-run", "--json"]
    first, second = cli(*args), cli(*args)
    assert first.returncode == 0, first.stderr
    data = json.loads(first.stdout)
    assert data["image"] == "nvcr.io/nvidia/tritonserver:24.08-trtllm-python-py3"
    assert len(data["cache_key"]) == 64 and data["cache_key"] == json.loads(second.stdout)["cache_key"]
    assert [s["name"] for s in data["steps"]] == ["convert", "build"]
    convert = data["steps"][0]["argv"]
    assert "--use_weight_only" in convert and convert[convert.index("--weight_only_precision") + 1] == "int4"
    assert convert[convert.index("--tp_size") + 1] == "2"
    other = cli(*[a if a != "int4_wo" else "int8_wo" for a in args])
    assert json.loads(other.stdout)["cache_key"] != data["cache_key"]


def test_build_without_max_seq_len_fits_a_short_context_model_as_plan_does(tmp_path) -> None:
    model = str(model_dir(tmp_path, "falcon-7b"))  # max_position_embeddings 2048
    result = cli("build", "--model", model, "--quant", "none", "--dry-run", "--json")
    assert result.returncode == 0, result.stderr
    argv = [a for s in json.loads(result.stdout)["steps"] for a in s["argv"]]
    assert argv[argv.index("--max_seq_len") + 1] == "2048" and argv[argv.index("--max_input_len") + 1] == "2047"
    refused = cli("build", "--model", model, "--quant", "none", "--max-seq-len", "4096", "--dry-run")
    assert refused.returncode == 2 and "2048-token context" in refused.stderr


def test_build_refuses_an_unsupported_combination(tmp_path) -> None:
    result = cli("build", "--model", str(model_dir(tmp_path, "falcon-7b")), "--quant", "int8_sq", "--tp", "1",
                 "--pp", "1", "--trtllm-version", "0.12.0", "--dry-run", "--json")
    assert result.returncode == 2 and "int8_sq" in result.stderr


def test_deploy_dry_run_prints_sdk_request_bodies_and_checks() -> None:
    result = cli("deploy", "--spec", str(EXAMPLES / "release-oci-llama2-13b.yaml"), "--dry-run", "--json",
                 "--artifact-size-gb", "7")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["create_model"]["compartmentId"].startswith("ocid1.compartment.")
    env = data["create_model_deployment"]["modelDeploymentConfigurationDetails"]["environmentConfigurationDetails"]
    assert env["environmentConfigurationType"] == "OCIR_CONTAINER"
    assert env["environmentVariables"]["MODEL_DEPLOY_PREDICT_ENDPOINT"] == "/v2/models/ensemble/generate_stream"
    assert env["environmentVariables"]["MODEL_DEPLOY_HEALTH_ENDPOINT"] == "/v2/health/ready"
    # The image's launcher runs the ranks (trtllm_oci.serving.launch.deploy_cmd); tp=2.
    assert env["cmd"][:2] == ["python3", "/opt/trtllm_oci/launch.py"]
    assert env["cmd"][env["cmd"].index("--world-size") + 1] == "2"
    assert env["image"].startswith("iad.ocir.io/mytenancynamespace/trtllm-oci/triton-trtllm:")
    assert {c["check"] for c in data["checks"]} >= {"cmd+entrypoint size", "environment", "ports"}


def test_deploy_dry_run_of_a_pytorch_release_serves_trtllm_serve_on_openai_routes() -> None:
    result = cli("deploy", "--spec", str(EXAMPLES / "release-oci-llama3-8b-pytorch.yaml"), "--dry-run", "--json",
                 "--artifact-size-gb", "9")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    env = data["create_model_deployment"]["modelDeploymentConfigurationDetails"]["environmentConfigurationDetails"]
    assert env["environmentVariables"]["MODEL_DEPLOY_PREDICT_ENDPOINT"] == "/v1/chat/completions"
    assert env["environmentVariables"]["MODEL_DEPLOY_HEALTH_ENDPOINT"] == "/health"
    root = "/opt/ds/model/deployed_model/repository"
    assert env["cmd"][:2] == ["trtllm-serve", f"{root}/llama-3.1-8b-instruct"]  # the served name is the directory
    assert env["cmd"][env["cmd"].index("--extra_llm_api_options") + 1] == f"{root}/llm_api_options.yaml"
    assert env["image"].startswith("iad.ocir.io/mytenancynamespace/trtllm-oci/trtllm-serve:1.2.1-")
    # The openai API specification allowlists /v1/completions, /v1/models and /metrics; /health is registered.
    assert env["predictApiSpecification"] == "openai"
    assert {e["endpointUriSuffix"] for e in env["customHttpEndpoints"]} == {"/health"}
    # A checkpoint travels zipped; above 2 GiB it is staged in target.artifact_bucket and exported.
    assert data["artifact_route"]["route"] == "object_storage_export"
    assert data["artifact_route"]["bucket"] == "oci://model-artifacts@mytenancynamespace/releases"


def test_every_subcommand_has_help() -> None:
    for command in ("plan", "build", "repo", "serve", "deploy", "bench", "demo"):
        result = cli(command, "--help")
        assert result.returncode == 0 and "usage: trtllm-oci" in result.stdout, command


def test_plan_on_the_unpriced_gb200_shape_prints_an_unknown_price_and_the_arm64_host(tmp_path) -> None:
    result = cli("plan", "--model", str(model_dir(tmp_path, "llama-2-70b-hf")), "--shape", "BM.GPU.GB200.4",
                 "--max-seq-len", "4096", "--max-candidates", "2")
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("  BM.GPU.GB200.4")]
    assert len(rows) == 2 and all(", – (arm64 host" in r and "$" not in r for r in rows)
