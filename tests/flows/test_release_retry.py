"""A release whose stage fails once still completes, without redoing the stages that had finished."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.prefect


def test_a_stage_failing_once_is_retried_without_redoing_finished_stages(
    prefect_api: str, tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import trtllm_oci.backends.reference as reference_backend
    import trtllm_oci.tasks.report as report_tasks
    from trtllm_oci.flows.release import release
    from trtllm_oci.release.demo import demo_spec

    monkeypatch.setenv("TRTLLM_OCI_CACHE", str(tmp_path / "engines"))
    builds: list[str] = []
    real_build = reference_backend.build_reference_engine

    def counting_build(*args, **kwargs):
        builds.append("build")
        return real_build(*args, **kwargs)

    monkeypatch.setattr(reference_backend, "build_reference_engine", counting_build)
    failures = {"left": 1}
    real_markdown = report_tasks.report_markdown

    def flaky_markdown(report):
        if failures["left"]:
            failures["left"] -= 1
            raise ConnectionError("artifact store hiccup (injected by the test)")
        return real_markdown(report)

    monkeypatch.setattr(report_tasks, "report_markdown", flaky_markdown)
    spec = demo_spec(tiny_model_dir)
    spec.benchmark.enabled = False

    state = release.with_options(retry_delay_seconds=0)(spec, out_dir=str(tmp_path / "out"), return_state=True)

    assert state.is_completed(), state
    report = state.result()
    assert failures["left"] == 0, "the injected failure did not happen"
    assert builds == ["build"], "the finished build stage ran again on the retry"
    assert (tmp_path / "out" / "report.md").read_text().startswith("# Release demo-")
    assert report.engine_cache_hit is False
