"""The source's scores, kept so a rebuild of another quantization compares against them without serving the
source again. Keyed by what decides them: the source commit, the task set's content and the tasks run, the
document limit, and the harness version (with the gate's protocol). One JSON document per key, kept where the
release's engine cache is: a local directory (written by stage-then-rename), or the cache's Object Storage
bucket, so a scheduled rebuild on another worker host finds the baseline too. An entry that does not parse or
whose inputs do not match its name is set aside and measured again.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

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


class BaselineDocuments(Protocol):
    """Where baseline documents live: `name` is `<key>.json`."""

    @property
    def location(self) -> str: ...

    def read_text(self, name: str) -> str | None: ...

    def write_text(self, name: str, text: str) -> None: ...

    def set_aside(self, name: str, reason: str) -> None: ...


class LocalBaselineDocuments:
    """Baseline documents in a local directory (beside the local engine cache)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @property
    def location(self) -> str:
        return str(self.root)

    def read_text(self, name: str) -> str | None:
        path = self.root / name
        return path.read_text(encoding="utf-8") if path.is_file() else None

    def write_text(self, name: str, text: str) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        write_atomic(self.root / name, text)

    def set_aside(self, name: str, reason: str) -> None:
        path = self.root / name
        aside = path.with_name(f"{path.name}.bad-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}")
        path.rename(aside)
        logger.warning("baseline %s %s; moved to %s, the source will be measured again", path, reason, aside)


class BaselineStore:
    """Baselines by key, in `documents` (a local directory when given a path)."""

    def __init__(self, documents: BaselineDocuments | Path) -> None:
        self.documents = LocalBaselineDocuments(documents) if isinstance(documents, Path) else documents

    @staticmethod
    def name(key: str) -> str:
        return f"{key}.json"

    def get(self, inputs: BaselineKey) -> Baseline | None:
        name = self.name(inputs.digest)
        try:
            text = self.documents.read_text(name)
            if text is None:
                return None
            baseline = Baseline.model_validate_json(text)
        except (OSError, UnicodeDecodeError, ValidationError, ValueError) as exc:
            self.documents.set_aside(name, f"unreadable: {exc}")
            return None
        if baseline.key != inputs.digest or baseline.inputs != inputs:
            self.documents.set_aside(name, "its inputs do not match its key")
            return None
        return baseline

    def put(self, inputs: BaselineKey, scores: HarnessScores, source: str) -> Baseline:
        baseline = Baseline(key=inputs.digest, inputs=inputs, scores=scores, source=source)
        self.documents.write_text(self.name(baseline.key), baseline.model_dump_json(indent=2) + "\n")
        return baseline
