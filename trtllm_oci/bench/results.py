"""Write benchmark tables to disk and render them for Prefect artifacts."""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from trtllm_oci.bench.columns import REQUIRED_SUMMARY_CSV_COLUMNS
from trtllm_oci.bench.errors import BenchInputError
from trtllm_oci.shapes import UNKNOWN_PRICE

# Columns shown in the markdown summary and the table artifact (all columns stay in the files).
SUMMARY_VIEW = (
    "transport",
    "isl_requested",
    "osl_requested",
    "load_mode",
    "concurrency",
    "target_rps",
    "repeat",
    "n_ok",
    "n_err",
    "req_s",
    "out_tok_s",
    "out_tok_s_per_gpu",
    "ttft_ms_p50",
    "ttft_ms_p99",
    "tpot_ms_p50",
    "tpot_ms_p99",
    "itl_ms_p50",
    "e2e_ms_p50",
    "goodput_frac",
    "roofline_eff",
    "usd_per_1M_out",
    "usd_per_1M_out_at_slo",
    "token_count_source",
    "flags",
)
SLO_ATTAINMENT = 0.95


def _atomic_write(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_results(summary: pd.DataFrame, requests: pd.DataFrame, out_dir: str | Path) -> dict[str, Path]:
    """summary/requests as Parquet and CSV in out_dir (each file replaced atomically)."""
    missing = [c for c in REQUIRED_SUMMARY_CSV_COLUMNS if c not in summary.columns]
    if missing:
        raise BenchInputError(f"summary lacks required columns {missing}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name, df in (("summary", summary), ("requests", requests)):
        for ext in ("parquet", "csv"):
            path = out / f"{name}.{ext}"
            if ext == "parquet":
                _atomic_write(path, lambda p, df=df: df.to_parquet(p, index=False))
            else:
                _atomic_write(path, lambda p, df=df: df.to_csv(p, index=False))
            paths[f"{name}_{ext}"] = path
    return paths


def ensure_writable_dir(path: str | Path, flag: str = "--out") -> Path:
    """Create `path` if needed and prove a file can be written there, before any GPU time is spent."""
    out = Path(path).expanduser()
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-check.", dir=out)
        os.close(fd)
        os.unlink(probe)
    except FileExistsError as exc:
        raise BenchInputError(f"{flag} {out} exists and is not a directory; choose a directory path") from exc
    except OSError as exc:
        raise BenchInputError(
            f"{flag} {out} is not writable ({exc.strerror or exc}); choose a directory you can write to"
        ) from exc
    return out


class ResultWriter:
    """Writes the tables (and summary.md) after every load point, the plots once at the end."""

    def __init__(self, out_dir: str | Path) -> None:
        self.out = Path(out_dir)

    def write_tables(self, result: Any) -> dict[str, Path]:
        """`result`: a runner.BenchmarkResult (summary and requests DataFrames so far)."""
        paths = write_results(result.summary, result.requests, self.out)
        summary_md = self.out / "summary.md"
        _atomic_write(summary_md, lambda p: Path(p).write_text(summary_markdown(result.summary), encoding="utf-8"))
        paths["summary_md"] = summary_md
        return paths

    def write_plots(self, result: Any) -> list[Path]:
        from trtllm_oci.bench.plots import plot_summary

        return plot_summary(result.summary, self.out)


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return round(value, 3)
    if hasattr(value, "item"):  # numpy scalars
        return _clean(value.item())
    return value


def summary_table_records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-safe rows (NaN -> None, floats rounded) of the key columns, for a Prefect table artifact."""
    columns = [c for c in SUMMARY_VIEW if c in df.columns]
    return [{c: _clean(row[c]) for c in columns} for _, row in df.iterrows()]


def best_cost_points(df: pd.DataFrame, slo_attainment: float = SLO_ATTAINMENT) -> dict[str, pd.Series | None]:
    """The highest-throughput row ("peak") and the cheapest row with goodput_frac >= slo_attainment ("slo")."""
    out: dict[str, pd.Series | None] = {"peak": None, "slo": None}
    if df.empty:
        return out
    ok = df[df["n_ok"] > 0]
    if not ok.empty:
        out["peak"] = ok.loc[ok["out_tok_s"].idxmax()]
    if "goodput_frac" in df.columns:
        within = df[df["goodput_frac"] >= slo_attainment]
        if not within.empty:
            out["slo"] = within.loc[within["goodput_out_tok_s"].idxmax()]
    return out


def _fmt(value: Any) -> str:
    value = _clean(value)
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def _usd(value: Any) -> str:
    """A cost as printed: dollars, or the unknown mark where the shape has no price (never $0)."""
    value = _clean(value)
    return UNKNOWN_PRICE if value is None else f"${_fmt(value)}"


def _cell(column: str, value: Any) -> str:
    if column.startswith("usd_") and _clean(value) is None:
        return UNKNOWN_PRICE
    return _fmt(value)


def summary_markdown(df: pd.DataFrame) -> str:
    """A markdown report: the load-point table, best points, cost, and any flags raised."""
    if df.empty:
        return "# Benchmark\n\nNo load points were run.\n"
    first = df.iloc[0]
    lines = [
        f"# Benchmark `{first.get('model', '')}` over {first.get('transport', '')}",
        "",
        f"run `{first.get('run_id', '')}` at {first.get('ts', '')}, shape `{first.get('shape', '') or '-'}`, "
        f"token counts from `{'/'.join(sorted(set(df['token_count_source'].dropna().astype(str))))}`.",
        "",
    ]
    columns = [c for c in SUMMARY_VIEW if c in df.columns]
    lines.append("| " + " | ".join(columns) + " |")
    lines.append("|" + "---|" * len(columns))
    for _, row in df.iterrows():
        lines.append("| " + " | ".join(_cell(c, row[c]) for c in columns) + " |")
    best = best_cost_points(df)
    lines.append("")
    if best["peak"] is not None:
        p = best["peak"]
        lines.append(
            f"- **Peak throughput:** {_fmt(p['out_tok_s'])} output tok/s ({_fmt(p['req_s'])} req/s) at "
            f"{p['load_mode']} {_fmt(p['concurrency'] if p['load_mode'] == 'concurrency' else p['target_rps'])}; "
            f"TTFT p50 {_fmt(p['ttft_ms_p50'])} ms, TPOT p50 {_fmt(p['tpot_ms_p50'])} ms; "
            f"{_usd(p['usd_per_1M_out'])} per 1M output tokens."
        )
    if best["slo"] is not None:
        s = best["slo"]
        lines.append(
            f"- **Best point within SLO** (>= {SLO_ATTAINMENT:.0%} of requests meet TTFT <= {_fmt(s['slo_ttft_ms'])} ms, "
            f"TPOT <= {_fmt(s['slo_tpot_ms'])} ms): {_fmt(s['goodput_out_tok_s'])} good output tok/s at "
            f"{s['load_mode']} {_fmt(s['concurrency'] if s['load_mode'] == 'concurrency' else s['target_rps'])}; "
            f"{_usd(s['usd_per_1M_out_at_slo'])} per 1M output tokens."
        )
    elif "goodput_frac" in df.columns and df["goodput_frac"].notna().any():
        lines.append(f"- **No load point met the SLOs** for {SLO_ATTAINMENT:.0%} of requests.")
    flagged = df[df["flags"].astype(str) != ""] if "flags" in df.columns else df.iloc[0:0]
    if not flagged.empty:
        lines.append("")
        lines.append("**Flags:**")
        for _, row in flagged.iterrows():
            where = f"{row['load_mode']} {_fmt(row['concurrency'] if row['load_mode'] == 'concurrency' else row['target_rps'])}"
            lines.append(f"- {where} (repeat {row['repeat']}): {row['flags']}")
    return "\n".join(lines) + "\n"
