"""The Object Storage engine store and its build lease, against the OCI stand-in through the real SDK client."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest

from tests.cache.test_local_store import SUMMARIZE, make_inputs, write_fake_engine
from trtllm_oci.cache.build_once import build_once
from trtllm_oci.cache.key import cache_key
from trtllm_oci.cache.manifest import MaterializeError
from trtllm_oci.cache.object_storage_store import (
    ObjectStorageCacheError,
    ObjectStorageLeaseLocks,
    OciObjectStorageEngineStore,
)
from trtllm_oci.files import LockTimeoutError

BUCKET = "engines"
PREFIX = "trtllm/cache"


def make_store(clients, standin, tmp_path: Path, **options) -> OciObjectStorageEngineStore:
    options = {"part_size": 4096, "range_size": 3000, "parallelism": 4, "download_root": tmp_path / "downloads",
               "lease_seconds": 3.0, "lock_poll_seconds": 0.05, **options}
    return OciObjectStorageEngineStore(clients.object_storage, standin.namespace, BUCKET, PREFIX, **options)


def objects_under(standin, prefix: str) -> dict[str, bytes]:
    with standin.lock:
        return {name: data for (bucket, name), data in standin.objects.items()
                if bucket == BUCKET and name.startswith(prefix)}


@pytest.fixture
def published(clients, standin, tmp_path):
    store = make_store(clients, standin, tmp_path)
    inputs = make_inputs()
    key = cache_key(inputs)
    engine = write_fake_engine(tmp_path / "built", tp=2, rank_bytes=10_000)
    expected = {p.name: p.read_bytes() for p in engine.iterdir()}
    manifest = store.publish(key, engine, inputs, SUMMARIZE)
    return store, inputs, key, manifest, expected


def test_publish_uploads_in_parts_then_writes_the_manifest_last(published, standin):
    store, inputs, key, manifest, expected = published
    assert manifest.uri.startswith(f"oci://{BUCKET}@{standin.namespace}/{PREFIX}/{key}/engine-")
    stored = objects_under(standin, f"{PREFIX}/{key}/")
    engine_objects = {name.rsplit("/", 1)[1]: data for name, data in stored.items() if "/engine-" in name}
    assert engine_objects == expected
    # 10 000-byte ranks with 4096-byte parts go up as multipart uploads of 3 parts each.
    parts = standin.requests_to("PUT", rf"^/n/{standin.namespace}/b/{BUCKET}/u/")
    assert len(parts) == 2 * 3
    writes = [r for r in standin.received if r["method"] in ("PUT", "POST") and r["path"].startswith("/n/")]
    assert writes[-1]["path"].endswith(f"{key}/manifest.json")
    assert writes[-1]["headers"]["if-none-match"] == "*"


def test_lookup_hits_and_materialize_downloads_ranges_once(published, standin, tmp_path, caplog):
    store, inputs, key, manifest, expected = published
    hit = store.lookup(key, verify_checksums=True)
    assert hit is not None and hit.key == key and {f.path for f in hit.files} == set(expected)
    with caplog.at_level(logging.INFO, logger="trtllm_oci"):
        path = store.materialize(hit)
    progress = [r.getMessage() for r in caplog.records if r.getMessage().startswith("downloaded ")]
    assert progress and progress[-1].endswith("(100%)") and len(progress) <= 10
    assert path == tmp_path / "downloads" / key
    assert {name: (path / name).read_bytes() for name in expected} == expected
    ranged = [r for r in standin.requests_to("GET", "/o/") if "range" in r["headers"]]
    assert len(ranged) == 2 * 4 + 1  # two 10 000-byte ranks in 3000-byte ranges, plus config.json
    before = len(standin.requests_to("GET", "/o/"))
    assert store.materialize(hit) == path
    assert len(standin.requests_to("GET", "/o/")) == before
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".") and p.name != ".locks"]


def test_an_empty_cache_is_a_miss_but_a_missing_bucket_is_an_error(clients, standin, tmp_path):
    key = cache_key(make_inputs())
    assert make_store(clients, standin, tmp_path).lookup(key) is None
    standin.buckets = {"some-other-bucket"}
    with pytest.raises(ObjectStorageCacheError) as err:
        make_store(clients, standin, tmp_path).lookup(key)
    message = str(err.value)
    assert f"bucket '{BUCKET}' does not exist in namespace '{standin.namespace}'" in message
    assert f"oci os bucket create --name {BUCKET}" in message


def test_a_missing_object_quarantines_the_manifest(published, standin):
    store, inputs, key, manifest, expected = published
    rank1 = next(n for n in objects_under(standin, f"{PREFIX}/{key}/") if n.endswith("rank1.engine"))
    with standin.lock:
        del standin.objects[(BUCKET, rank1)]
    assert store.lookup(key) is None
    assert f"{PREFIX}/{key}/manifest.json" not in objects_under(standin, PREFIX)
    quarantined = objects_under(standin, f"{PREFIX}/quarantine/{key}.")
    assert len(quarantined) == 1
    assert store.lookup(key) is None  # stays a miss: a rebuild will publish afresh


def test_a_resized_object_is_corruption(published, standin):
    store, inputs, key, manifest, expected = published
    rank0 = next(n for n in objects_under(standin, f"{PREFIX}/{key}/") if n.endswith("rank0.engine"))
    with standin.lock:
        standin.objects[(BUCKET, rank0)] += b"x"
    assert store.lookup(key) is None
    assert objects_under(standin, f"{PREFIX}/quarantine/")


def test_changed_bytes_of_the_same_size_fail_checksum_verification_and_download(published, standin, tmp_path):
    store, inputs, key, manifest, expected = published
    rank0 = next(n for n in objects_under(standin, f"{PREFIX}/{key}/") if n.endswith("rank0.engine"))
    with standin.lock:
        standin.objects[(BUCKET, rank0)] = b"\xff" * len(standin.objects[(BUCKET, rank0)])
    dest = tmp_path / "serve" / "engine"
    with pytest.raises(MaterializeError, match="rank0.engine has sha256 .* manifest says"):
        store.materialize(manifest, dest)
    assert not dest.exists()
    assert [p.name for p in dest.parent.iterdir()] == [".locks"]  # no partial download left behind
    assert store.lookup(key) is not None  # sizes still match: only a full check sees it
    assert store.lookup(key, verify_checksums=True) is None
    assert objects_under(standin, f"{PREFIX}/quarantine/")


def test_a_transient_503_on_a_range_is_retried(published, standin, tmp_path):
    store, inputs, key, manifest, expected = published
    standin.inject("GET", r"rank1\.engine$", "status", status=503, times=2)
    path = store.materialize(manifest, tmp_path / "elsewhere")
    assert (path / "rank1.engine").read_bytes() == expected["rank1.engine"]


def test_two_publishes_of_one_key_keep_exactly_one(clients, standin, tmp_path):
    inputs = make_inputs()
    key = cache_key(inputs)
    first = write_fake_engine(tmp_path / "a", rank_bytes=9000)
    second = write_fake_engine(tmp_path / "b", rank_bytes=9000)
    (second / "rank0.engine").write_bytes(b"\x07" * 9000)  # builds are not bit-reproducible
    store_a = make_store(clients, standin, tmp_path)
    store_b = make_store(clients, standin, tmp_path)
    results: dict[str, object] = {}
    barrier = threading.Barrier(2)

    def publish(name, store, built):
        barrier.wait()
        results[name] = store.publish(key, built, inputs, SUMMARIZE)

    threads = [threading.Thread(target=publish, args=("a", store_a, first)),
               threading.Thread(target=publish, args=("b", store_b, second))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results["a"].uri == results["b"].uri
    engine_dirs = {name.split("/")[3] for name in objects_under(standin, f"{PREFIX}/{key}/engine-")}
    assert len(engine_dirs) == 1  # the loser removed its upload
    assert store_a.lookup(key, verify_checksums=True) is not None


def test_build_once_across_hosts_builds_once_through_the_bucket_lease(clients, standin, tmp_path):
    inputs = make_inputs()
    key = cache_key(inputs)
    builds: list[str] = []
    hits: list[bool] = []

    def host(name: str) -> None:
        store = make_store(clients, standin, tmp_path / name)

        def build(build_dir: Path) -> Path:
            assert build_dir.parent == tmp_path / name / "build-scratch"  # on the cache's disk, not /tmp
            builds.append(name)
            time.sleep(0.5)
            return write_fake_engine(build_dir / "out", rank_bytes=5000)

        hits.append(build_once(inputs, store, build, SUMMARIZE)[1])

    threads = [threading.Thread(target=host, args=(f"host{i}",)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(builds) == 1
    assert sorted(hits) == [False, True, True]
    assert make_store(clients, standin, tmp_path).lookup(key) is not None
    assert [p for name in ("host0", "host1", "host2") if (tmp_path / name / "build-scratch").exists()
            for p in (tmp_path / name / "build-scratch").iterdir()] == []
    assert not objects_under(standin, f"{PREFIX}/locks/")  # released


def lease(clients, standin, holder: str, **options) -> ObjectStorageLeaseLocks:
    options = {"lease_seconds": 3.0, "poll_seconds": 0.05, **options}
    return ObjectStorageLeaseLocks(clients.object_storage, standin.namespace, BUCKET, f"{PREFIX}/locks",
                                   holder=holder, **options)


def test_a_renewed_lease_keeps_waiters_out(clients, standin):
    holding = threading.Event()
    done = threading.Event()

    def hold():
        with lease(clients, standin, "builder-a")("k"):
            holding.set()
            done.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    assert holding.wait(10)
    try:
        # Longer than the 3 s lease: only renewals keep it alive.
        with pytest.raises(LockTimeoutError, match="another run is still building"), \
                lease(clients, standin, "builder-b", acquire_timeout_seconds=4.5)("k"):
            pass
    finally:
        done.set()
        t.join()
    renewals = [r for r in standin.requests_to("PUT", r"/locks/k\.json$") if "if-match" in r["headers"]]
    assert renewals


def test_a_stale_lease_of_a_dead_holder_is_taken_over(clients, standin, caplog):
    lock_name = f"{PREFIX}/locks/k.json"
    with standin.lock:
        meta = standin._store_object(BUCKET, lock_name, b'{"holder": "crashed-host:42"}')
        meta["mtime"] -= 60  # silent for a minute, lease is 3 s
    with caplog.at_level(logging.WARNING), lease(clients, standin, "builder-b")("k"), standin.lock:
        assert b"builder-b" in standin.objects[(BUCKET, lock_name)]
    assert "took over the build lease" in caplog.text and "crashed-host:42" in caplog.text
    assert (BUCKET, lock_name) not in standin.objects


def test_evict_removes_the_manifest_and_every_object(published, standin):
    store, inputs, key, manifest, expected = published
    assert store.evict(key) is True
    assert objects_under(standin, f"{PREFIX}/{key}/") == {}
    assert store.lookup(key) is None
    assert store.evict(key) is False


def test_a_manifest_from_another_cache_is_refused(published, clients, standin, tmp_path):
    store, inputs, key, manifest, expected = published
    other = OciObjectStorageEngineStore(clients.object_storage, standin.namespace, "other-bucket", PREFIX,
                                        download_root=tmp_path / "d2")
    with pytest.raises(MaterializeError, match=f"not in this cache \\(oci://other-bucket@{standin.namespace}"):
        other.materialize(manifest)


def test_the_spec_opens_the_bucket_it_names(api_key, standin, monkeypatch, tmp_path):
    from trtllm_oci.release.cache import open_engine_store
    from trtllm_oci.settings import current_settings
    from trtllm_oci.spec import EngineCacheSpec

    monkeypatch.setenv("OCI_CONFIG_FILE", api_key["config_file"])
    monkeypatch.setenv("TRTLLM_OCI_OCI_ENDPOINTS", f'{{"object_storage": "{standin.url}"}}')
    store = open_engine_store(EngineCacheSpec(uri=f"oci://{BUCKET}@{standin.namespace}/{PREFIX}/"),
                              current_settings())
    assert isinstance(store, OciObjectStorageEngineStore)
    assert (store.bucket, store.namespace, store.prefix) == (BUCKET, standin.namespace, PREFIX)
    assert store.lookup(cache_key(make_inputs())) is None  # a signed request the stand-in accepted
    assert standin.auth_failures == 0


def test_clients_call_the_region_the_spec_names_not_the_profiles(auth):
    from trtllm_oci.cloud.clients import OciClients

    assert auth.config["region"] == "us-ashburn-1"
    clients = OciClients(auth, region="eu-frankfurt-1")
    assert "eu-frankfurt-1" in clients.object_storage.base_client.endpoint
    assert "eu-frankfurt-1" in clients.data_science.base_client.endpoint
    assert "us-ashburn-1" in OciClients(auth).data_science.base_client.endpoint


def test_engines_from_the_bucket_download_under_the_home_also_when_the_local_cache_is_elsewhere(
        api_key, standin, monkeypatch, tmp_path):
    from trtllm_oci.release.cache import open_engine_store
    from trtllm_oci.settings import current_settings
    from trtllm_oci.spec import EngineCacheSpec

    monkeypatch.setenv("OCI_CONFIG_FILE", api_key["config_file"])
    monkeypatch.setenv("TRTLLM_OCI_OCI_ENDPOINTS", f'{{"object_storage": "{standin.url}"}}')
    monkeypatch.setenv("TRTLLM_OCI_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TRTLLM_OCI_CACHE", str(tmp_path / "nfs" / "engines"))
    store = open_engine_store(EngineCacheSpec(uri=f"oci://{BUCKET}@{standin.namespace}/{PREFIX}"), current_settings())
    assert store.download_root == tmp_path / "home" / "engine-downloads"  # where the README says
