"""The backend axis: each way of serving a model answers the same questions, so the release DAG stays one
DAG whatever serves the model. A backend says which stages do not apply (and why), prepares the artifact
(builds engines, quantizes a checkpoint, or takes the checkpoint as it is) through the artifact cache under
its own key inputs, writes the serving configuration, and names the image, command and routes that serve it.

Backends take typed requests (`BuildRequest`, `RepoOptions`, `PyTorchServingOptions`), never the release
spec: the release layer makes those from the spec and picks the backend by `serving.backend`.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from trtllm_oci.build.host import BuildHost
from trtllm_oci.build_options import BuildRequest
from trtllm_oci.cache.manifest import EngineManifest, EngineStore
from trtllm_oci.cloud.artifact import ServingLayout
from trtllm_oci.cloud.routes import ServingRoutes, triton_generate_routes
from trtllm_oci.errors import ArtifactError
from trtllm_oci.files import write_atomic
from trtllm_oci.hub.snapshot import DownloadResult
from trtllm_oci.model_facts import ModelFacts
from trtllm_oci.repo.assemble import TOKENIZER_DIR, RepoManifest
from trtllm_oci.serving.launch import deploy_cmd
from trtllm_oci.shapes import Gpu
from trtllm_oci.versions import get_version

LogFn = Callable[[str], None]
SERVING_MANIFEST = "serving.json"
Frontend = Literal["triton", "openai"]


class PreparedArtifact(BaseModel):
    """What the artifact stage hands on: the cache entry (a few KB) and whether it was reused."""

    model_config = ConfigDict(frozen=True)

    manifest: EngineManifest
    cache_hit: bool


class ServingConfig(BaseModel):
    """A written serving configuration: where it is, what serves it and what clients call.

    Written as `serving.json` at `root` (paths relative), so `trtllm-oci serve <root>` serves it again with
    the server it was made for."""

    root: Path
    backend: str
    frontend: Frontend
    trtllm_version: str
    world_size: int
    streaming: bool
    served_model: str  # the OpenAI model name, or the Triton model the predict route targets
    model_repository: Path | None = None  # what tritonserver serves (triton frontend)
    checkpoint_dir: Path | None = None  # what trtllm-serve or the CPU OpenAI smoke server loads (openai frontend)
    tokenizer_dir: Path
    options_file: Path | None = None  # trtllm-serve's YAML of LLM-API options (openai frontend)

    def write(self) -> None:
        data = self.model_dump(mode="json")
        for key in ("model_repository", "checkpoint_dir", "tokenizer_dir", "options_file"):
            if data[key] is not None:
                data[key] = Path(data[key]).relative_to(self.root).as_posix()
        data.pop("root")
        write_atomic(self.root / SERVING_MANIFEST, json.dumps(data, indent=2) + "\n", durable=False)


def read_serving_config(root: Path) -> ServingConfig | None:
    """The serving config written at `root`, or None for a directory without one (a bare Triton repository)."""
    root = Path(root).absolute()
    path = root / SERVING_MANIFEST
    if not path.is_file():
        return None
    try:
        data: dict[str, Any] = json.loads(path.read_text())
        for key in ("model_repository", "checkpoint_dir", "tokenizer_dir", "options_file"):
            if data.get(key) is not None:
                data[key] = str(root / data[key])
        return ServingConfig(root=root, **data)
    except (ValueError, TypeError) as exc:
        raise ArtifactError(f"{path} is not a serving config trtllm-oci wrote ({exc}); assemble the release "
                            "again") from None


@dataclass(frozen=True)
class BuildContext:
    """What preparing an artifact may use besides the request: where builds run and how to report."""

    host: BuildHost
    model_family: str
    log: LogFn
    oom_advice: Callable[[], str] | None = None
    sources_root: Path | None = None  # where verified TensorRT-LLM source archives are cached


@dataclass(frozen=True)
class ServingPorts:
    http: int = 8000
    grpc: int = 8001
    metrics: int = 8002


@dataclass(frozen=True)
class LaunchRequest:
    """What the serving command needs: where the repository sits when served, and how big the job is."""

    deploy_root: str  # the serving config's root as the server sees it
    trtllm_version: str
    world_size: int
    ports: ServingPorts = ServingPorts()
    options: Any = None  # backend-specific (the pytorch backend's PyTorchServingOptions)
    layout: ServingLayout | None = None  # a model by reference: the serving root the launcher links together


def triton_serving_config(repo: RepoManifest, backend: str, include_bls: bool) -> ServingConfig:
    """The serving config of an assembled Triton ensemble repository (engines or the CPU reference model)."""
    root = Path(repo.root)
    model = "tensorrt_llm_bls" if include_bls and repo.streaming else "ensemble"
    config = ServingConfig(root=root, backend=backend, frontend="triton", trtllm_version=repo.trtllm_version,
                           world_size=repo.world_size, streaming=repo.streaming, served_model=model,
                           model_repository=Path(repo.model_repository), tokenizer_dir=root / TOKENIZER_DIR)
    config.write()
    return config


class ServingBackend(ABC):
    """One way of serving a model."""

    name: str
    description: str  # how reports and logs name it
    # Whether the capacity planner's GPU-memory verdict applies (the CPU reference backend uses no GPU).
    uses_gpu: bool = True

    @abstractmethod
    def skipped_stages(self, request: BuildRequest) -> dict[str, str]:
        """Stages of the release DAG that do not apply to this request, with the reason shown in the UI."""

    def request_problems(self, request: BuildRequest, facts: ModelFacts, serving_gpu: Gpu | None = None) -> list[str]:
        """Why this backend cannot prepare `request` for this model (empty: it can), or serve it on
        `serving_gpu` when the target names one, found from config.json without running anything, so the plan
        stage refuses it before any download or GPU time."""
        return []

    @abstractmethod
    def prepare_artifact(self, request: BuildRequest, model: DownloadResult, store: EngineStore,
                         context: BuildContext) -> PreparedArtifact:
        """Build (or reuse from `store`) what this backend serves."""

    @abstractmethod
    def write_serving_config(self, artifact_dir: Path, model: DownloadResult, out_dir: Path,
                             options: Any) -> ServingConfig:
        """The serving configuration for a prepared artifact, written at `out_dir` (replacing it atomically)."""

    def serving_image(self, trtllm_version: str, frontend: Frontend = "triton") -> str:
        return get_version(trtllm_version).serving_image

    def launch_command(self, launch: LaunchRequest) -> list[str]:
        """The deployment's cmd: the serving image's launcher, which starts one tritonserver per rank."""
        layout = launch.layout
        repo_dir = layout.model_repository if layout else f"{launch.deploy_root}/model_repository"
        return deploy_cmd(repo_dir, launch.world_size, http_port=launch.ports.http, grpc_port=launch.ports.grpc,
                          metrics_port=launch.ports.metrics, links=layout.links if layout else None,
                          serving_root=layout.deploy_root if layout else None)

    def predict_model(self, streaming: bool, include_bls: bool = False, options: Any = None) -> str:
        """The model the generation routes target: Triton's ensemble (or BLS), or the OpenAI model name."""
        return "tensorrt_llm_bls" if include_bls and streaming else "ensemble"

    def routes(self, streaming: bool, include_bls: bool = False, options: Any = None) -> ServingRoutes:
        return triton_generate_routes(self.predict_model(streaming, include_bls), streaming=streaming)
