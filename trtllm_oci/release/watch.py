"""Watching Hugging Face models for new releases: which revisions are new since the last look.

Pure logic; the `watch_releases` flow reads the Hub, keeps the state in Prefect Variables and starts one
`release` run per new revision. Runs are deduplicated by an idempotency key derived from the commit sha,
so two watchers that overlap start each release once.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from trtllm_oci.spec import ReleaseSpec, parse_spec


class WatchedModel(BaseModel):
    """A model to watch: its branch head and/or tags matching a glob."""

    model_config = ConfigDict(extra="forbid")

    hf_repo: str = Field(description="Hugging Face repo id, e.g. meta-llama/Llama-3.1-8B-Instruct")
    branch: str | None = Field(default="main", description="Release when this branch's head moves; None: ignore")
    tag_pattern: str | None = Field(default=None, description="Release each new tag matching this glob, e.g. v*")
    release: dict[str, Any] = Field(
        default_factory=dict,
        description="The rest of the release spec (quantization, parallelism, build, target...); model is filled in",
    )


class WatchState(BaseModel):
    """What the last look saw; stored as JSON in a Prefect Variable (values are limited to 5000 characters)."""

    branch_sha: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)


class NewRevision(BaseModel):
    hf_repo: str
    sha: str
    ref: str
    kind: Literal["branch", "tag"]

    @property
    def idempotency_key(self) -> str:
        return f"trtllm-oci-release:{self.hf_repo}@{self.sha}"


def variable_name(hf_repo: str) -> str:
    """Prefect variable names allow letters, digits, '-' and '_' (at most 255 characters)."""
    slug = re.sub(r"[^a-z0-9]+", "-", hf_repo.lower()).strip("-")[:200]
    digest = hashlib.sha256(hf_repo.encode()).hexdigest()[:8]
    return f"trtllm-oci-watch-{slug}-{digest}"


def new_revisions(
    model: WatchedModel, state: WatchState | None, branch_sha: str | None, tags: dict[str, str]
) -> tuple[list[NewRevision], WatchState]:
    """Revisions to release now, and the state to remember.

    The first look releases the branch head (adding a model to the watch list builds it once) but only
    records existing tags: releasing a model's whole tag history is never what anyone wants.
    Only the head of a branch is released, not every commit in between: each build costs GPU hours.
    """
    first_look = state is None
    state = state or WatchState()
    found: list[NewRevision] = []
    if model.branch and branch_sha and branch_sha != state.branch_sha:
        found.append(NewRevision(hf_repo=model.hf_repo, sha=branch_sha, ref=model.branch, kind="branch"))
    matching = {t: s for t, s in tags.items() if model.tag_pattern and fnmatch.fnmatchcase(t, model.tag_pattern)}
    if not first_look:
        for tag, sha in sorted(matching.items()):
            if state.tags.get(tag) != sha and all(r.sha != sha for r in found):
                found.append(NewRevision(hf_repo=model.hf_repo, sha=sha, ref=tag, kind="tag"))
    new_state = WatchState(branch_sha=branch_sha if model.branch else None, tags=matching)
    return found, new_state


def release_spec_for(model: WatchedModel, revision: NewRevision) -> ReleaseSpec:
    data = dict(model.release)
    data["model"] = {"hf_repo": model.hf_repo, "revision": revision.sha}
    return parse_spec(data, source=f"watched model {model.hf_repo}")
