"""Two hosts share an Object Storage engine cache: one builds, the other assembles from the download and
hits the cache on its own build request. Prefect flows, the real SDK client, the OCI stand-in."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cloud.conftest import api_key, standin  # noqa: F401  (fixtures)

pytestmark = pytest.mark.prefect


def as_host(monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
    monkeypatch.delenv("TRTLLM_OCI_CACHE", raising=False)
    monkeypatch.setenv("TRTLLM_OCI_HOME", str(root))


def test_an_engine_built_on_one_host_is_assembled_and_reused_on_another(
    prefect_api: str, tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    api_key, standin,  # noqa: F811
) -> None:
    from trtllm_oci.flows.assemble import assemble
    from trtllm_oci.flows.build_engine import build_engine
    from trtllm_oci.release.demo import demo_spec
    from trtllm_oci.spec import EngineCacheSpec

    monkeypatch.setenv("OCI_CONFIG_FILE", api_key["config_file"])
    monkeypatch.setenv("TRTLLM_OCI_OCI_ENDPOINTS", f'{{"object_storage": "{standin.url}"}}')
    spec = demo_spec(tiny_model_dir)
    spec.engine_cache = EngineCacheSpec(uri=f"oci://engines@{standin.namespace}/shared")

    as_host(monkeypatch, tmp_path / "gpu-host")
    prepared = build_engine(spec)
    built = prepared.manifest
    assert built.uri.startswith(f"oci://engines@{standin.namespace}/shared/{built.key}/engine-")
    assert prepared.cache_hit is False
    assert not (tmp_path / "gpu-host" / "engines" / "entries").exists() or not any(
        (tmp_path / "gpu-host" / "engines" / "entries").iterdir())

    as_host(monkeypatch, tmp_path / "serving-host")
    repo = assemble(spec, prepared, out_dir=str(tmp_path / "release"))
    downloaded = tmp_path / "serving-host" / "engine-downloads" / built.key
    assert sorted(p.name for p in downloaded.iterdir() if not p.name.startswith(".")) == sorted(
        f.path.split("/")[0] for f in built.files)
    assert (Path(repo.model_repository) / "tensorrt_llm").is_dir()

    again = build_engine(spec)
    assert again.manifest.key == built.key and again.manifest.uri == built.uri
    assert again.cache_hit is True
