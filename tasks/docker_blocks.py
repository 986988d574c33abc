"""Adapters from prefect-docker blocks to the plain objects this package uses (Prefect imported lazily)."""

from __future__ import annotations

from typing import Any

from trtllm_oci.image.refs import RegistryAuth


def docker_client_from_block(docker_host: Any) -> Any:
    """docker-py client from a `prefect_docker.DockerHost` block or the name of a saved one."""
    from prefect_docker import DockerHost

    block = DockerHost.load(docker_host) if isinstance(docker_host, str) else docker_host
    if not isinstance(block, DockerHost):
        raise TypeError(
            f"expected a prefect_docker DockerHost block or its name, got {type(docker_host).__name__}"
        )
    return block.get_client()


def registry_auth_from_block(credentials: Any) -> RegistryAuth:
    """RegistryAuth from a `prefect_docker.DockerRegistryCredentials` block or the name of a saved one."""
    from prefect_docker import DockerRegistryCredentials

    block = DockerRegistryCredentials.load(credentials) if isinstance(credentials, str) else credentials
    if not isinstance(block, DockerRegistryCredentials):
        raise TypeError(
            f"expected a prefect_docker DockerRegistryCredentials block or its name, got {type(credentials).__name__}"
        )
    registry = block.registry_url.removeprefix("https://").removeprefix("http://").rstrip("/")
    return RegistryAuth(registry=registry, username=block.username, password=block.password)
