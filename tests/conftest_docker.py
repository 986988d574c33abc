"""Session fixtures for tests that need a real Docker engine and a real registry (pytest plugin).

Register from tests/conftest.py with `pytest_plugins = ["tests.conftest_docker"]` (or the module
path that matches the rootdir layout). The engine and the registries are started once per test
session by the scripts in infra/local/ and torn down at the end.

Set TRTLLM_OCI_NO_DOCKER=1 to skip these tests on a machine without root or without the
packages (docker.io, docker-registry, apache2-utils, busybox-static). Without that variable a
failure to start them is a test error: a CI job must not go green by skipping them.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
LOCAL_STACK = REPO_ROOT / "infra" / "local"
NO_DOCKER_ENV = "TRTLLM_OCI_NO_DOCKER"


def docker_disabled() -> bool:
    return os.environ.get(NO_DOCKER_ENV) == "1"


def skip_if_docker_disabled() -> None:
    """The one opt-out: a machine without root or the packages sets TRTLLM_OCI_NO_DOCKER=1 on purpose."""
    if docker_disabled():
        pytest.skip(f"{NO_DOCKER_ENV}=1: tests against a Docker engine and registry are switched off")


def _run_script(name: str, *args: str, timeout_s: float = 120) -> str:
    script = LOCAL_STACK / name
    proc = subprocess.run(
        ["bash", str(script), *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if proc.returncode != 0:
        shown = [
            "<user:password>" if prev == "--htpasswd" else a
            for prev, a in zip(("",) + args, args, strict=True)
        ]
        raise RuntimeError(
            f"{script} {' '.join(shown)} "
            f"failed with exit code {proc.returncode}:\n{proc.stderr.strip()}\n"
            f"(set {NO_DOCKER_ENV}=1 to skip Docker tests on machines that cannot run dockerd)"
        )
    return proc.stdout.strip()


@dataclass(frozen=True)
class LocalRegistry:
    """A registry on 127.0.0.1 started by infra/local/start-registry.sh."""

    address: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.address}"


@pytest.fixture(scope="session")
def docker_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """DOCKER_HOST URL (unix://...) of a private dockerd for this test session."""
    skip_if_docker_disabled()
    state_dir = tmp_path_factory.mktemp("dockerd")
    host = _run_script("start-dockerd.sh", str(state_dir))
    try:
        yield host
    finally:
        _run_script("stop-dockerd.sh", str(state_dir), "--purge")


@pytest.fixture(scope="session")
def docker_client(docker_host: str) -> Iterator[object]:
    import docker

    client = docker.DockerClient(base_url=docker_host, timeout=120)
    try:
        yield client
    finally:
        client.close()


def _start_registry(
    tmp_path_factory: pytest.TempPathFactory, name: str, credentials: str | None
) -> Iterator[str]:
    state_dir = tmp_path_factory.mktemp(name)
    args = [str(state_dir)] + (["--htpasswd", credentials] if credentials else [])
    address = _run_script("start-registry.sh", *args)
    try:
        yield address
    finally:
        _run_script("stop-registry.sh", str(state_dir), "--purge")


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    """A registry without authentication."""
    skip_if_docker_disabled()
    for address in _start_registry(tmp_path_factory, "registry", None):
        yield LocalRegistry(address=address)


@pytest.fixture(scope="session")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    """A registry that demands HTTP Basic credentials (htpasswd), as OCIR demands a login."""
    skip_if_docker_disabled()
    username = "ci-pusher"
    password = secrets.token_urlsafe(18)
    for address in _start_registry(tmp_path_factory, "auth-registry", f"{username}:{password}"):
        yield LocalRegistry(address=address, username=username, password=password)
