"""Small JSON documents kept in a release's engine cache bucket, beside the engines (quality baselines), so
every host that shares the cache shares them."""

from __future__ import annotations

import logging

from trtllm_oci.cache.object_storage_store import OciObjectStorageEngineStore

logger = logging.getLogger(__name__)


class ObjectStorageDocuments:
    """Documents under `<cache prefix>/<folder>/` of an Object Storage engine cache."""

    def __init__(self, store: OciObjectStorageEngineStore, folder: str) -> None:
        self.store = store
        self.folder = folder.strip("/")

    @property
    def location(self) -> str:
        return f"{self.store.location}/{self.folder}"

    def read_text(self, name: str) -> str | None:
        return self.store.read_text(f"{self.folder}/{name}")

    def write_text(self, name: str, text: str) -> None:
        self.store.write_text(f"{self.folder}/{name}", text)

    def set_aside(self, name: str, reason: str) -> None:
        # Nothing is moved: the re-measured baseline's write replaces the object, and an object another host
        # may be reading is not deleted under it.
        logger.warning("baseline %s/%s %s; the source will be measured again and the object replaced",
                       self.location, name, reason)
