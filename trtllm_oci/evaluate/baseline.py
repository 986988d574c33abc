"""The source's scores, kept so a rebuild of another quantization compares against them without serving the
source again. Keyed by what decides them: the source commit, the task set's content and the tasks run, the
document limit, and the harness version (with the gate's protocol). One JSON file per key, written by
stage-then-rename; an entry that does not parse or whose inputs do not match its name is moved aside and
measured again.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from trtllm_oci.evaluate.harness import HarnessScores
from trtllm_oci.files import write_atomic

logger = logging.getLogger(__name__)


class BaselineKey(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    source_commit: str = Field(min_length=1, description="The source model's commit (or local content hash)")
    task_set_digest: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")
    tasks: tuple[str, ...] = Field(min_length=1)
    limit: int | None = None
    harness: str = Field(description="harness_version(): the harness release and the gate protocol")

    @property
    def digest(self) -> str:
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class Baseline(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str
    inputs: BaselineKey
    scores: HarnessScores
    source: str = Field(description="What was served as the source, in words")
    measured_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


class BaselineStore:
    """Baselines under `root` (a local directory beside the engine cache)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def get(self, inputs: BaselineKey) -> Baseline | None:
        path = self.path(inputs.digest)
        if not path.is_file():
            return None
        try:
            baseline = Baseline.model_validate_json(path.read_text(encoding="utf-8"))
        except (OSError, ValidationError, ValueError) as exc:
            self._quarantine(path, f"unreadable: {exc}")
            return None
        if baseline.key != inputs.digest or baseline.inputs != inputs:
            self._quarantine(path, "its inputs do not match its key")
            return None
        return baseline

    def put(self, inputs: BaselineKey, scores: HarnessScores, source: str) -> Baseline:
        baseline = Baseline(key=inputs.digest, inputs=inputs, scores=scores, source=source)
        self.root.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path(baseline.key), baseline.model_dump_json(indent=2) + "\n")
        return baseline

    def _quarantine(self, path: Path, reason: str) -> None:
        aside = path.with_name(f"{path.name}.bad-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}")
        path.rename(aside)
        logger.warning("baseline %s %s; moved to %s, the source will be measured again", path, reason, aside)
