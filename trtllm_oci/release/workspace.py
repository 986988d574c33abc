"""Where a release's files go on disk: one workspace per release (models are shared, under settings)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from trtllm_oci.files import path_inside
from trtllm_oci.settings import Settings
from trtllm_oci.spec import ReleaseSpec


class Workspace(BaseModel):
    root: Path

    @classmethod
    def for_release(cls, spec: ReleaseSpec, settings: Settings, out_dir: str | Path | None = None) -> Workspace:
        """`out_dir` when the caller names one, else `<TRTLLM_OCI_HOME>/releases/<release id>`, which must stay
        there (the spec checks the name; a link planted under releases/ must not carry the workspace away)."""
        if out_dir:
            root = Path(out_dir).expanduser()
        else:
            root = path_inside(settings.releases_dir, spec.release_id, "the release name")
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
