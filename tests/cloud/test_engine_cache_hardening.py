"""Object Storage engine cache: a lost manifest response, hostile manifests, and the engine outline."""

from __future__ import annotations

import json

import pytest

from tests.cache.test_local_store import SUMMARIZE, make_inputs, write_fake_engine
from tests.cloud.test_engine_cache_object_storage import BUCKET, PREFIX, make_store, objects_under
from trtllm_oci.cache.key import cache_key
from trtllm_oci.cache.manifest import MaterializeError


def test_a_manifest_put_whose_answer_is_lost_is_recognised_as_our_own(clients, standin, tmp_path):
    # The manifest is stored, its answer comes after the client's 1 s read timeout; the SDK's retry then meets
    # if-none-match: * with 412. That is this publish's own manifest, not a rival's: the engine must stay.
    store = make_store(clients, standin, tmp_path)
    inputs = make_inputs()
    key = cache_key(inputs)
    standin.inject("PUT", rf"/o/{PREFIX}/{key}/manifest.json$", "slow", delay=1.5)
    manifest = store.publish(key, write_fake_engine(tmp_path / "built", rank_bytes=5000), inputs, SUMMARIZE)
    puts = standin.requests_to("PUT", rf"/o/{PREFIX}/{key}/manifest.json$")
    assert len(puts) == 2  # the lost one and the retry
    stored = json.loads(standin.objects[(BUCKET, f"{PREFIX}/{key}/manifest.json")])
    assert stored["uri"] == manifest.uri
    engine_objects = [n for n in objects_under(standin, f"{PREFIX}/{key}/") if "/engine-" in n]
    assert len(engine_objects) == 3  # config.json + 2 ranks, not deleted
    assert store.lookup(key, verify_checksums=True) is not None


def _hostile(standin, store, key: str, path: str) -> None:
    name = f"{PREFIX}/{key}/manifest.json"
    manifest = json.loads(standin.objects[(BUCKET, name)])
    manifest["files"][0]["path"] = path
    standin.objects[(BUCKET, name)] = json.dumps(manifest).encode()


@pytest.mark.parametrize("path", ["../../escaped", "<ABSOLUTE>", "a/../../b", "a//b", ".engine-key", "a\\..\\b"])
def test_a_manifest_path_outside_the_engine_dir_is_refused_and_quarantined(clients, standin, tmp_path, path):
    outside = tmp_path / "outside"
    path = path.replace("<ABSOLUTE>", str(outside / "x"))  # never a real system path, even if the check fails
    store = make_store(clients, standin, tmp_path / "cache")
    inputs = make_inputs()
    key = cache_key(inputs)
    manifest = store.publish(key, write_fake_engine(tmp_path / "built", rank_bytes=5000), inputs, SUMMARIZE)
    _hostile(standin, store, key, path)
    assert store.lookup(key) is None
    assert any(n.startswith(f"{PREFIX}/quarantine/{key}.") for n in objects_under(standin, f"{PREFIX}/quarantine/"))
    # A manifest held from before (a persisted flow result) is refused by materialize too, before any write.
    bad = manifest.model_copy(update={"files": [manifest.files[0].model_copy(update={"path": path}),
                                                *manifest.files[1:]]})
    with pytest.raises(MaterializeError, match="outside"):
        store.materialize(bad)
    assert not outside.exists() and not (tmp_path / "escaped").exists() and not (tmp_path / "b").exists()
    downloads = tmp_path / "cache" / "downloads"
    assert not downloads.exists() or [p.name for p in downloads.iterdir()] in ([], [".locks"])


def test_an_outline_has_the_configs_and_sized_placeholders_but_downloads_no_engine(clients, standin, tmp_path):
    store = make_store(clients, standin, tmp_path)
    inputs = make_inputs()
    key = cache_key(inputs)
    built = write_fake_engine(tmp_path / "built", rank_bytes=200_000)
    manifest = store.publish(key, built, inputs, SUMMARIZE)
    before = len(standin.requests_to("GET", "/o/"))
    outline = store.materialize_outline(manifest, small_file_bytes=10_000)
    gets = standin.requests_to("GET", "/o/")[before:]
    assert [g["path"].rsplit("/", 1)[-1] for g in gets] == ["config.json"]
    assert (outline / "config.json").read_bytes() == (built / "config.json").read_bytes()
    for f in manifest.files:
        assert (outline / f.path).stat().st_size == f.size
    assert (outline / ".engine-outline").read_text().strip() == key
    assert (outline / "rank0.engine").stat().st_blocks == 0  # sparse: no disk, no bytes moved
    # An outline is never mistaken for the engine.
    assert store.materialize(manifest) != outline
