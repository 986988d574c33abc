"""Open the engine store a release names: the local directory by default, or an Object Storage bucket."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

from trtllm_oci.cache.local_store import (
    EngineManifest,
    EngineStore,
    LocalEngineStore,
    MaterializeError,
    default_cache_root,
)
from trtllm_oci.cache_location import LocalCacheLocation
from trtllm_oci.errors import InputError

if TYPE_CHECKING:
    from pathlib import Path

    from trtllm_oci.spec import EngineCacheSpec

# JSON {"object_storage": "https://..."}: service endpoint overrides (private endpoints; tests' stand-in).
OCI_ENDPOINTS_ENV = "TRTLLM_OCI_OCI_ENDPOINTS"


def oci_endpoint_overrides() -> dict[str, str]:
    text = os.environ.get(OCI_ENDPOINTS_ENV, "")
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise InputError(f"{OCI_ENDPOINTS_ENV} is not JSON ({exc}); set it to e.g. "
                         '\'{"object_storage": "https://objectstorage.us-ashburn-1.oraclecloud.com"}\' or unset it') from None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise InputError(f"{OCI_ENDPOINTS_ENV} must be a JSON object of service name -> endpoint URL, got {text!r}")
    return value


def open_engine_store(cache: EngineCacheSpec | None) -> EngineStore:
    """The store `cache` names; None = LocalEngineStore at $TRTLLM_OCI_CACHE (or the default local root)."""
    if cache is None:
        return LocalEngineStore(default_cache_root())
    location = cache.location
    if isinstance(location, LocalCacheLocation):
        return LocalEngineStore(location.root)
    from trtllm_oci.cache.object_storage_store import OciObjectStorageEngineStore
    from trtllm_oci.cloud.auth import make_signer
    from trtllm_oci.cloud.clients import OciClients

    clients = OciClients(make_signer(cache.auth, profile=cache.profile), region=cache.region,
                         endpoints=oci_endpoint_overrides())
    return OciObjectStorageEngineStore.at(location, clients.object_storage)


def local_engine_dir(store: EngineStore, manifest: EngineManifest) -> Path:
    """A directory on this host holding the engine (the stored entry itself, or a verified download)."""
    path = store.materialize(manifest)
    if not all((path / f.path).is_file() for f in manifest.files):
        raise MaterializeError(
            f"Engine {manifest.key} ({manifest.uri}) is not in this host's cache ({path} lacks its files). It was built "
            "on another host: give the release an engine_cache every host reaches (oci://<bucket>@<namespace>/"
            "<prefix>, or a shared directory), or run the build on this host.")
    return path
