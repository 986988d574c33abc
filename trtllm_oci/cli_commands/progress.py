"""Download progress on the terminal (tqdm): a self-updating bar on a tty, a line every few seconds in a log."""

from __future__ import annotations

import sys
from typing import TextIO

from trtllm_oci.hub.download import ProgressCallback


def download_progress(stream: TextIO | None = None, min_interval_s: float | None = None) -> ProgressCallback:
    """A `progress(done_bytes, total_bytes, current_file)` callback that drives one tqdm bar."""
    from tqdm import tqdm

    out = stream if stream is not None else sys.stderr
    is_tty = bool(getattr(out, "isatty", lambda: False)())
    interval = min_interval_s if min_interval_s is not None else (0.2 if is_tty else 10.0)
    bar: list[tqdm] = []

    def update(done: int, total: int, current_file: str) -> None:
        if not bar:
            bar.append(tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, file=out,
                            mininterval=interval, maxinterval=max(interval, 10.0), dynamic_ncols=is_tty,
                            ascii=not is_tty, desc="download", postfix=current_file))
        progress = bar[0]
        progress.total = total
        progress.set_postfix_str(current_file, refresh=False)
        progress.update(done - progress.n)
        if total and done >= total:
            progress.close()
            bar.clear()

    return update
