"""PNG charts of a summary table (matplotlib Agg, no display needed)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def _series(df: pd.DataFrame):
    keys = [k for k in ("transport", "isl_requested", "osl_requested", "load_mode") if k in df.columns]
    for key, group in df.groupby(keys, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        label = " ".join(
            f"{int(v)}" if isinstance(v, float) and v == v else str(v)
            for v in key
            if not (isinstance(v, float) and v != v)
        )
        yield label, group.sort_values("out_tok_s")


def plot_summary(df: pd.DataFrame, out_dir: str | Path) -> list[Path]:
    """throughput_vs_latency.png (out tok/s vs TTFT and TPOT) and pareto.png (tok/s/user vs tok/s/GPU)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    fig, (ax_ttft, ax_tpot) = plt.subplots(1, 2, figsize=(11, 4.2))
    for label, group in _series(df):
        ax_ttft.plot(group["out_tok_s"], group["ttft_ms_p50"], "o-", label=f"{label} p50")
        ax_ttft.plot(group["out_tok_s"], group["ttft_ms_p99"], "x--", label=f"{label} p99")
        ax_tpot.plot(group["out_tok_s"], group["tpot_ms_p50"], "o-", label=f"{label} p50")
        ax_tpot.plot(group["out_tok_s"], group["tpot_ms_p99"], "x--", label=f"{label} p99")
    for ax, name in ((ax_ttft, "TTFT (ms)"), (ax_tpot, "TPOT (ms)")):
        ax.set_xlabel("output tokens/s")
        ax.set_ylabel(name)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("Throughput vs latency")
    fig.tight_layout()
    path = out / "throughput_vs_latency.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    paths.append(path)

    fig, ax = plt.subplots(figsize=(6, 4.5))
    per_gpu = "out_tok_s_per_gpu" if df["out_tok_s_per_gpu"].notna().any() else "out_tok_s"
    for label, group in _series(df):
        ax.plot(group[per_gpu], group["tok_s_per_user_p50"], "o-", label=label)
    ax.set_xlabel(
        "output tokens/s per GPU" if per_gpu == "out_tok_s_per_gpu" else "output tokens/s (gpu_count unknown)"
    )
    ax.set_ylabel("output tokens/s per user (1000 / TPOT p50)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title("Tokens/s per user vs tokens/s per GPU")
    fig.tight_layout()
    path = out / "pareto.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    paths.append(path)
    return paths
