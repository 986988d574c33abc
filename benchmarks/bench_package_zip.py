"""Zip packaging throughput vs a plain copy of the same bytes on the same disk.

    python benchmarks/bench_package_zip.py [--size-mb 300] [--dir /path/on/disk]

Writes a fake repository with `--size-mb` of random engine bytes (2 rank files), then times
package_repository (stored ZIP64 + sha256 pass) and shutil.copyfile of the same files. The ratio shows what
the zip format and the hash cost over raw I/O; page cache effects apply equally to both (both read the
same just-written files).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from trtllm_oci.repo.package import package_repository


def _fake_repo(root: Path, size_bytes: int) -> list[Path]:
    engine = root / "engine"
    engine.mkdir(parents=True)
    (root / "model_repository" / "tensorrt_llm" / "1").mkdir(parents=True)
    (root / "model_repository" / "tensorrt_llm" / "config.pbtxt").write_text('name: "tensorrt_llm"\n')
    (engine / "config.json").write_text(json.dumps({"version": "1.2.1"}))
    files = []
    block = os.urandom(1 << 20)
    for rank in range(2):
        path = engine / f"rank{rank}.engine"
        with path.open("wb") as f:
            for _ in range(size_bytes // 2 // len(block)):
                f.write(block)
        files.append(path)
    return files


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mb", type=int, default=300, help="engine bytes to package (default 300)")
    parser.add_argument(
        "--dir", type=Path, default=None, help="scratch dir on the disk to measure (default: tmp)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as scratch:
        scratch_path = Path(scratch)
        repo = scratch_path / "repo"
        files = _fake_repo(repo, args.size_mb * 1024 * 1024)
        total = sum(p.stat().st_size for p in repo.rglob("*") if p.is_file())

        start = time.perf_counter()
        copy_dir = scratch_path / "copy"
        copy_dir.mkdir()
        for path in repo.rglob("*"):
            if path.is_file():
                dst = copy_dir / path.relative_to(repo)
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, dst)
        os.sync()
        copy_s = time.perf_counter() - start

        start = time.perf_counter()
        result = package_repository(repo, scratch_path / "artifact.zip")
        os.sync()
        zip_s = time.perf_counter() - start

    mib = total / (1 << 20)
    print(f"bytes: {total} ({mib:.1f} MiB in {len(files)} engine files)")
    print(f"plain copy: {copy_s:.3f} s  {mib / copy_s:.1f} MiB/s")
    print(f"zip+sha256: {zip_s:.3f} s  {mib / zip_s:.1f} MiB/s  (zip {result.size_bytes} bytes)")
    print(f"ratio zip/copy time: {zip_s / copy_s:.2f}")


if __name__ == "__main__":
    main()
