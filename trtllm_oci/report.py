"""The report every release run ends with: what was built, where, cache hits, endpoint, benchmark headline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field


class ReleaseReport(BaseModel):
    release_id: str
    model: str
    model_commit: str
    plan: str | None = Field(description="the planner's verdict in words, or None without a target shape")
    engine_key: str
    engine_uri: str
    engine_cache_hit: bool
    backend: str
    repository: Path
    image: str | None = None
    deployment_id: str | None = None
    endpoint: str | None = None
    benchmark: dict[str, Any] | None = None
    result_files: dict[str, str] = Field(default_factory=dict)


def _fmt(value: Any) -> str:
    return f"{value:,.2f}" if isinstance(value, float) else str(value)


def report_markdown(report: ReleaseReport) -> str:
    backend = (
        "CPU reference backend (PyTorch on CPU, **not TensorRT-LLM**; a smoke test of the pipeline)"
        if report.backend == "reference"
        else "TensorRT-LLM"
    )
    lines = [
        f"# Release {report.release_id}",
        "",
        "| | |",
        "|---|---|",
        f"| model | `{report.model}` (commit `{report.model_commit}`) |",
        f"| backend | {backend} |",
        f"| capacity plan | {report.plan or 'no target shape to plan against'} |",
        f"| engine | `{report.engine_key[:16]}…` {'reused from the engine cache' if report.engine_cache_hit else 'built'} "
        f"at `{report.engine_uri}` |",
        f"| model repository | `{report.repository}` |",
        f"| serving image | `{report.image or 'none (local target)'}` |",
        f"| endpoint | {report.endpoint or 'local Triton (stopped after the benchmark)'} |",
    ]
    if report.deployment_id:
        lines.append(f"| model deployment | `{report.deployment_id}` |")
    if report.benchmark:
        lines += ["", "## Benchmark headline", "", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {_fmt(v)} |" for k, v in report.benchmark.items()]
    if report.result_files:
        lines += ["", "## Results", ""]
        lines += [f"- {name}: `{path}`" for name, path in report.result_files.items()]
    return "\n".join(lines) + "\n"
