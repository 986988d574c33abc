"""The engine cache a release names: the local directory by default, or an Object Storage bucket; and the
quality baselines kept with it."""

from __future__ import annotations

from trtllm_oci.cache.manifest import EngineStore
from trtllm_oci.cache.stores import open_store
from trtllm_oci.cache_location import LocalCacheLocation
from trtllm_oci.evaluate.baseline import BaselineStore
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


def open_baseline_store(cache: EngineCacheSpec | None, settings: Settings) -> BaselineStore:
    """Quality baselines where the engine cache is: beside a local cache, or in its Object Storage bucket
    (`<prefix>/baselines/`), so a rebuild on another host that shares the cache reuses them."""
    if cache is None or isinstance(cache.location, LocalCacheLocation):
        return BaselineStore(settings.baselines_dir)
    from trtllm_oci.cache.documents import ObjectStorageDocuments
    from trtllm_oci.cache.object_storage_store import OciObjectStorageEngineStore

    store = open_engine_store(cache, settings)
    assert isinstance(store, OciObjectStorageEngineStore)
    return BaselineStore(ObjectStorageDocuments(store, "baselines"))
