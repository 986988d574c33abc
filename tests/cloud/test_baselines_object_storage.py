"""Quality baselines kept in an Object Storage engine cache: a rebuild on another host that shares the cache
reuses the source's scores (issue 16), against the OCI stand-in through the real SDK client."""

from __future__ import annotations

import json
import logging

import pytest

from tests.evaluate.test_gate_units import key, scores
from trtllm_oci.cache.object_storage_store import ObjectStorageCacheError
from trtllm_oci.release.cache import open_baseline_store
from trtllm_oci.settings import Settings
from trtllm_oci.spec import EngineCacheSpec

PREFIX = "trtllm/cache"


@pytest.fixture
def oci_env(monkeypatch, api_key, standin):
    monkeypatch.setenv("OCI_CONFIG_FILE", api_key["config_file"])
    monkeypatch.setenv("TRTLLM_OCI_OCI_ENDPOINTS", json.dumps({"object_storage": standin.url}))
    return standin


def host_store(tmp_path, name: str, namespace: str, bucket: str = "engines"):
    """The baseline store a release with this engine cache opens on host `name` (its own home directory)."""
    settings = Settings(home=tmp_path / name)
    return open_baseline_store(EngineCacheSpec(uri=f"oci://{bucket}@{namespace}/{PREFIX}"), settings)


def test_a_baseline_measured_on_one_host_is_reused_on_another(oci_env, tmp_path):
    first = host_store(tmp_path, "host-a", oci_env.namespace)
    assert first.get(key()) is None
    first.put(key(), scores(100.0, 1.0), source="tiny unquantized")
    name = f"{PREFIX}/baselines/{key().digest}.json"
    with oci_env.lock:
        assert ("engines", name) in oci_env.objects
    assert not (tmp_path / "host-a" / "baselines").exists()  # nothing kept on the host's disk instead

    second = host_store(tmp_path, "host-b", oci_env.namespace)
    again = second.get(key())
    assert again is not None and again.scores == scores(100.0, 1.0) and again.source == "tiny unquantized"
    assert second.get(key(limit=3)) is None


def test_a_corrupt_or_mismatched_baseline_in_the_bucket_is_measured_again(oci_env, tmp_path, caplog):
    store = host_store(tmp_path, "host-a", oci_env.namespace)
    name = f"{PREFIX}/baselines/{key().digest}.json"
    with oci_env.lock:  # as another writer's PUT would leave it
        oci_env._store_object("engines", name, b"{not json")
    with caplog.at_level(logging.WARNING, logger="trtllm_oci"):
        assert store.get(key()) is None
    assert any("measured again" in r.getMessage() and name in r.getMessage() for r in caplog.records)
    other = store.put(key(limit=3), scores(1.0, 1.0), source="x")
    with oci_env.lock:
        oci_env._store_object("engines", name, oci_env.objects[("engines", f"{PREFIX}/baselines/{other.key}.json")])
    assert store.get(key()) is None  # recorded inputs do not match the name: not trusted
    store.put(key(), scores(100.0, 1.0), source="re-measured")
    assert store.get(key()).source == "re-measured"


def test_a_missing_bucket_names_the_bucket_and_the_fix(oci_env, tmp_path):
    oci_env.buckets = {"engines"}
    store = host_store(tmp_path, "host-a", oci_env.namespace, bucket="no-such-bucket")
    with pytest.raises(ObjectStorageCacheError, match=r"bucket 'no-such-bucket' does not exist.*oci os bucket create"):
        store.put(key(), scores(100.0, 1.0), source="x")
