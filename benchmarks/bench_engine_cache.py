"""Cost of an engine cache hit vs. copying the engine bytes.

Publishes a fake engine of --size-gb (sparse rank files made with truncate, so no disk is consumed)
into a LocalEngineStore, then times a hit: `build_once` (verified lookup) + `materialize` (stored
path) + `materialize(dest)` (hard-link tree). It checks the hit takes under --max-hit-s and writes
no engine bytes (this process's `wchar` from /proc/self/io), then times a copy of the same bytes on
the same disk for comparison:

- `--copy full`: shutil.copyfile of the real rank files (writes --size-gb of dense data; needs that
  much free space),
- `--copy sample` (default): a dense (random-content) sample of --sample-gb is written, fsynced,
  then copied + fsynced; the time is scaled linearly to --size-gb and labelled EXTRAPOLATED.

Exit status 1 if the hit is slower than --max-hit-s or writes engine bytes.
    python benchmarks/bench_engine_cache.py --size-gb 20
    python benchmarks/bench_engine_cache.py --size-gb 0.5 --sample-gb 0.1   # CI smoke
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trtllm_oci.build.engine_config import engine_summarizer  # noqa: E402
from trtllm_oci.cache.build_once import build_once  # noqa: E402
from trtllm_oci.cache.key import EngineCacheKey  # noqa: E402
from trtllm_oci.cache.local_store import LocalEngineStore  # noqa: E402

GiB = 1024**3


def _wchar() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise RuntimeError("/proc/self/io has no wchar line")


# A real version from the table: the cache names and checks rank files per version.
TRTLLM_VERSION = "0.14.0"

def _fake_engine(out: Path, total_bytes: int, tp: int) -> None:
    (out / "config.json").write_text(json.dumps({
        "version": TRTLLM_VERSION,
        "pretrained_config": {"architecture": "LlamaForCausalLM", "dtype": "float16",
                              "mapping": {"world_size": tp, "tp_size": tp, "pp_size": 1}},
        "build_config": {"max_batch_size": 64, "max_input_len": 4096, "max_seq_len": 8192, "max_num_tokens": 8192},
    }))
    per_rank = total_bytes // tp
    for r in range(tp):
        with (out / f"rank{r}.engine").open("wb") as f:
            f.truncate(per_rank)


def _timed_copy(src: Path, dst: Path) -> float:
    started = time.perf_counter()
    shutil.copyfile(src, dst)
    with dst.open("rb+") as f:
        os.fsync(f.fileno())
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-gb", type=float, default=20.0, help="engine size in GiB (default 20)")
    parser.add_argument("--tp", type=int, default=2, help="ranks (files) the engine is split into")
    parser.add_argument("--dir", type=Path, default=None, help="work dir (default: a temp dir, removed after)")
    parser.add_argument("--copy", choices=("sample", "full"), default="sample")
    parser.add_argument("--sample-gb", type=float, default=1.0, help="dense sample size for --copy sample")
    parser.add_argument("--max-hit-s", type=float, default=2.0)
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="bench-engine-cache-", dir=args.dir))
    try:
        total = int(args.size_gb * GiB)
        store = LocalEngineStore(work / "cache")
        inputs = EngineCacheKey(model_commit_sha="0" * 40, quantization="fp8", kv_cache_dtype="fp8", tp=args.tp,
                                pp=1, build_options={"max_batch_size": 64, "max_seq_len": 8192},
                                trtllm_version=TRTLLM_VERSION, image_digest="sha256:" + "0" * 64, gpu_arch="sm90")

        started = time.perf_counter()
        manifest, hit = build_once(inputs, store, lambda d: _fake_engine(d, total, args.tp), engine_summarizer(TRTLLM_VERSION))
        publish_s = time.perf_counter() - started
        assert not hit
        print(f"engine: {args.size_gb:g} GiB in {args.tp} sparse rank files; publish (move + sha256 of all bytes): "
              f"{publish_s:.2f} s")

        written_before = _wchar()
        started = time.perf_counter()
        manifest_hit, hit = build_once(inputs, store, lambda d: (_ for _ in ()).throw(AssertionError("rebuilt")), engine_summarizer(TRTLLM_VERSION))
        stored = store.materialize(manifest_hit)
        linked = store.materialize(manifest_hit, work / "serving" / "engine")
        hit_s = time.perf_counter() - started
        hit_written = _wchar() - written_before
        same_inode = all((linked / f.path).stat().st_ino == (stored / f.path).stat().st_ino for f in manifest.files)
        print(f"cache hit (lookup + verify + materialize + hard-link tree): {hit_s * 1000:.1f} ms, "
              f"bytes written by this process: {hit_written}, hard links share inodes: {same_inode}")

        copy_dir = work / "copy"
        copy_dir.mkdir()
        if args.copy == "full":
            copy_s = sum(_timed_copy(stored / f.path, copy_dir / f.path) for f in manifest.files)
            label = f"measured: shutil.copyfile + fsync of the {args.size_gb:g} GiB rank files"
        else:
            sample = min(int(args.sample_gb * GiB), total)
            block = os.urandom(8 * 1024 * 1024)
            src = copy_dir / "sample.src"
            with src.open("wb") as f:
                left = sample
                while left > 0:
                    left -= f.write(block[:min(left, len(block))])
                f.flush()
                os.fsync(f.fileno())
            sample_s = _timed_copy(src, copy_dir / "sample.dst")
            copy_s = sample_s * total / sample
            label = (f"EXTRAPOLATED: shutil.copyfile + fsync of a {sample / GiB:g} GiB dense sample took "
                     f"{sample_s:.2f} s, scaled linearly x{total / sample:.1f}")
        print(f"copy of the same bytes on the same disk: {copy_s:.2f} s ({label})")
        print(f"ratio copy / hit: {copy_s / max(hit_s, 1e-9):.0f}x")

        ok = hit_s < args.max_hit_s and hit_written < 1024 * 1024 and same_inode
        print("PASS" if ok else f"FAIL: hit must take < {args.max_hit_s} s and write no engine bytes")
        return 0 if ok else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
