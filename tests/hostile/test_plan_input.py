"""`trtllm-oci plan` with careless flags: refused at parse time naming the flag, impossible layouts exit 2,
and nothing is written anywhere (the planner reads config.json and prints)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.hostile.conftest import Scratch, assert_refused


@pytest.mark.parametrize(
    ("flags", "fragments"),
    [
        (["--quant", "none", "--tp", "0"], ["--tp", "between 1 and 64", "got 0"]),
        (["--quant", "none", "--pp", "0"], ["--pp", "between 1 and 64", "got 0"]),
        (["--quant", "none", "--tp", "two"], ["--tp", "'two' is not a whole number"]),
        (["--kv-cache-free-gpu-mem-fraction", "0"], ["--kv-cache-free-gpu-mem-fraction", "(0, 1]", "got 0.0"]),
        (["--kv-cache-free-gpu-mem-fraction", "1.5"], ["--kv-cache-free-gpu-mem-fraction", "(0, 1]", "1.5"]),
        (["--kv-cache-free-gpu-mem-fraction", "nan"], ["--kv-cache-free-gpu-mem-fraction", "'nan'", "finite"]),
        (["--kv-cache-free-gpu-mem-fraction", "inf"], ["--kv-cache-free-gpu-mem-fraction", "'inf'", "finite"]),
        (["--max-seq-len", "0"], ["--max-seq-len", "at least 2", "got 0"]),
        (["--max-batch-size", "-4"], ["--max-batch-size", "at least 1", "got -4"]),
        (["--max-candidates", "0"], ["--max-candidates", "at least 1"]),
    ],
)
def test_bad_flag_values_are_refused_by_flag_name(scratch: Scratch, flags: list[str], fragments: list[str]) -> None:
    model = scratch.model("llama-2-13b-hf")
    result = scratch.cli("plan", "--model", str(model), "--shape", "VM.GPU.A10.2", *flags)
    assert_refused(result, *fragments, max_chars=4000)  # argparse prints the usage first
    assert scratch.written() == []


@pytest.mark.parametrize(
    ("flags", "fragments"),
    [
        # What no amount of memory fixes is bad input: exit 2, not a verdict with fits=false.
        (["--shape", "VM.GPU.A10.1", "--quant", "none", "--tp", "2"], ["--tp/--pp", "2×1 = 2", "1 GPU(s) of VM.GPU.A10.1",
                                                                        "VM.GPU.A10.2"]),
        (["--shape", "VM.GPU.A10.2", "--quant", "fp8"], ["--quant 'fp8'", "FP8", "A10", "int4_awq"]),
        (["--shape", "VM.GPU.A10.2", "--quant", "none", "--kv-cache-dtype", "fp8"], ["--kv-cache-dtype", "'int8'"]),
        # Candidates on an A10 with an FP8 KV cache: the cause is the GPU, not "lower the build limits".
        (["--shape", "VM.GPU.A10.2", "--kv-cache-dtype", "fp8"], ["--kv-cache-dtype", "FP8", "A10"]),
        (["--shape", "BM.GPU.H100.8", "--quant", "none", "--tp", "3"], ["--tp 3", "40 attention heads", "[1, 2, 4, 8]"]),
        (["--shape", "BM.GPU.H100.8", "--max-seq-len", "8192"], ["--max-seq-len 8192", "4096-token context"]),
    ],
)
def test_impossible_layouts_exit_2_naming_the_cause(scratch: Scratch, flags: list[str], fragments: list[str]) -> None:
    result = scratch.cli("plan", "--model", str(scratch.model("llama-2-13b-hf")), *flags)
    message = assert_refused(result, *fragments)
    assert "lower the build limits" not in message
    assert scratch.written() == []


def test_kv_heads_must_split_evenly_too(scratch: Scratch) -> None:
    # 48 query heads split 8 ways, but 12 KV heads do not (and are not a divisor of 8 to be copied either).
    config = json.loads((scratch.model("llama-2-13b-hf", "base") / "config.json").read_text())
    config.update(num_attention_heads=48, num_key_value_heads=12, hidden_size=6144)
    result = scratch.cli("plan", "--model", str(scratch.model(config)), "--shape", "BM.GPU.H100.8",
                         "--quant", "none", "--tp", "8")
    assert_refused(result, "--tp 8", "12 KV heads", "pick tp among [1, 2, 4]")


def test_rope_scaling_extends_the_context_the_way_trtllm_counts_it(scratch: Scratch) -> None:
    config = json.loads((scratch.model("llama-2-13b-hf", "base") / "config.json").read_text())
    config["rope_scaling"] = {"type": "linear", "factor": 2.0}
    longer = scratch.cli("plan", "--model", str(scratch.model(config, "linear")), "--shape", "BM.GPU.H100.8",
                         "--max-seq-len", "8192", "--json")
    assert longer.returncode == 0, longer.stderr
    # llama3-type rope scaling is already counted in max_position_embeddings (TensorRT-LLM uses factor 1).
    config["rope_scaling"] = {"rope_type": "llama3", "factor": 8.0}
    refused = scratch.cli("plan", "--model", str(scratch.model(config, "llama3")), "--shape", "BM.GPU.H100.8",
                          "--max-seq-len", "8192")
    assert_refused(refused, "--max-seq-len 8192", "4096-token context")


def test_max_candidates_defaults_to_20_and_says_there_are_more(scratch: Scratch) -> None:
    model = str(scratch.model("llama-2-13b-hf"))
    found = json.loads(scratch.cli("plan", "--model", model, "--json").stdout)
    assert len(found) == 20
    assert len(json.loads(scratch.cli("plan", "--model", model, "--json", "--max-candidates", "3").stdout)) == 3
    text = scratch.cli("plan", "--model", model, "--max-candidates", "2")
    assert text.returncode == 0 and "the 2 cheapest; --max-candidates for more" in text.stdout
    assert len([line for line in text.stdout.splitlines() if line.startswith("  ")]) == 2


def test_a_closed_pipe_ends_quietly(scratch: Scratch) -> None:
    model = str(scratch.model("llama-2-13b-hf"))
    scratch.cwd.mkdir(parents=True, exist_ok=True)
    plan = subprocess.Popen([sys.executable, "-m", "trtllm_oci.cli", "plan", "--model", model, "--json",
                             "--max-candidates", "100000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=scratch.cwd)
    assert plan.stdout is not None and plan.stderr is not None
    plan.stdout.read(100)
    plan.stdout.close()  # what `| head -c 100` does
    err = plan.stderr.read().decode()
    assert plan.wait(timeout=120) == 141, err
    assert "Traceback" not in err and "BrokenPipe" not in err, err
