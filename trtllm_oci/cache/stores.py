"""Open the engine store at a cache location: a local directory, or an Object Storage bucket."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trtllm_oci.cache.local_store import LocalEngineStore
from trtllm_oci.cache.manifest import EngineManifest, EngineStore, MaterializeError
from trtllm_oci.cache_location import CacheLocation, LocalCacheLocation


def open_store(location: CacheLocation, *, download_root: Path, object_storage_client: Any = None) -> EngineStore:
    """The store at `location`. An oci:// location needs `object_storage_client` (an oci ObjectStorageClient);
    engines it serves to this host land under `download_root/<key>`."""
    if isinstance(location, LocalCacheLocation):
        return LocalEngineStore(location.root)
    if object_storage_client is None:
        raise ValueError(f"{location} is an Object Storage cache; pass its ObjectStorageClient")
    from trtllm_oci.cache.object_storage_store import OciObjectStorageEngineStore

    return OciObjectStorageEngineStore.at(location, object_storage_client, download_root=download_root)


def local_engine_dir(store: EngineStore, manifest: EngineManifest) -> Path:
    """A directory on this host holding the engine (the stored entry itself, or a verified download)."""
    path = store.materialize(manifest)
    if not all((path / f.path).is_file() for f in manifest.files):
        raise MaterializeError(
            f"Engine {manifest.key} ({manifest.uri}) is not in this host's cache ({path} lacks its files). It was built "
            "on another host: give the release an engine_cache every host reaches (oci://<bucket>@<namespace>/"
            "<prefix>, or a shared directory), or run the build on this host.")
    return path
