"""The version's examples/ without a manual checkout: a pinned, cached, checksum-verified source archive
(served here by a local HTTP server on 127.0.0.1, no internet), extracted without path traversal."""

from __future__ import annotations

import hashlib
import http.server
import io
import tarfile
import threading
from pathlib import Path

import pytest

from trtllm_oci.build.trtllm_sources import (
    SourceArchive,
    SourceArchiveError,
    fetch_source_archive,
    resolve_examples_checkout,
    safe_extract,
)
from trtllm_oci.errors import TrtllmOciError

QUANTIZE = b"# quantize.py of the test archive\n"


def _tarball(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def _file(name: str, data: bytes, mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.mode = mode
    return info, data


def _special(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info, None


def _good_archive() -> bytes:
    directory = tarfile.TarInfo("TensorRT-LLM-9.9.9/examples")
    directory.type = tarfile.DIRTYPE
    return _tarball([
        (directory, None),
        _file("TensorRT-LLM-9.9.9/examples/quantization/quantize.py", QUANTIZE, 0o755),
        _special("TensorRT-LLM-9.9.9/examples/q.py", tarfile.SYMTYPE, "quantization/quantize.py"),
    ])


class _Server:
    """Serves fixed bytes at /archive.tar.gz and counts the requests."""

    def __init__(self, payload: bytes):
        self.payload = payload
        self.requests = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                outer.requests += 1
                if self.path != "/archive.tar.gz":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(outer.payload)))
                self.end_headers()
                self.wfile.write(outer.payload)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/archive.tar.gz"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def served():
    servers = []

    def serve(payload: bytes) -> _Server:
        servers.append(_Server(payload))
        return servers[-1]

    yield serve
    for server in servers:
        server.close()


def test_archive_is_downloaded_once_verified_and_extracted(tmp_path, served):
    payload = _good_archive()
    server = served(payload)
    archive = SourceArchive(url=server.url, sha256=hashlib.sha256(payload).hexdigest())
    checkout = fetch_source_archive("9.9.9", archive, tmp_path / "cache")
    assert (checkout / "examples" / "quantization" / "quantize.py").read_bytes() == QUANTIZE
    assert (checkout / "examples" / "quantization" / "quantize.py").stat().st_mode & 0o111
    assert (checkout / "examples" / "q.py").read_bytes() == QUANTIZE  # an in-archive symlink is kept
    again = fetch_source_archive("9.9.9", archive, tmp_path / "cache")
    assert again == checkout and server.requests == 1, "the cached checkout is reused"


def test_checksum_mismatch_deletes_the_download_and_extracts_nothing(tmp_path, served):
    server = served(_good_archive())
    archive = SourceArchive(url=server.url, sha256="0" * 64)
    with pytest.raises(SourceArchiveError, match=r"has sha256 [0-9a-f]{64}, but the version table records 0{64}"):
        fetch_source_archive("9.9.9", archive, tmp_path / "cache")
    left = [p.name for p in (tmp_path / "cache" / "trtllm-src" / "9.9.9").iterdir()]
    assert left == [".lock"]


def test_an_unpinned_archive_is_refused_with_the_fix(tmp_path):
    archive = SourceArchive(url="http://127.0.0.1:9/never.tar.gz")
    with pytest.raises(SourceArchiveError, match=r"records no sha256 .* source_archive\.sha256.*trtllm_src_dir"):
        fetch_source_archive("9.9.9", archive, tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize(
    ("member", "message"),
    [
        (_file("../escaped.txt", b"x"), r"'\.\./escaped\.txt' would be written outside"),
        (_file("/tmp/absolute.txt", b"x"), r"'/tmp/absolute\.txt' would be written outside"),
        (_special("TensorRT-LLM-9.9.9/etc", tarfile.SYMTYPE, "/etc"), r"symlink .* -> '/etc' points outside"),
        (_special("TensorRT-LLM-9.9.9/up", tarfile.SYMTYPE, "../../.."), r"points outside"),
        (_special("TensorRT-LLM-9.9.9/fifo", tarfile.FIFOTYPE), r"device, fifo or other special file"),
        (_special("TensorRT-LLM-9.9.9/hard", tarfile.LNKTYPE, "../outside"), r"would be written outside"),
    ],
)
def test_unsafe_members_are_refused_before_anything_is_written(tmp_path, served, member, message):
    payload = _tarball([_file("TensorRT-LLM-9.9.9/examples/ok.py", b"ok"), member])
    server = served(payload)
    archive = SourceArchive(url=server.url, sha256=hashlib.sha256(payload).hexdigest())
    with pytest.raises(SourceArchiveError, match=message):
        fetch_source_archive("9.9.9", archive, tmp_path / "cache" / "deep")
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "cache" / "escaped.txt").exists()
    base = tmp_path / "cache" / "deep" / "trtllm-src" / "9.9.9"
    assert not [p for p in base.iterdir() if p.is_dir()], "no half-extracted checkout is left"


def test_safe_extract_writes_regular_files_only_inside(tmp_path):
    path = tmp_path / "a.tar"
    path.write_bytes(_good_archive())
    safe_extract(path, tmp_path / "out")
    assert (tmp_path / "out" / "TensorRT-LLM-9.9.9" / "examples" / "quantization" / "quantize.py").is_file()


def test_resolution_prefers_the_explicit_checkout_and_explains_every_refusal(tmp_path):
    assert resolve_examples_checkout("9.9.9", explicit="/src", archive=None, release_image=None,
                                     serving_tensorrt=None, cache_root=tmp_path) == Path("/src")
    with pytest.raises(TrtllmOciError, match=r"no TensorRT-LLM 9\.9\.9 examples/ .*source archive: .*records no sha256"
                                             r".*--trtllm-src"):
        resolve_examples_checkout("9.9.9", explicit=None, archive=SourceArchive(url="http://127.0.0.1:9/x"),
                                  release_image=None, serving_tensorrt=None, cache_root=tmp_path)


def test_the_build_gets_the_version_scripts_without_a_checkout(tmp_path, served, monkeypatch):
    from trtllm_oci.build import trtllm as pipeline
    from trtllm_oci.build.host import BuildHost
    from trtllm_oci.versions import get_version

    monkeypatch.delenv("TRTLLM_OCI_TRTLLM_SRC", raising=False)
    payload = _good_archive()
    server = served(payload)
    version = get_version("1.2.1").model_copy(
        update={"source_archive": SourceArchive(url=server.url, sha256=hashlib.sha256(payload).hexdigest()),
                "release_image": None}
    )
    checkout = pipeline.examples_checkout(version, BuildHost(), tmp_path, log=lambda _: None)
    assert (checkout / "examples" / "quantization" / "quantize.py").is_file()
    # The shipped table records no sha256 yet: the build says so and names the fix instead of downloading.
    unpinned = get_version("1.2.1").model_copy(update={"release_image": None})
    with pytest.raises(TrtllmOciError, match=r"records no sha256 for TensorRT-LLM 1\.2\.1's source archive"):
        pipeline.examples_checkout(unpinned, BuildHost(), tmp_path, log=lambda _: None)
