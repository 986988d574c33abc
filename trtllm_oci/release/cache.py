"""The engine cache a release names: the local directory by default, or an Object Storage bucket."""

from __future__ import annotations

from trtllm_oci.cache.manifest import EngineStore
from trtllm_oci.cache.stores import open_store
from trtllm_oci.cache_location import LocalCacheLocation
from trtllm_oci.settings import Settings
from trtllm_oci.spec import EngineCacheSpec


def open_engine_store(cache: EngineCacheSpec | None, settings: Settings) -> EngineStore:
    """The store `cache` names; None = the local cache at $TRTLLM_OCI_CACHE (default <home>/engines)."""
    location = cache.location if cache is not None else LocalCacheLocation(root=settings.engine_cache_root)
    if isinstance(location, LocalCacheLocation):
        return open_store(location, download_root=settings.engine_downloads_dir)
    from trtllm_oci.cloud.auth import make_signer
    from trtllm_oci.cloud.clients import OciClients

    assert cache is not None
    clients = OciClients(make_signer(cache.auth, profile=cache.profile), region=cache.region,
                         endpoints=settings.oci_endpoints)
    return open_store(location, download_root=settings.engine_downloads_dir,
                      object_storage_client=clients.object_storage)
