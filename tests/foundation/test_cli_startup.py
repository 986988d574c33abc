"""CLI start-up stays small: `--help` (and each subcommand's --help) imports none of the heavy libraries, so
it answers in a fraction of a second (benchmarks/bench_cli_startup.py measures it; this checks the cause)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from trtllm_oci.cli import SUBCOMMANDS, build_parser

HEAVY = ("numpy", "grpc", "tritonclient", "torch", "pandas", "oci", "prefect", "transformers", "huggingface_hub",
         "matplotlib", "docker", "aiohttp")

_IMPORTED_AFTER = """
import json, sys
from trtllm_oci.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


def _imported(*argv: str) -> set[str]:
    result = subprocess.run([sys.executable, "-c", _IMPORTED_AFTER, *argv], capture_output=True, text=True,
                            timeout=120)
    return {name.split(".")[0] for name in json.loads(result.stderr.strip().splitlines()[-1])}


@pytest.mark.parametrize("argv", [["--help"], ["plan", "--help"], ["build", "--help"], ["repo", "--help"],
                                  ["serve", "--help"], ["deploy", "--help"], ["bench", "--help"], ["demo", "--help"]])
def test_help_imports_no_heavy_module(argv: list[str]) -> None:
    heavy = _imported(*argv) & set(HEAVY)
    assert not heavy, f"trtllm-oci {' '.join(argv)} imported {sorted(heavy)}"


def test_top_level_help_imports_not_even_pydantic() -> None:
    assert "pydantic" not in _imported("--help")


# What plan on a local config.json needs none of: the heavy libraries, and pydantic-settings with asyncio and
# dotenv behind it (only $TRTLLM_OCI_SHAPES is read, by trtllm_oci.settings.shape_catalog_path).
PLAN_AVOIDS = (*HEAVY, "pydantic_settings", "asyncio", "dotenv")


@pytest.mark.parametrize("form", [["--quant", "none", "--tp", "1", "--pp", "1"], []], ids=["verdict", "candidates"])
def test_plan_on_a_local_config_imports_no_client_library(tmp_path, form: list[str]) -> None:
    from pathlib import Path

    config = Path(__file__).parent.parent / "data" / "hf_configs" / "llama-2-7b-hf.json"
    (tmp_path / "config.json").write_text(config.read_text())
    heavy = _imported("plan", "--model", str(tmp_path), "--shape", "VM.GPU.A10.1", *form) & set(PLAN_AVOIDS)
    assert not heavy, f"plan imported {sorted(heavy)}"


def test_the_one_line_help_of_each_subcommand_matches_its_module() -> None:
    full = build_parser(None)
    sub = next(a for a in full._actions if isinstance(a, argparse._SubParsersAction))
    helps = {choice.dest: choice.help for choice in sub._choices_actions}
    assert helps == {command.name: command.help for command in SUBCOMMANDS}
