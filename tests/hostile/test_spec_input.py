"""Release specs and catalogs a careless or hostile user hands over: each is refused at load with a short
message naming the file or field and the fix, within bounded time and memory, writing nothing."""

from __future__ import annotations

import resource
import subprocess
import sys
import textwrap
import time

import pytest

from tests.hostile.conftest import Scratch, assert_refused

# Nine lines that expand to 9^9 (~387 million) strings once something walks them.
ALIAS_BOMB = textwrap.dedent("""\
    a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
    b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
    c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
    d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
    e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
    f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
    g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
    h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
    model: {local_dir: *h}
""")


def _max_rss_mib_of_children() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def test_yaml_alias_bomb_is_refused_quickly_in_little_memory(scratch: Scratch) -> None:
    spec = scratch.file("bomb.yaml", ALIAS_BOMB)
    start = time.monotonic()
    # A fresh interpreter, so its peak memory is its own (RUSAGE_CHILDREN of a process that ran nothing else).
    probe = subprocess.run(
        [sys.executable, "-c", "import resource, subprocess, sys; "
         "r = subprocess.run([sys.executable, '-m', 'trtllm_oci.cli', 'deploy', '--spec', sys.argv[1], '--dry-run'],"
         " capture_output=True, text=True); sys.stderr.write(r.stderr); "
         "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)", str(spec)],
        capture_output=True, text=True, timeout=120, cwd=scratch.root)
    code, peak_kib = probe.stdout.split()
    assert time.monotonic() - start < 60
    assert int(code) == 2, probe.stderr
    assert "expands to more than 100000 values" in probe.stderr and "bomb.yaml" in probe.stderr
    assert len(probe.stderr) < 500
    assert int(peak_kib) < 400 * 1024, f"peak RSS {int(peak_kib) // 1024} MiB"


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("model: {local_dir: /m}\nparallelism: {tp: 2, tp: 8}\n", ["key 'tp' appears twice", "line 2", "keep one"]),
        ("model: {local_dir: /m}\nmodel: {hf_repo: a/b}\n", ["key 'model' appears twice", "first on line 1"]),
        ("model: {local_dir: /m}\nparallelism: {tp: true}\n", ["parallelism.tp", "not true/false", "(got True)"]),
        ("model: {local_dir: /m}\nbuild: {max_seq_len: '4096'}\n", ["build.max_seq_len", "valid integer", "'4096'"]),
        ("model: {local_dir: /m}\nserving: {kv_cache_free_gpu_mem_fraction: .nan}\n",
         ["serving.kv_cache_free_gpu_mem_fraction", "finite number"]),
        ("model: {local_dir: /m}\nname: ../../../escaped\n", ["name", "'../../../escaped'", "no '/', no '..'"]),
        ("model: {local_dir: /m}\nname: /abs/dir\n", ["name", "'/abs/dir'", "not a release name"]),
        ("model: {local_dir: /m}\nname: ..\n", ["name", "'..'", "starting with a letter or digit"]),
        ("- just\n- a list\n", ["must be a YAML mapping", "'model'"]),
        ("model: {local_dir: /m\n", ["is not valid YAML", "line 2"]),
    ],
)
def test_spec_yaml_mistakes_are_named(scratch: Scratch, text: str, fragments: list[str]) -> None:
    spec = scratch.file("release.yaml", text)
    message = assert_refused(scratch.cli("deploy", "--spec", str(spec), "--dry-run"), *fragments)
    assert "release.yaml" in message
    assert scratch.written() == []


def test_a_huge_value_is_echoed_cut_short(scratch: Scratch) -> None:
    spec = scratch.file("release.yaml", "model: {local_dir: /m}\nname: '" + "x" * 200_000 + "/'\n")
    message = assert_refused(scratch.cli("deploy", "--spec", str(spec), "--dry-run"), "name", "characters)")
    assert len(message) < 1000


def test_many_errors_are_listed_up_to_ten(scratch: Scratch) -> None:
    extra = "".join(f"  unknown_{i}: 1\n" for i in range(40))
    spec = scratch.file("release.yaml", "model: {local_dir: /m}\nserving:\n" + extra)
    message = assert_refused(scratch.cli("deploy", "--spec", str(spec), "--dry-run"), "... and 30 more")
    assert message.count("Extra inputs are not permitted") == 10


@pytest.mark.parametrize(
    ("content", "fragments"),
    [
        (b"\x7fELF\x02\x01\x01\x00\x00\x00binary", ["is a binary file", "not YAML text"]),
        ("name: caf\u00e9\n".encode("latin-1"), ["is not UTF-8 text", "0xe9", "save it as UTF-8"]),
    ],
)
def test_binary_and_non_utf8_spec_files_are_named(scratch: Scratch, content: bytes, fragments: list[str]) -> None:
    spec = scratch.file("release.yaml", content)
    assert_refused(scratch.cli("deploy", "--spec", str(spec), "--dry-run"), "release.yaml", *fragments)


def test_an_oversized_spec_file_is_not_read(scratch: Scratch) -> None:
    spec = scratch.file("release.yaml", "# " + "x" * (2 * 1024 * 1024) + "\nmodel: {local_dir: /m}\n")
    assert_refused(scratch.cli("deploy", "--spec", str(spec), "--dry-run"), "release.yaml", "more than the 1048576")


def test_a_missing_spec_and_a_directory_are_named(scratch: Scratch) -> None:
    assert_refused(scratch.cli("deploy", "--spec", str(scratch.root / "nope.yaml"), "--dry-run"),
                   "nope.yaml", "does not exist")
    assert_refused(scratch.cli("deploy", "--spec", str(scratch.root), "--dry-run"), "is a directory")


@pytest.mark.parametrize(
    ("catalog", "fragments"),
    [
        (None, ["TRTLLM_OCI_SHAPES", "does not exist", "or unset it"]),
        (b"\x00\x01binary", ["TRTLLM_OCI_SHAPES", "binary file"]),
        ("just a string\n", ["must be a mapping with 'gpus' and 'shapes'", "unset TRTLLM_OCI_SHAPES"]),
        ("gpus: {A10: {memory_gib: lots}}\nshapes: {}\n", ["gpus.A10.memory_gib", "valid number"]),
        ("gpus: {A10: {memory_gib: 1, memory_bandwidth_gbs: 1, compute_capability: 'eight', fp16_tflops: 1}}\n"
         "shapes: {}\n", ["gpus.A10.compute_capability", "pattern"]),
        ("gpus: {}\nshapes: {X: {gpu: B200, gpu_count: 1, price_per_hour_usd: 1, price_source: s, price_date: d}}\n",
         ["shape 'X'", "GPU 'B200'"]),
        ("gpus: {}\nshapes: {}\n", ["lists no shapes"]),
    ],
)
def test_a_bad_trtllm_oci_shapes_is_an_error_not_a_traceback(scratch: Scratch, catalog: str | bytes | None,
                                                             fragments: list[str]) -> None:
    path = scratch.root / "inputs" / "missing.yaml" if catalog is None else scratch.file("shapes.yaml", catalog)
    result = scratch.cli("plan", "--model", str(scratch.model("llama-2-7b-hf")), "--shape", "VM.GPU.A10.1",
                         env={"TRTLLM_OCI_SHAPES": str(path)})
    assert_refused(result, *fragments)
    assert scratch.written() == []


def test_a_mistyped_local_path_is_not_a_hub_lookup(scratch: Scratch) -> None:
    scratch.model("llama-2-7b-hf", "llama-7b")  # inputs/llama-7b exists; the user types inputs/lama-7b
    (scratch.cwd / "models").mkdir(parents=True)
    result = scratch.cli("plan", "--model", "models/lama-7b", "--shape", "VM.GPU.A10.1")
    message = assert_refused(result, "models/lama-7b", "config.json")
    assert "Hub" not in message and "unreachable" not in message
    bare = scratch.cli("plan", "--model", "lama-7b", "--shape", "VM.GPU.A10.1")
    assert_refused(bare, "--model 'lama-7b'", "neither an existing directory nor a Hugging Face repo id")
