"""The backend axis: each way of serving a model answers the same questions, so the release DAG stays one
DAG whatever serves the model. A backend says which stages do not apply (and why), prepares the artifact
(builds engines, quantizes a checkpoint, or takes the checkpoint as it is) through the artifact cache under
its own key inputs, writes the serving configuration, and names the image, command and routes that serve it.

Backends take typed requests (`BuildRequest`, `RepoOptions`), never the release spec: the release layer
makes those from the spec and picks the backend by `serving.backend`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from trtllm_oci.build.host import BuildHost
from trtllm_oci.build_options import BuildRequest
from trtllm_oci.cache.manifest import EngineManifest, EngineStore
from trtllm_oci.hub.snapshot import DownloadResult
from trtllm_oci.repo.assemble import RepoManifest, RepoOptions
from trtllm_oci.serving.launch import DEFAULT_TRITONSERVER, launch_argv
from trtllm_oci.versions import get_version

LogFn = Callable[[str], None]


class PreparedArtifact(BaseModel):
    """What the artifact stage hands on: the cache entry (a few KB) and whether it was reused."""

    model_config = ConfigDict(frozen=True)

    manifest: EngineManifest
    cache_hit: bool


@dataclass(frozen=True)
class BuildContext:
    """What preparing an artifact may use besides the request: where builds run and how to report."""

    host: BuildHost
    model_family: str
    log: LogFn
    oom_advice: Callable[[], str] | None = None


@dataclass(frozen=True)
class ServingPorts:
    http: int = 8000
    grpc: int = 8001
    metrics: int = 8002


@dataclass(frozen=True)
class ServingRoutes:
    """Which model the predict endpoints target; more routes join as backends need them."""

    predict_model: str
    extra: dict[str, str] = field(default_factory=dict)


class ServingBackend(ABC):
    """One way of serving a model."""

    name: str
    description: str  # how reports and logs name it
    # Whether the capacity planner's GPU-memory verdict applies (the CPU reference backend uses no GPU).
    uses_gpu: bool = True

    @abstractmethod
    def skipped_stages(self, request: BuildRequest) -> dict[str, str]:
        """Stages of the release DAG that do not apply to this request, with the reason shown in the UI."""

    def request_problems(self, request: BuildRequest, model_family: str) -> list[str]:
        """Why this backend cannot prepare `request` for a model of `model_family` (empty: it can), found
        without running anything, so the plan stage refuses it before any download or GPU time."""
        return []

    @abstractmethod
    def prepare_artifact(self, request: BuildRequest, model: DownloadResult, store: EngineStore,
                         context: BuildContext) -> PreparedArtifact:
        """Build (or reuse from `store`) what this backend serves."""

    @abstractmethod
    def write_serving_config(self, artifact_dir: Path, model: DownloadResult, out_dir: Path,
                             options: RepoOptions) -> RepoManifest:
        """The serving configuration (a Triton model repository) for a prepared artifact, written at `out_dir`."""

    def serving_image(self, trtllm_version: str) -> str:
        return get_version(trtllm_version).serving_image

    def launch_command(self, repo_dir: str, world_size: int, ports: ServingPorts) -> list[str]:
        return launch_argv(repo_dir, world_size=world_size, http_port=ports.http, grpc_port=ports.grpc,
                           metrics_port=ports.metrics, tritonserver=DEFAULT_TRITONSERVER)

    def routes(self, streaming: bool, include_bls: bool) -> ServingRoutes:
        return ServingRoutes(predict_model="tensorrt_llm_bls" if include_bls and streaming else "ensemble")
