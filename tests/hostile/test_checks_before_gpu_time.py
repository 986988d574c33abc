"""Dry runs check what a real build or deployment would find out only after GPU time: the model's heads,
layers and context, and the capacity planner; their messages name the flag, stay short, say the right cause,
and keep credentials out."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from tests.hostile.conftest import Scratch, assert_refused
from tests.repo.fake_engines import write_tokenizer_dir, write_trtllm_build_engine

EXAMPLES = Path(__file__).parents[2] / "examples"


def _oci_spec(scratch: Scratch, model: Path, *, shape: str, tp: int, quant: str = "none") -> Path:
    text = (EXAMPLES / "release-oci-llama2-13b.yaml").read_text()
    text = text.replace("hf_repo: meta-llama/Llama-2-13b-chat-hf", f"local_dir: {model}")
    text = text.replace("method: int4_awq", f"method: {quant}").replace("tp: 2", f"tp: {tp}")
    return scratch.file("release.yaml", text.replace("shape: VM.GPU.A10.2", f"shape: {shape}"))


def test_build_dry_run_refuses_what_will_not_fit(scratch: Scratch) -> None:
    model = scratch.model("llama-2-13b-hf")
    result = scratch.cli("build", "--model", str(model), "--shape", "VM.GPU.A10.1", "--dry-run", "--json")
    assert_refused(result, "refusing to build", "does not fit VM.GPU.A10.1", "24.2 GiB", "--force", max_chars=3000)
    assert result.stdout == ""
    forced = scratch.cli("build", "--model", str(model), "--shape", "VM.GPU.A10.1", "--dry-run", "--json", "--force")
    assert forced.returncode == 0, forced.stderr
    assert json.loads(forced.stdout)["plan"]["fits"] is False
    assert scratch.written() == []


@pytest.mark.parametrize(
    ("flags", "fragments"),
    [
        (["--tp", "3", "--shape", "BM.GPU.A10.4"], ["tp=3 does not divide the model's 40 attention heads"]),
        (["--pp", "41"], ["pp=41 exceeds the model's 40 layers", "pp ≤ 40"]),
        (["--tp", "4", "--shape", "VM.GPU.A10.2"], ["--tp/--pp", "4×1 = 4", "2 GPU(s) of VM.GPU.A10.2"]),
        (["--max-seq-len", "8192", "--max-input-len", "1024"], ["max_seq_len=8192", "4096-token context"]),
        (["--tp", "0"], ["argument --tp", "got 0"]),
        (["--max-seq-len", "100"], ["--max-input-len (2048) must be below --max-seq-len (100)"]),
    ],
)
def test_build_dry_run_runs_the_model_checks(scratch: Scratch, flags: list[str], fragments: list[str]) -> None:
    result = scratch.cli("build", "--model", str(scratch.model("llama-2-13b-hf")), "--dry-run", *flags)
    message = assert_refused(result, *fragments, max_chars=4000)
    assert "convert_checkpoint" not in result.stdout + message
    assert scratch.written() == []


def test_build_dry_run_of_a_sound_layout_shows_the_plan(scratch: Scratch) -> None:
    result = scratch.cli("build", "--model", str(scratch.model("llama-2-13b-hf")), "--shape", "VM.GPU.A10.2",
                         "--tp", "2", "--quant", "int4_awq", "--dry-run", "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["plan"]["fits"] is True and out["plan"]["shape"] == "VM.GPU.A10.2"


def test_deploy_dry_run_refuses_13b_fp16_on_one_a10(scratch: Scratch) -> None:
    spec = _oci_spec(scratch, scratch.model("llama-2-13b-hf"), shape="VM.GPU.A10.1", tp=1)
    assert_refused(scratch.cli("deploy", "--spec", str(spec), "--dry-run"), "does not fit VM.GPU.A10.1",
                   max_chars=3000)


def test_deploy_dry_run_refuses_tp3_on_40_heads(scratch: Scratch) -> None:
    spec = _oci_spec(scratch, scratch.model("llama-2-13b-hf"), shape="BM.GPU.A10.4", tp=3)
    assert_refused(scratch.cli("deploy", "--spec", str(spec), "--dry-run"), "40 attention heads", "[1, 2, 4, 8]")


def test_deploy_dry_run_lists_the_model_checks_it_ran(scratch: Scratch) -> None:
    spec = _oci_spec(scratch, scratch.model("llama-2-13b-hf"), shape="VM.GPU.A10.2", tp=2, quant="int4_awq")
    result = scratch.cli("deploy", "--spec", str(spec), "--dry-run", "--json")
    assert result.returncode == 0, result.stderr
    checks = {c["check"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["model checks"]["ok"] is True and "40 heads" in checks["model checks"]["detail"]
    assert checks["capacity plan"]["ok"] is True and "fits" in checks["capacity plan"]["detail"]


def test_deploy_dry_run_without_config_json_says_the_checks_did_not_run(scratch: Scratch) -> None:
    result = scratch.cli("deploy", "--spec", str(EXAMPLES / "release-oci-llama2-13b.yaml"), "--dry-run", "--json",
                         "--artifact-size-gb", "7")
    assert result.returncode == 0, result.stderr
    checks = {c["check"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["model checks"]["ok"] is None and "not run" in checks["model checks"]["detail"]


def test_credentials_in_hf_endpoint_are_not_echoed(scratch: Scratch) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    result = scratch.cli("plan", "--model", "acme/tiny", "--shape", "VM.GPU.A10.1",
                         env={"HF_HUB_OFFLINE": "0", "HF_ENDPOINT": f"http://hubuser:s3cr3t-pw@127.0.0.1:{port}"})
    message = assert_refused(result, "unreachable", f"http://***@127.0.0.1:{port}")
    assert "s3cr3t" not in message and "hubuser" not in message


def test_credentials_in_bench_url_are_kept_out_of_messages_and_tables(scratch: Scratch) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    out = scratch.root / "bench-out"
    result = scratch.cli("bench", "--url", f"http://benchuser:hunter2@127.0.0.1:{port}", "--model", "ensemble",
                         "--transport", "http", "--concurrency", "1", "--input-len", "4", "--output-len", "4",
                         "--num-requests", "2", "--out", str(out), timeout=180)
    assert result.returncode != 0
    everything = result.stdout + result.stderr + "".join(
        p.read_bytes().decode("utf-8", "replace") for p in out.rglob("*") if p.is_file())
    assert "hunter2" not in everything and "benchuser" not in everything
    assert "***@127.0.0.1" in result.stderr


def test_an_engine_config_claiming_200000_ranks_gets_a_short_message(scratch: Scratch) -> None:
    engine = write_trtllm_build_engine(scratch.root / "inputs" / "engine", tp=1, pp=1)
    config = json.loads((engine / "config.json").read_text())
    config["pretrained_config"]["mapping"].update(world_size=200_000, tp_size=200_000)
    (engine / "config.json").write_text(json.dumps(config))
    tokenizer = write_tokenizer_dir(scratch.root / "inputs" / "hf")
    result = scratch.cli("repo", "assemble", "--engine-dir", str(engine), "--tokenizer-dir", str(tokenizer),
                         "--out", str(scratch.root / "repo"), "--trtllm-version", "1.2.1")
    assert_refused(result, "200000", "outside 1..1024", "rebuild the engine", max_chars=600)
    assert not (scratch.root / "repo").exists()


def test_repo_assemble_names_overwrite_when_out_exists(scratch: Scratch) -> None:
    engine = write_trtllm_build_engine(scratch.root / "inputs" / "engine", tp=1, pp=1)
    tokenizer = write_tokenizer_dir(scratch.root / "inputs" / "hf")
    args = ["repo", "assemble", "--engine-dir", str(engine), "--tokenizer-dir", str(tokenizer),
            "--out", str(scratch.root / "repo"), "--trtllm-version", "1.2.1"]
    first = scratch.cli(*args)
    assert first.returncode == 0, first.stderr
    assert_refused(scratch.cli(*args), "already exists", "--overwrite")
    assert scratch.cli(*args, "--overwrite").returncode == 0


def _pytorch_oci_spec(scratch: Scratch, model: Path, **replace: str) -> Path:
    text = (EXAMPLES / "release-oci-llama3-8b-pytorch.yaml").read_text()
    text = text.replace("hf_repo: meta-llama/Llama-3.1-8B-Instruct", f"local_dir: {model}")
    text = text.replace("  revision: main ", "  # revision: main ")
    text = text.replace("method: fp8 ", "method: none ").replace("kv_cache_dtype: fp8", "kv_cache_dtype: auto")
    text = text.replace("  calib_dataset:\n    local_dir:", "  # calib_dataset:\n    # local_dir:")
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    return scratch.file("release.yaml", text)


def test_deploy_dry_run_refuses_chat_on_a_model_without_a_chat_template(scratch: Scratch) -> None:
    # Llama-2-7b-hf (a base model) ships no chat template: trtllm-serve answers 400 to every chat request, so the
    # default chat predict endpoint and a chat benchmark would fail only after the deployment is up.
    model = scratch.model("llama-2-7b-hf")
    spec = _pytorch_oci_spec(scratch, model, **{"max_seq_len: 8192": "max_seq_len: 4096",
                                                "max_num_tokens: 8192": "max_num_tokens: 4096"})
    message = assert_refused(scratch.cli("deploy", "--spec", str(spec), "--dry-run"), "no chat template",
                             "serving.predict_api: chat", "benchmark.api: chat", "serving.predict_api: completions",
                             max_chars=3000)
    assert "tokenizer_config.json" in message
    assert scratch.written() == []

    # The same release on /v1/completions is sound: the predict endpoint and the smoke test send prompts.
    completions = _pytorch_oci_spec(scratch, model, **{
        "max_seq_len: 8192": "max_seq_len: 4096", "max_num_tokens: 8192": "max_num_tokens: 4096",
        "  kv_cache_free_gpu_mem_fraction": "  predict_api: completions\n  kv_cache_free_gpu_mem_fraction",
        "api: chat": "api: completions"})
    result = scratch.cli("deploy", "--spec", str(completions), "--dry-run", "--json")
    assert result.returncode == 0, result.stderr
    env = json.loads(result.stdout)["create_model_deployment"]["modelDeploymentConfigurationDetails"][
        "environmentConfigurationDetails"]
    assert env["environmentVariables"]["MODEL_DEPLOY_PREDICT_ENDPOINT"] == "/v1/completions"

    # A tokenizer with a template (tokenizer_config.json's chat_template, as Llama-2-7b-chat-hf ships it) may chat.
    (model / "tokenizer_config.json").write_text(json.dumps({"chat_template": "{{ messages[0]['content'] }}"}))
    chat = scratch.cli("deploy", "--spec", str(spec), "--dry-run", "--json")
    assert chat.returncode == 0, chat.stderr
