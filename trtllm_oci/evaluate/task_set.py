"""An evaluation task set: a directory of lm-eval task YAMLs and the data files they name (relative to it),
local or a Hugging Face dataset repository at a pinned commit. Its digest covers every file, so a changed
prompt or answer gives a new baseline key."""

from __future__ import annotations

import hashlib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from trtllm_oci.evaluate.harness import TaskInfo, TaskSetLoadError


class PreparedTaskSet(BaseModel):
    """A task set on this host, checked before serving: its tasks load, and what they report."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    task_dir: Path
    digest: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")
    origin: str = Field(description="Where it came from: a local path, or hf:<repo>@<commit>")
    tasks: list[TaskInfo]
    limit: int | None = None
    harness: str

    @property
    def task_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.tasks)

    @property
    def reads_prompt_logprobs(self) -> list[str]:
        return [t.name for t in self.tasks if t.reads_prompt_logprobs]


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(root).parts))


def task_set_digest(root: Path) -> str:
    """sha256 over each file's relative path and bytes (hidden files and directories, e.g. .cache, left out)."""
    root = Path(root)
    if not root.is_dir():
        raise TaskSetLoadError(f"evaluation task set {root} is not a directory of lm-eval task YAMLs")
    files = _files(root)
    if not any(p.suffix in (".yaml", ".yml") for p in files):
        raise TaskSetLoadError(f"evaluation task set {root} holds no task YAML (*.yaml); it needs lm-eval task "
                               "configs and the data files they name")
    digest = hashlib.sha256()
    for path in files:
        name = path.relative_to(root).as_posix().encode("utf-8")
        data = path.read_bytes()
        digest.update(len(name).to_bytes(8, "big") + name + len(data).to_bytes(8, "big"))
        digest.update(data)
    return f"sha256:{digest.hexdigest()}"


def download_task_set(repo_id: str, revision: str, dest_dir: Path, token: str | None = None,
                      endpoint: str | None = None) -> Path:
    """The dataset repository's files at `revision` (a commit) in `dest_dir` (the download stage's step)."""
    from huggingface_hub import snapshot_download

    snapshot_download(repo_id=repo_id, repo_type="dataset", revision=revision, local_dir=str(dest_dir),
                      token=token, endpoint=endpoint)
    return Path(dest_dir)
