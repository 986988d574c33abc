"""Content-addressed engine cache: keys, local store (publish/lookup/materialize/evict), build_once."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import threading
import time
from pathlib import Path

import pytest

from trtllm_oci.build.engine_config import engine_summarizer
from trtllm_oci.cache.build_once import build_once, lock_manager_lock
from trtllm_oci.cache.key import EngineCacheKey, cache_key, canonical_key_json
from trtllm_oci.cache.local_store import LocalEngineStore
from trtllm_oci.cache.manifest import EngineManifest, EngineStore, EngineValidationError, MaterializeError

DIGEST = "sha256:" + "d" * 64
# The fake engines below are trtllm-build 0.14.0 layouts.
SUMMARIZE = engine_summarizer("0.14.0")


def make_inputs(**overrides: object) -> EngineCacheKey:
    fields: dict[str, object] = {
        "model_commit_sha": "a" * 40, "quantization": "fp8", "kv_cache_dtype": "fp8", "tp": 2, "pp": 1,
        "build_options": {"max_batch_size": 64, "max_seq_len": 8192, "use_paged_context_fmha": True},
        "trtllm_version": "0.14.0", "image_digest": DIGEST, "gpu_arch": "sm90",
    }
    fields.update(overrides)
    return EngineCacheKey(**fields)  # type: ignore[arg-type]


def write_fake_engine(out: Path, tp: int = 2, pp: int = 1, rank_bytes: int = 4096, world_size: int | None = None,
                      sparse: bool = False) -> Path:
    """An engine dir shaped like trtllm-build output: config.json + rank{r}.engine."""
    out.mkdir(parents=True, exist_ok=True)
    world = world_size if world_size is not None else tp * pp
    (out / "config.json").write_text(json.dumps({
        "version": "0.14.0",
        "pretrained_config": {"architecture": "LlamaForCausalLM", "dtype": "float16",
                              "mapping": {"world_size": world, "tp_size": tp, "pp_size": pp},
                              "quantization": {"quant_algo": "FP8", "kv_cache_quant_algo": "FP8"}},
        "build_config": {"max_batch_size": 64, "max_input_len": 4096, "max_seq_len": 8192, "max_num_tokens": 8192},
    }))
    for r in range(world):
        with (out / f"rank{r}.engine").open("wb") as f:
            if sparse:
                f.truncate(rank_bytes)
            else:
                f.write(bytes([r % 256]) * rank_bytes)
    return out


def _wchar() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise AssertionError("no wchar in /proc/self/io")


# ---------------------------------------------------------------------------------------------- keys


def test_cache_key_is_stable_and_ignores_dict_order_and_integral_float_spelling() -> None:
    a = make_inputs(build_options={"max_batch_size": 64, "max_seq_len": 8192})
    b = make_inputs(build_options={"max_seq_len": 8192.0, "max_batch_size": 64})
    assert cache_key(a) == cache_key(b)
    assert len(cache_key(a)) == 64
    assert canonical_key_json(a) == canonical_key_json(b)
    assert json.loads(canonical_key_json(a))["schema"] == 1


@pytest.mark.parametrize("change", [
    {"model_commit_sha": "b" * 40}, {"quantization": "int4_awq"}, {"kv_cache_dtype": "auto"}, {"tp": 4},
    {"pp": 2}, {"build_options": {"max_batch_size": 128, "max_seq_len": 8192, "use_paged_context_fmha": True}},
    {"build_options": {"max_batch_size": 64, "max_seq_len": 8192, "use_paged_context_fmha": False}},
    {"build_options": {"max_batch_size": 64, "max_seq_len": 8192}},
    {"trtllm_version": "0.20.0"}, {"image_digest": "sha256:" + "e" * 64}, {"gpu_arch": "sm80"},
])
def test_changing_any_input_changes_the_key(change: dict[str, object]) -> None:
    assert cache_key(make_inputs(**change)) != cache_key(make_inputs())


def test_non_integral_floats_are_kept_distinct() -> None:
    assert cache_key(make_inputs(build_options={"x": 0.1})) != cache_key(make_inputs(build_options={"x": 0.10001}))


@pytest.mark.parametrize(("change", "match"), [
    ({"image_digest": "nvcr.io/nvidia/tritonserver:25.01-trtllm-python-py3"}, "not a content digest"),
    ({"gpu_arch": "H100"}, "sm90"),
    ({"tp": 0}, "greater than or equal to 1"),
    ({"quantization": ""}, "at least 1 character"),
])
def test_bad_key_inputs_are_rejected_with_the_fix(change: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make_inputs(**change)


def test_nan_in_build_options_is_rejected() -> None:
    with pytest.raises(ValueError, match="non-finite"):
        cache_key(make_inputs(build_options={"x": float("nan")}))


# ---------------------------------------------------------------------------------------- local store


def test_miss_publish_then_hit_without_copying_engine_bytes(tmp_path: Path) -> None:
    store = LocalEngineStore(tmp_path / "cache")
    assert isinstance(store, EngineStore)
    inputs = make_inputs()
    key = cache_key(inputs)
    assert store.lookup(key) is None
    built_inodes: dict[str, int] = {}

    def build(build_dir: Path) -> Path:
        write_fake_engine(build_dir, rank_bytes=1 << 20)
        built_inodes.update({p.name: p.stat().st_ino for p in build_dir.iterdir()})
        return build_dir

    manifest, hit = build_once(inputs, store, build, SUMMARIZE)
    assert hit is False
    assert manifest.key == key and manifest.artifact.world_size == 2 and manifest.artifact.max_seq_len == 8192
    assert sorted(f.path for f in manifest.files) == ["config.json", "rank0.engine", "rank1.engine"]
    assert EngineManifest.model_validate_json(manifest.model_dump_json()) == manifest
    assert len(manifest.model_dump_json()) < 4096
    stored = store.materialize(manifest)
    # publish moved the build output (same inodes), it did not copy it
    assert {p.name: p.stat().st_ino for p in stored.iterdir()} == built_inodes
    assert manifest.uri == stored.resolve().as_uri()

    written_before = _wchar()
    again, hit = build_once(inputs, store, lambda d: pytest.fail("must not rebuild on a hit"), SUMMARIZE)
    path = store.materialize(again)
    linked = store.materialize(again, tmp_path / "serving" / "engine")
    written = _wchar() - written_before
    assert hit is True and again == manifest and path == stored
    assert written < 64 * 1024, f"a cache hit wrote {written} bytes"
    for f in manifest.files:
        assert (linked / f.path).stat().st_ino == (stored / f.path).stat().st_ino
    assert (stored / "rank0.engine").stat().st_nlink == 2


def test_materialize_refuses_to_copy_across_filesystems(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = LocalEngineStore(tmp_path / "cache")
    manifest, _ = build_once(make_inputs(), store, lambda d: write_fake_engine(d), SUMMARIZE)

    def cross_device(src: object, dst: object) -> None:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", cross_device)
    with pytest.raises(MaterializeError, match="same filesystem"):
        store.materialize(manifest, tmp_path / "elsewhere")


def test_publish_by_copy_leaves_the_source_and_dedups_a_second_publish(tmp_path: Path) -> None:
    store = LocalEngineStore(tmp_path / "cache")
    inputs = make_inputs()
    src = write_fake_engine(tmp_path / "built")
    first = store.publish(cache_key(inputs), src, inputs, SUMMARIZE)
    assert (src / "rank0.engine").is_file()
    second = store.publish(cache_key(inputs), write_fake_engine(tmp_path / "built2"), inputs, SUMMARIZE)
    assert second == first
    assert list((tmp_path / "cache" / "tmp").iterdir()) == []


@pytest.mark.parametrize(("kwargs", "remove", "match"), [
    ({"world_size": 1}, None, r"world_size 1 != tp_size 2 × pp_size 1"),
    ({}, "rank1.engine", r"lacks \['rank1.engine'\]"),
    ({}, "config.json", "config.json does not exist"),
])
def test_publish_rejects_engines_that_do_not_match_the_key(tmp_path: Path, kwargs: dict[str, int],
                                                           remove: str | None, match: str) -> None:
    store = LocalEngineStore(tmp_path / "cache")
    inputs = make_inputs()
    built = write_fake_engine(tmp_path / "built", **kwargs)
    if remove:
        (built / remove).unlink()
    with pytest.raises(EngineValidationError, match=match):
        store.publish(cache_key(inputs), built, inputs, SUMMARIZE)
    assert list(store.entries.iterdir()) == [] and list(store.tmp.iterdir()) == []


def test_publish_rejects_a_key_that_is_not_the_inputs_hash(tmp_path: Path) -> None:
    store = LocalEngineStore(tmp_path / "cache")
    with pytest.raises(ValueError, match="not cache_key"):
        store.publish("0" * 64, write_fake_engine(tmp_path / "b"), make_inputs(), SUMMARIZE)


def test_failed_build_leaves_nothing_that_looks_complete(tmp_path: Path) -> None:
    store = LocalEngineStore(tmp_path / "cache")

    def crash(build_dir: Path) -> Path:
        write_fake_engine(build_dir)
        raise RuntimeError("trtllm-build died")

    with pytest.raises(RuntimeError, match="trtllm-build died"):
        build_once(make_inputs(), store, crash, SUMMARIZE)
    assert list(store.entries.iterdir()) == [] and list(store.tmp.iterdir()) == []


def test_stale_tmp_dirs_of_dead_processes_are_cleaned(tmp_path: Path) -> None:
    store = LocalEngineStore(tmp_path / "cache")
    dead = multiprocessing.get_context("fork").Process(target=lambda: None)
    dead.start()
    dead.join()
    stale = store.tmp / f"{'1' * 64}.{dead.pid}.abcd1234.publish"
    alive = store.tmp / f"{'1' * 64}.1.abcd1234.publish"  # pid 1 is alive
    for d in (stale, alive):
        (d / "engine").mkdir(parents=True)
    assert store.clean_stale_tmp() == [stale]
    assert alive.exists() and not stale.exists()


# ------------------------------------------------------------------------------------------ corruption


def _published(tmp_path: Path) -> tuple[LocalEngineStore, EngineManifest]:
    store = LocalEngineStore(tmp_path / "cache")
    manifest, _ = build_once(make_inputs(), store, lambda d: write_fake_engine(d, rank_bytes=8192), SUMMARIZE)
    return store, manifest


def _assert_quarantined(store: LocalEngineStore, key: str, reason_part: str, caplog: pytest.LogCaptureFixture) -> None:
    assert not (store.entries / key).exists()
    quarantined = list(store.quarantine_dir.glob(f"{key}.*"))
    assert len(quarantined) == 1
    assert reason_part in (quarantined[0] / "QUARANTINE_REASON.txt").read_text()
    assert any(reason_part in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)


@pytest.mark.parametrize(("damage", "reason"), [
    ("truncate", "truncated"),
    ("delete", "rank1.engine is missing"),
    ("bad-json", "manifest.json is unreadable"),
    ("no-manifest", "manifest.json is missing"),
    ("same-size-new-mtime", "sha256"),
])
def test_corrupt_entry_is_a_miss_and_is_quarantined_then_rebuilt(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                                 damage: str, reason: str) -> None:
    caplog.set_level(logging.WARNING)
    store, manifest = _published(tmp_path)
    entry = store.entries / manifest.key
    rank1 = entry / "engine" / "rank1.engine"
    if damage == "truncate":
        os.truncate(rank1, 100)
    elif damage == "delete":
        rank1.unlink()
    elif damage == "bad-json":
        (entry / "manifest.json").write_text('{"key": ')
    elif damage == "no-manifest":
        (entry / "manifest.json").unlink()
    elif damage == "same-size-new-mtime":
        rank1.write_bytes(b"\xff" * 8192)
    assert store.lookup(manifest.key) is None
    _assert_quarantined(store, manifest.key, reason, caplog)
    rebuilt, hit = build_once(make_inputs(), store, lambda d: write_fake_engine(d, rank_bytes=8192), SUMMARIZE)
    assert hit is False and rebuilt.files == manifest.files


def test_touched_but_intact_file_is_rehashed_and_accepted(tmp_path: Path) -> None:
    store, manifest = _published(tmp_path)
    rank0 = store.entries / manifest.key / "engine" / "rank0.engine"
    os.utime(rank0, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert store.lookup(manifest.key) == manifest
    stats = json.loads((store.entries / manifest.key / "stat.json").read_text())
    assert stats["rank0.engine"][1] == rank0.stat().st_mtime_ns  # sidecar refreshed: next lookup is cheap again


def test_same_size_edit_with_restored_mtime_needs_full_verification(tmp_path: Path,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    store, manifest = _published(tmp_path)
    rank0 = store.entries / manifest.key / "engine" / "rank0.engine"
    st = rank0.stat()
    with rank0.open("r+b") as f:  # same inode, same size
        f.write(b"\x7f" * 16)
    os.utime(rank0, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert store.lookup(manifest.key) == manifest  # the documented blind spot of the cheap check
    assert store.lookup(manifest.key, verify_checksums=True) is None
    _assert_quarantined(store, manifest.key, "sha256", caplog)


def test_evict_removes_the_entry(tmp_path: Path) -> None:
    store, manifest = _published(tmp_path)
    assert store.evict(manifest.key) is True
    assert store.lookup(manifest.key) is None and store.evict(manifest.key) is False


def test_bad_key_string_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="sha256 hex"):
        LocalEngineStore(tmp_path / "c").lookup("../etc")


# ----------------------------------------------------------------------------------------- concurrency


def _slow_build_in_child(root: str, log: str, result_file: str) -> None:
    store = LocalEngineStore(Path(root))

    def build(build_dir: Path) -> Path:
        with open(log, "a") as f:
            f.write(f"{os.getpid()}\n")
        time.sleep(1.0)
        return write_fake_engine(build_dir)

    manifest, hit = build_once(make_inputs(), store, build, SUMMARIZE)
    Path(result_file).write_text(json.dumps({"key": manifest.key, "hit": hit}))


def test_two_processes_build_the_same_key_once(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    log = tmp_path / "builds.log"
    procs = [ctx.Process(target=_slow_build_in_child, args=(str(tmp_path / "cache"), str(log),
                                                            str(tmp_path / f"r{i}.json"))) for i in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert len(log.read_text().splitlines()) == 1
    results = [json.loads((tmp_path / f"r{i}.json").read_text()) for i in range(2)]
    assert results[0]["key"] == results[1]["key"] == cache_key(make_inputs())
    assert sorted(r["hit"] for r in results) == [False, True]


def test_prefect_lock_manager_adapter_excludes_a_second_holder(tmp_path: Path) -> None:
    from prefect.locking.filesystem import FileSystemLockManager

    manager = FileSystemLockManager(tmp_path / "locks")
    first = lock_manager_lock(manager, holder="run-a")
    second = lock_manager_lock(manager, holder="run-b", acquire_timeout=0.3)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with first("k"):
            held.set()
            release.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    held.wait(10)
    try:
        with pytest.raises(TimeoutError, match="another run is still building"), second("k"):
            pass
    finally:
        release.set()
        t.join()
    with second("k"):
        assert manager.is_lock_holder("engine-build-k", "run-b")
