from __future__ import annotations

import argparse

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

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
    assert args.func(args) == 0
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
        args.func(args)
    assert not (tmp_path / "repo").exists()


def test_repo_assemble_help_mentions_key_flags(capsys):
    with pytest.raises(SystemExit):
        _parser().parse_args(["repo", "assemble", "--help"])
    text = capsys.readouterr().out
    for flag in ("--engine-dir", "--tokenizer-dir", "--out", "--trtllm-version", "--backend", "--streaming"):
        assert flag in text
