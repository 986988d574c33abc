from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from tests.repo.fake_engines import write_legacy_engine, write_trtllm_build_engine
from trtllm_oci.repo.checks import RepoCheckError
from trtllm_oci.repo.cli import add_repo_parser


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trtllm-oci")
    add_repo_parser(parser.add_subparsers(dest="command", required=True))
    return parser


def test_repo_assemble_cli(tmp_path, engine_dir, tokenizer_dir, python_models_dir, capsys, monkeypatch):
    monkeypatch.setattr("trtllm_oci.repo.assemble.default_python_models_dir", lambda: python_models_dir)
    out = tmp_path / "repo"
    args = _parser().parse_args(
        [
            "repo",
            "assemble",
            "--engine-dir",
            str(engine_dir),
            "--tokenizer-dir",
            str(tokenizer_dir),
            "--out",
            str(out),
            "--trtllm-version",
            "1.2.1",
            "--streaming",
            "--max-batch-size",
            "16",
            "--oci-name",
            "llama",
        ]
    )
    assert args.handler(args) == 0
    config = text_format.Parse(
        (out / "model_repository/tensorrt_llm/config.pbtxt").read_text(), mc.ModelConfig()
    )
    assert config.model_transaction_policy.decoupled
    assert config.max_batch_size == 16
    assert config.parameters["gpt_model_path"].string_value == "/opt/ds/model/deployed_model/llama/engine"
    assert "--model-repository=/opt/ds/model/deployed_model/llama/model_repository" in capsys.readouterr().out


def test_repo_assemble_cli_reports_failed_check(tmp_path, engine_dir, tokenizer_dir):
    args = _parser().parse_args(
        [
            "repo",
            "assemble",
            "--engine-dir",
            str(engine_dir),
            "--tokenizer-dir",
            str(tokenizer_dir),
            "--out",
            str(tmp_path / "repo"),
            "--trtllm-version",
            "0.12.0",
        ]
    )
    with pytest.raises(
        RepoCheckError, match=r"built by TRT-LLM 1\.2\.1 but the serving image runs TRT-LLM 0\.12\.0"
    ):
        args.handler(args)
    assert not (tmp_path / "repo").exists()


def test_repo_assemble_help_mentions_key_flags(capsys):
    with pytest.raises(SystemExit):
        _parser().parse_args(["repo", "assemble", "--help"])
    text = capsys.readouterr().out
    for flag in ("--engine-dir", "--tokenizer-dir", "--out", "--trtllm-version", "--backend", "--streaming"):
        assert flag in text


# --- the installed console script, as a user runs it ---------------------------------------------------

TRTLLM_OCI = Path(sys.executable).with_name("trtllm-oci")


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(TRTLLM_OCI), *argv], capture_output=True, text=True, timeout=120)


def test_console_script_assembles_fake_engines(tmp_path, tokenizer_dir):
    engine = write_trtllm_build_engine(tmp_path / "engine", version="1.2.1", tp=2)
    out = tmp_path / "repo"
    result = _run(
        "repo", "assemble", "--engine-dir", str(engine), "--tokenizer-dir", str(tokenizer_dir),
        "--out", str(out), "--trtllm-version", "1.2.1", "--streaming", "--oci-name", "llama",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"assembled {out}: models ensemble, postprocessing, preprocessing, tensorrt_llm")
    assert "world_size 2" in result.stdout
    assert "--model-repository=/opt/ds/model/deployed_model/llama/model_repository" in result.stdout
    config = text_format.Parse((out / "model_repository/tensorrt_llm/config.pbtxt").read_text(), mc.ModelConfig())
    assert config.backend == "tensorrtllm" and config.model_transaction_policy.decoupled
    assert config.parameters["guided_decoding_backend"].string_value == ""
    assert sorted(p.name for p in (out / "engine").iterdir()) == ["config.json", "rank0.engine", "rank1.engine"]


def test_console_script_assembles_the_legacy_layout(tmp_path, tokenizer_dir):
    engine = write_legacy_engine(tmp_path / "engine", tp=2, max_batch_size=128)
    result = _run(
        "repo", "assemble", "--engine-dir", str(engine), "--tokenizer-dir", str(tokenizer_dir),
        "--out", str(tmp_path / "repo"), "--trtllm-version", "0.5.0",
    )
    assert result.returncode == 0, result.stderr
    assert "TRT-LLM 0.5.0 (interface 0.5.0); world_size 2" in result.stdout


@pytest.mark.timeout(300)
def test_console_script_assembles_the_cpu_reference_backend(tmp_path):
    from trtllm_oci.tiny_model import make_tiny_llama

    model = make_tiny_llama(tmp_path / "tiny-llama")
    out = tmp_path / "repo"
    result = _run(
        "repo", "assemble", "--backend", "reference", "--hf-model-dir", str(model), "--tokenizer-dir", str(model),
        "--out", str(out), "--trtllm-version", "1.2.1", "--bls",
    )
    assert result.returncode == 0, result.stderr
    assert "tensorrt_llm_bls" in result.stdout and "world_size 1" in result.stdout
    config = text_format.Parse((out / "model_repository/tensorrt_llm/config.pbtxt").read_text(), mc.ModelConfig())
    assert config.backend == "python"
    assert (out / "model_repository/tensorrt_llm/1/model.py").is_file()
    assert (out / "reference_model/config.json").is_file()


@pytest.mark.parametrize(
    ("make_engine", "extra", "message"),
    [
        (lambda root: write_trtllm_build_engine(root, version="1.2.1", tp=2, ranks=1), [],
         r"lacks \['rank1\.engine'\] for world size 2"),
        (lambda root: write_trtllm_build_engine(root, version="1.2.1", tp=2, world_size=4), [],
         r"world_size=4 but tp_size×pp_size×cp_size = 2×1×1 = 2"),
        (lambda root: write_trtllm_build_engine(root, version="0.14.0"), [],
         r"built by TRT-LLM 0\.14\.0 but the serving image runs TRT-LLM 1\.2\.1"),
        (lambda root: write_trtllm_build_engine(root, version="1.2.1"), ["--oci-name", "a", "--deploy-root", "/x"],
         r"--oci-name and --deploy-root are alternatives"),
        (lambda root: write_trtllm_build_engine(root, version="1.2.1"), ["--batching", "V1"],
         r"V1 \(static batching\) is not served by TRT-LLM 1\.2\.1"),
    ],
)
def test_console_script_refuses_bad_input_with_exit_2_and_writes_nothing(
    tmp_path, tokenizer_dir, make_engine, extra, message
):
    engine = make_engine(tmp_path / "engine")
    out = tmp_path / "repo"
    result = _run(
        "repo", "assemble", "--engine-dir", str(engine), "--tokenizer-dir", str(tokenizer_dir),
        "--out", str(out), "--trtllm-version", "1.2.1", *extra,
    )
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stderr.startswith("trtllm-oci repo: error: ")
    assert re.search(message, result.stderr), result.stderr
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".repo")]


@pytest.mark.parametrize(
    ("engine_kwargs", "shape", "message"),
    [
        ({"dtype": "bfloat16"}, "VM.GPU3.1", r"dtype 'bfloat16' needs a GPU of compute capability >= 8\.0"),
        ({"quant_algo": "FP8"}, "VM.GPU.A10.1", r"an FP8 quantization needs a GPU of compute capability >= 8\.9"),
    ],
)
def test_console_script_refuses_an_engine_precision_the_serving_gpu_lacks(
    tmp_path, tokenizer_dir, engine_kwargs, shape, message
):
    import os

    import yaml

    catalog_path = Path(__file__).parents[2] / "trtllm_oci" / "data" / "gpu_shapes.yaml"
    catalog = yaml.safe_load(catalog_path.read_text())
    catalog["gpus"]["V100"] = {"memory_gib": 15.78, "memory_bandwidth_gbs": 900, "compute_capability": "7.0",
                               "fp16_tflops": 125}
    catalog["shapes"]["VM.GPU3.1"] = {"gpu": "V100", "gpu_count": 1, "price_per_hour_usd": 2.95,
                                      "price_source": "test catalog", "price_date": "2026-01"}
    (tmp_path / "shapes.yaml").write_text(yaml.safe_dump(catalog))
    engine = write_trtllm_build_engine(tmp_path / "engine", version="1.2.1", **engine_kwargs)
    out = tmp_path / "repo"
    result = subprocess.run(
        [str(TRTLLM_OCI), "repo", "assemble", "--engine-dir", str(engine), "--tokenizer-dir", str(tokenizer_dir),
         "--out", str(out), "--trtllm-version", "1.2.1", "--shape", shape],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "TRTLLM_OCI_SHAPES": str(tmp_path / "shapes.yaml")},
    )
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert re.search(message, result.stderr) and "rebuild it for that GPU" in result.stderr
    assert not out.exists()
    ok = _run("repo", "assemble", "--engine-dir", str(engine), "--tokenizer-dir", str(tokenizer_dir),
              "--out", str(out), "--trtllm-version", "1.2.1", "--shape", "BM.GPU.H100.8")
    assert ok.returncode == 0, ok.stderr
