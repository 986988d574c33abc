"""Where a release's files go on disk: one workspace per release, models shared between releases."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel

from trtllm_oci.spec import ReleaseSpec

HOME_ENV = "TRTLLM_OCI_HOME"


def trtllm_oci_home() -> Path:
    return Path(os.environ.get(HOME_ENV) or Path.home() / ".cache" / "trtllm-oci").expanduser()


class Workspace(BaseModel):
    root: Path
    models: Path

    @classmethod
    def for_release(cls, spec: ReleaseSpec, out_dir: str | Path | None = None) -> Workspace:
        home = trtllm_oci_home()
        root = Path(out_dir).expanduser() if out_dir else home / "releases" / spec.release_id
        root.mkdir(parents=True, exist_ok=True)
        return cls(root=root.resolve(), models=home / "models")

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
