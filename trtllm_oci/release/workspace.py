"""Where a release's files go on disk: one workspace per release (models are shared, under settings)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from trtllm_oci.settings import Settings
from trtllm_oci.spec import ReleaseSpec


class Workspace(BaseModel):
    root: Path

    @classmethod
    def for_release(cls, spec: ReleaseSpec, settings: Settings, out_dir: str | Path | None = None) -> Workspace:
        root = Path(out_dir).expanduser() if out_dir else settings.releases_dir / spec.release_id
        root.mkdir(parents=True, exist_ok=True)
        return cls(root=root.resolve())

    @property
    def artifact_zip(self) -> Path:
        return self.root / "model-artifact.zip"

    @property
    def benchmark(self) -> Path:
        """summary.csv/parquet, requests.*, plots: at the top of the workspace, where users look first."""
        return self.root

    @property
    def report(self) -> Path:
        return self.root / "report.md"
