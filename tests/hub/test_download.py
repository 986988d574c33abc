"""Download stage against a local stand-in for the Hugging Face Hub (tests/standins/hf_hub.py)."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import time
from pathlib import Path

import httpx2
import huggingface_hub.constants
import pytest
from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

from tests.standins.hf_hub import HfHubStandIn, StandInRepo
from trtllm_oci.cli_commands.progress import download_progress
from trtllm_oci.hub.download import COMPLETE_MARKER, download_model, resolve_revision
from trtllm_oci.hub.errors import (
    GatedModelError,
    HubAccessDeniedError,
    HubTransferError,
    InsufficientDiskError,
    LocalModelError,
    ModelNotFoundError,
    NoModelFilesError,
    is_retryable,
)
from trtllm_oci.hub.retry import RetryPolicy
from trtllm_oci.hub.snapshot import DownloadResult, select_files, use_local_model

GOOD_TOKEN = "hf_GoodTokenAbcdefghijklmnopqrstu"
OTHER_TOKEN = "hf_OtherTokenZyxwvutsrqponmlkjih"
FAST = RetryPolicy(max_attempts=4, base_delay_s=0.01, max_delay_s=0.05)

SHA_MAIN = "a" * 38 + "01"
SHA_V1 = "b" * 38 + "02"


def _blob(seed: str, size: int) -> bytes:
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


def _full_repo_files(tag: str) -> dict[str, bytes]:
    return {
        "config.json": json.dumps({"architectures": ["LlamaForCausalLM"], "tag": tag}).encode(),
        "generation_config.json": b'{"do_sample": false}',
        "tokenizer.json": b'{"model": {"type": "BPE"}}' + tag.encode(),
        "tokenizer_config.json": b"{}",
        "special_tokens_map.json": b"{}",
        "model-00001-of-00002.safetensors": _blob(f"{tag}-1", 300_000),
        "model-00002-of-00002.safetensors": _blob(f"{tag}-2", 120_000),
        "model.safetensors.index.json": b'{"weight_map": {}}',
        "pytorch_model.bin": _blob(f"{tag}-bin", 50_000),
        "flax_model.msgpack": b"x" * 100,
        "model.onnx": b"x" * 100,
        "original/consolidated.00.pth": b"x" * 100,
        "README.md": b"# readme",
        ".gitattributes": b"*.safetensors filter=lfs",
    }


EXPECTED_MAIN = [
    "config.json", "generation_config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
    "model.safetensors.index.json", "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json",
]


@pytest.fixture(scope="session")
def hub() -> HfHubStandIn:
    standin = HfHubStandIn(valid_tokens={GOOD_TOKEN, OTHER_TOKEN})
    main_files, v1_files = _full_repo_files("main"), _full_repo_files("v1")
    standin.add_repo(StandInRepo("acme/tiny-llm", {SHA_MAIN: main_files, SHA_V1: v1_files},
                                 refs={"main": SHA_MAIN, "v1.0": SHA_V1}))
    standin.add_repo(StandInRepo("acme/bin-only", {SHA_MAIN: {
        "config.json": b"{}", "pytorch_model.bin": _blob("bin", 4096), "tokenizer.model": b"spm"}},
        refs={"main": SHA_MAIN}))
    standin.add_repo(StandInRepo("acme/gated", {SHA_MAIN: main_files}, refs={"main": SHA_MAIN}, gated="manual",
                                 authorized_tokens={GOOD_TOKEN}))
    standin.add_repo(StandInRepo("acme/private", {SHA_MAIN: main_files}, refs={"main": SHA_MAIN}, private=True,
                                 authorized_tokens={GOOD_TOKEN}))
    standin.add_repo(StandInRepo("acme/huge", {SHA_MAIN: main_files}, refs={"main": SHA_MAIN},
                                 reported_sizes={"model-00001-of-00002.safetensors": 2**60}))
    standin.add_repo(StandInRepo("acme/no-weights", {SHA_MAIN: {"config.json": b"{}", "model.onnx": b"x"}},
                                 refs={"main": SHA_MAIN}))
    standin.start()
    yield standin
    standin.stop()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, hub: HfHubStandIn, tmp_path: Path) -> None:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))  # no stored token from `hf auth login`
    # tests/conftest.py sets HF_HUB_OFFLINE=1 so nothing reaches the real Hub; huggingface_hub reads it at import.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    with hub._lock:
        hub.requests.clear()
        hub._faults.clear()


def _download(hub: HfHubStandIn, tmp_path: Path, repo: str = "acme/tiny-llm", revision: str | None = "main",
              **kw: object) -> DownloadResult:
    kw.setdefault("retry", FAST)
    kw.setdefault("min_free_bytes_margin", 0)
    return download_model(repo, revision, tmp_path / "models", endpoint=hub.endpoint, **kw)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------- revision


@pytest.mark.parametrize(("revision", "sha"), [("main", SHA_MAIN), (None, SHA_MAIN), ("v1.0", SHA_V1),
                                                (SHA_V1, SHA_V1)])
def test_resolve_revision_accepts_branch_tag_and_sha(hub: HfHubStandIn, revision: str | None, sha: str) -> None:
    assert resolve_revision("acme/tiny-llm", revision, endpoint=hub.endpoint) == sha


def test_unknown_revision_names_repo_and_revision_without_retry(hub: HfHubStandIn) -> None:
    with pytest.raises(ModelNotFoundError) as info:
        resolve_revision("acme/tiny-llm", "no-such-branch", endpoint=hub.endpoint, retry=FAST)
    assert "acme/tiny-llm" in str(info.value) and "no-such-branch" in str(info.value)
    assert info.value.what == "revision"
    assert len(hub.requests_matching("/api/models/acme/tiny-llm")) == 1
    assert not is_retryable(info.value)


@pytest.mark.parametrize("token", [None, GOOD_TOKEN])
def test_unknown_repo_is_not_found_without_retry(hub: HfHubStandIn, token: str | None) -> None:
    with pytest.raises(ModelNotFoundError) as info:
        resolve_revision("acme/does-not-exist", "main", token=token, endpoint=hub.endpoint, retry=FAST)
    msg = str(info.value)
    assert "acme/does-not-exist" in msg and "'main'" in msg and "HF_TOKEN" in msg
    assert info.value.what == "repository"
    assert len(hub.requests_matching("/api/models/acme/does-not-exist")) == 1


def test_private_repo_needs_authorized_token(hub: HfHubStandIn, tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError):
        resolve_revision("acme/private", "main", endpoint=hub.endpoint, retry=FAST)
    assert resolve_revision("acme/private", "main", token=GOOD_TOKEN, endpoint=hub.endpoint) == SHA_MAIN


def test_invalid_token_is_access_denied_not_retried(hub: HfHubStandIn) -> None:
    with pytest.raises(HubAccessDeniedError) as info:
        resolve_revision("acme/tiny-llm", "main", token="hf_not_a_real_token_000000000", endpoint=hub.endpoint,
                         retry=FAST)
    assert "401" in str(info.value) and "settings/tokens" in str(info.value)
    assert len(hub.requests_matching("/api/models/acme/tiny-llm")) == 1


def test_offline_mode_fails_fast_without_retry(hub: HfHubStandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(OfflineModeIsEnabled, match="HF_HUB_OFFLINE") as info:
        resolve_revision("acme/tiny-llm", "main", endpoint=hub.endpoint, retry=FAST)
    assert not is_retryable(info.value) and hub.requests == []


# --------------------------------------------------------------------------------------- file selection


def test_select_files_keeps_build_inputs_only() -> None:
    assert select_files(list(_full_repo_files("x"))) == EXPECTED_MAIN


def test_select_files_falls_back_to_bin_only_without_safetensors() -> None:
    names = ["config.json", "pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin",
             "pytorch_model.bin.index.json", "training_args.bin", "tokenizer.model", "tf_model.h5", "model.gguf"]
    assert select_files(names) == ["config.json", "pytorch_model-00001-of-00002.bin",
                                   "pytorch_model-00002-of-00002.bin", "pytorch_model.bin.index.json",
                                   "tokenizer.model"]


def test_select_files_skips_mistral_consolidated_duplicate_and_keeps_tiktoken_and_remote_code() -> None:
    names = ["config.json", "consolidated.safetensors", "model-00001-of-00001.safetensors", "params.json",
             "qwen.tiktoken", "tokenization_qwen.py", "merges.txt", "vocab.json", "chat_template.jinja"]
    assert select_files(names) == ["chat_template.jinja", "config.json", "merges.txt",
                                   "model-00001-of-00001.safetensors", "qwen.tiktoken", "tokenization_qwen.py",
                                   "vocab.json"]


# ------------------------------------------------------------------------------------------- download


def test_download_pins_commit_selects_files_and_is_byte_identical(hub: HfHubStandIn, tmp_path: Path) -> None:
    seen: list[tuple[int, int, str]] = []
    result = _download(hub, tmp_path, progress=lambda d, t, f: seen.append((d, t, f)))
    assert result.commit_sha == SHA_MAIN and result.requested_revision == "main"
    assert result.local_dir == tmp_path / "models" / "acme--tiny-llm" / SHA_MAIN
    assert [f.path for f in result.files] == EXPECTED_MAIN
    files = _full_repo_files("main")
    for name in EXPECTED_MAIN:
        assert (result.local_dir / name).read_bytes() == files[name]
    assert result.total_bytes == sum(len(files[n]) for n in EXPECTED_MAIN)
    shard = next(f for f in result.files if f.path == "model-00001-of-00002.safetensors")
    assert shard.sha256 == hashlib.sha256(files[shard.path]).hexdigest()
    on_disk = sorted(p.name for p in result.local_dir.iterdir())
    assert on_disk == sorted([*EXPECTED_MAIN, COMPLETE_MARKER])
    assert not list((tmp_path / "models" / "acme--tiny-llm").glob(".staging-*"))
    assert hub.requests_matching("pytorch_model.bin") == [] and hub.requests_matching("onnx") == []
    # progress: monotonic, ends at total
    dones = [d for d, _, _ in seen]
    assert dones == sorted(dones) and seen[-1][0] == seen[-1][1] == result.total_bytes
    assert DownloadResult.model_validate_json(result.model_dump_json()) == result


def test_second_download_of_same_commit_transfers_nothing(hub: HfHubStandIn, tmp_path: Path) -> None:
    first = _download(hub, tmp_path)
    hub.requests.clear()
    second = _download(hub, tmp_path, revision=SHA_MAIN)
    assert second.local_dir == first.local_dir and second.requested_revision == SHA_MAIN
    assert hub.requests_matching("/resolve/") == [] and hub.requests_matching("/cdn-lfs/") == []
    assert len(hub.requests) == 1  # only the revision lookup


def test_download_by_tag_gets_that_commits_bytes(hub: HfHubStandIn, tmp_path: Path) -> None:
    result = _download(hub, tmp_path, revision="v1.0")
    assert result.commit_sha == SHA_V1
    assert (result.local_dir / "config.json").read_bytes() == _full_repo_files("v1")["config.json"]
    assert all(f"/resolve/{SHA_V1}/" in r.path for r in hub.requests_matching("/resolve/"))


def test_bin_only_repo_downloads_bin_weights(hub: HfHubStandIn, tmp_path: Path) -> None:
    result = _download(hub, tmp_path, repo="acme/bin-only")
    assert [f.path for f in result.files] == ["config.json", "pytorch_model.bin", "tokenizer.model"]


def test_repo_without_weights_is_rejected_before_transfer(hub: HfHubStandIn, tmp_path: Path) -> None:
    with pytest.raises(NoModelFilesError, match="acme/no-weights.*weights"):
        _download(hub, tmp_path, repo="acme/no-weights")
    assert hub.requests_matching("/resolve/") == []


def test_gated_repo_without_token_names_license_page_and_token_settings(hub: HfHubStandIn, tmp_path: Path) -> None:
    with pytest.raises(GatedModelError) as info:
        _download(hub, tmp_path, repo="acme/gated")
    msg = str(info.value)
    assert info.value.status == 401
    assert "https://huggingface.co/acme/gated" in msg and "HF_TOKEN" in msg and "Prefect Secret" in msg
    # The flows read the token from the Secret block named hf-token; no flow takes an hf_token parameter.
    assert "'hf-token'" in msg and "hf_token" not in msg
    assert len(hub.requests_matching("/acme/gated/resolve/")) == 1  # not retried
    assert not is_retryable(info.value)
    assert not (tmp_path / "models" / "acme--gated" / SHA_MAIN).exists()


def test_gated_repo_with_unapproved_token_is_403_and_says_token_lacks_access(hub: HfHubStandIn,
                                                                            tmp_path: Path) -> None:
    with pytest.raises(GatedModelError) as info:
        _download(hub, tmp_path, repo="acme/gated", token=OTHER_TOKEN)
    assert info.value.status == 403
    assert "not been granted" in str(info.value) and "https://huggingface.co/acme/gated" in str(info.value)
    assert len(hub.requests_matching("/acme/gated/resolve/")) == 1


def test_gated_repo_with_token_from_hf_token_env(hub: HfHubStandIn, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", GOOD_TOKEN)
    result = _download(hub, tmp_path, repo="acme/gated")
    assert (result.local_dir / "config.json").is_file()
    assert all(r.authenticated for r in hub.requests_matching("/acme/gated/"))


def test_server_errors_are_retried_then_succeed(hub: HfHubStandIn, tmp_path: Path) -> None:
    hub.inject_status("/api/models/acme/tiny-llm/revision/", 503, times=2)
    hub.inject_status("/resolve/" + SHA_MAIN + "/tokenizer.json", 500, times=1)
    hub.inject_status("/cdn-lfs/", 502, times=1)
    result = _download(hub, tmp_path)
    assert (result.local_dir / "tokenizer.json").read_bytes() == _full_repo_files("main")["tokenizer.json"]
    assert len(hub.requests_matching("/resolve/" + SHA_MAIN + "/tokenizer.json")) == 2


def test_persistent_server_errors_give_up_with_retryable_error(hub: HfHubStandIn, tmp_path: Path) -> None:
    hub.inject_status("/api/models/acme/tiny-llm", 503, times=10)
    with pytest.raises(HubTransferError, match="after 3 attempts") as info:
        _download(hub, tmp_path, retry=RetryPolicy(max_attempts=3, base_delay_s=0.01, max_delay_s=0.01))
    assert is_retryable(info.value)
    assert len(hub.requests_matching("/api/models/acme/tiny-llm")) == 3


def test_429_waits_for_retry_after(hub: HfHubStandIn, tmp_path: Path) -> None:
    hub.inject_status("/api/models/acme/tiny-llm/revision/", 429, times=1, retry_after="1")
    started = time.monotonic()
    resolve_revision("acme/tiny-llm", "main", endpoint=hub.endpoint,
                     retry=RetryPolicy(max_attempts=3, base_delay_s=0.0, max_delay_s=0.0))
    assert time.monotonic() - started >= 0.95


def test_dropped_transfer_is_resumed_with_range_in_process(hub: HfHubStandIn, tmp_path: Path) -> None:
    name = "model-00001-of-00002.safetensors"
    hub.drop_after(name, 100_000, times=1)
    result = _download(hub, tmp_path)
    cdn = hub.requests_matching(f"/cdn-lfs/{hashlib.sha256(_full_repo_files('main')[name]).hexdigest()}")
    assert [r.range for r in cdn] == [None, "bytes=100000-"]
    assert (result.local_dir / name).read_bytes() == _full_repo_files("main")[name]


def test_partial_file_survives_a_failed_run_and_next_run_resumes_it(hub: HfHubStandIn, tmp_path: Path) -> None:
    name = "model-00001-of-00002.safetensors"
    content = _full_repo_files("main")[name]
    hub.drop_after(name, 70_000, times=1)
    with pytest.raises(HubTransferError) as info:
        _download(hub, tmp_path, retry=RetryPolicy(max_attempts=1))
    assert is_retryable(info.value)
    repo_dir = tmp_path / "models" / "acme--tiny-llm"
    assert not (repo_dir / SHA_MAIN).exists()  # nothing looks complete
    part = repo_dir / f".staging-{SHA_MAIN}" / (name + ".part")
    assert part.read_bytes() == content[:70_000]

    hub.requests.clear()
    result = _download(hub, tmp_path)
    cdn = hub.requests_matching(f"/cdn-lfs/{hashlib.sha256(content).hexdigest()}")
    assert [r.range for r in cdn] == ["bytes=70000-"]
    assert (result.local_dir / name).read_bytes() == content
    # files completed by the failed run were not fetched again
    assert hub.requests_matching("/resolve/" + SHA_MAIN + "/config.json") == []


def test_disk_preflight_fails_before_transfer_naming_needed_free_and_path(hub: HfHubStandIn, tmp_path: Path) -> None:
    with pytest.raises(InsufficientDiskError) as info:
        _download(hub, tmp_path, repo="acme/huge")
    msg = str(info.value)
    assert str(tmp_path / "models" / "acme--huge") in msg and "need" in msg and "free" in msg
    assert info.value.needed_bytes > 2**60 - 1 and info.value.free_bytes < 2**60
    assert hub.requests_matching("/resolve/") == [] and not is_retryable(info.value)


def test_disk_preflight_counts_the_margin(hub: HfHubStandIn, tmp_path: Path) -> None:
    with pytest.raises(InsufficientDiskError, match="margin"):
        _download(hub, tmp_path, min_free_bytes_margin=2**62)


def test_token_never_appears_in_logs_errors_or_results(hub: HfHubStandIn, tmp_path: Path,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    hf_root = logging.getLogger("huggingface_hub")
    hf_root.propagate = True
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="huggingface_hub")
    hub.inject_status("/cdn-lfs/", 503, times=1)  # exercise the retry warning path too
    result = _download(hub, tmp_path, repo="acme/gated", token=GOOD_TOKEN)
    texts = [caplog.text, result.model_dump_json(), repr(result)]
    for token in (OTHER_TOKEN, None):
        with pytest.raises(GatedModelError) as info:
            _download(hub, tmp_path / "other", repo="acme/gated", token=token)
        exc: BaseException | None = info.value
        while exc is not None:
            texts += [str(exc), repr(exc)]
            exc = exc.__cause__ or exc.__context__
    texts.append(caplog.text)
    assert any("Retrying" in t or "retrying" in t for t in texts)  # the logs were actually captured
    for text in texts:
        assert GOOD_TOKEN not in text and OTHER_TOKEN not in text


# ----------------------------------------------------------------------------------------- is_retryable


def _http_error(status: int) -> HfHubHTTPError:
    request = httpx2.Request("GET", "http://hub.invalid/x")
    return HfHubHTTPError(f"{status}", response=httpx2.Response(status, request=request))


@pytest.mark.parametrize(("exc", "expected"), [
    (httpx2.ConnectError("refused"), True),
    (httpx2.ReadTimeout("slow"), True),
    (httpx2.RemoteProtocolError("peer closed"), True),
    (ConnectionResetError(), True),
    (_http_error(500), True), (_http_error(503), True), (_http_error(429), True), (_http_error(408), True),
    (_http_error(401), False), (_http_error(403), False), (_http_error(404), False), (_http_error(400), False),
    (GatedModelError("a/b", 403, "", True), False),
    (ModelNotFoundError("a/b", "main", "repository"), False),
    (InsufficientDiskError(Path("/x"), 10, 1, 0), False),
    (ValueError("bug"), False),
])
def test_is_retryable_classification(exc: BaseException, expected: bool) -> None:
    assert is_retryable(exc) is expected


def test_retry_policy_backoff_grows_is_capped_and_honours_retry_after() -> None:
    policy = RetryPolicy(base_delay_s=1.0, max_delay_s=8.0, max_retry_after_s=30.0)
    for attempt, cap in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)]:
        delays = [policy.delay_s(attempt) for _ in range(50)]
        assert all(cap / 2 <= d <= cap for d in delays)
        assert len(set(delays)) > 1  # jittered
    assert policy.delay_s(1, retry_after_s=20.0) == 20.0
    assert policy.delay_s(1, retry_after_s=1000.0) == 30.0


# ------------------------------------------------------------------------------------------ local dir


def _local_model(root: Path) -> Path:
    root.mkdir()
    (root / "config.json").write_text('{"architectures": ["LlamaForCausalLM"]}')
    (root / "model.safetensors").write_bytes(b"w" * 1000)
    (root / "tokenizer.json").write_text("{}")
    (root / "notes.txt").write_text("ignored")
    return root


def test_use_local_model_hashes_file_list_sizes_and_mtimes(tmp_path: Path) -> None:
    root = _local_model(tmp_path / "m")
    first = use_local_model(root)
    assert first.source == "local" and first.local_dir == root
    assert [f.path for f in first.files] == ["config.json", "model.safetensors", "tokenizer.json"]
    assert first.commit_sha.startswith("local-") and len(first.commit_sha) == 6 + 64
    assert use_local_model(root).commit_sha == first.commit_sha
    (root / "notes.txt").write_text("unselected files do not matter")
    assert use_local_model(root).commit_sha == first.commit_sha
    st = (root / "model.safetensors").stat()
    os.utime(root / "model.safetensors", ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert use_local_model(root).commit_sha != first.commit_sha


@pytest.mark.parametrize(("remove", "corrupt", "match"), [
    ("config.json", None, "no config.json"),
    ("model.safetensors", None, "no weights"),
    ("tokenizer.json", None, "no tokenizer"),
    (None, "config.json", "not valid JSON"),
])
def test_use_local_model_rejects_incomplete_dirs(tmp_path: Path, remove: str | None, corrupt: str | None,
                                                 match: str) -> None:
    root = _local_model(tmp_path / "m")
    if remove:
        (root / remove).unlink()
    if corrupt:
        (root / corrupt).write_text("{not json")
    with pytest.raises(LocalModelError, match=match):
        use_local_model(root)


def test_use_local_model_rejects_a_file_path(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(LocalModelError, match="not a directory"):
        use_local_model(tmp_path / "f")


# ------------------------------------------------------------------------------------------- progress


def test_download_progress_reports_percent_and_file() -> None:
    out = io.StringIO()
    printer = download_progress(out, min_interval_s=3600)
    printer(0, 2048, "a.safetensors")
    printer(1024, 2048, "a.safetensors")  # throttled away
    printer(2048, 2048, "b.safetensors")  # completion always prints
    lines = [line for line in out.getvalue().replace("\r", "\n").splitlines() if line.strip()]
    assert len(lines) == 2
    assert " 0%" in lines[0] and "a.safetensors" in lines[0]
    assert "100%" in lines[1] and "2.00k/2.00k" in lines[1] and "b.safetensors" in lines[1]


# ------------------------------------------------------------------------ config.json for plan and dry runs


def test_config_json_comes_from_the_hub_and_then_from_the_local_cache(
        hub: HfHubStandIn, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from trtllm_oci.hub.model_config import fetch_config_json

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    path = fetch_config_json("acme/tiny-llm", SHA_MAIN, endpoint=hub.endpoint)
    assert path.read_bytes() == _full_repo_files("main")["config.json"]
    assert fetch_config_json("acme/tiny-llm", SHA_MAIN, endpoint="http://127.0.0.1:9") == path  # the cache answers now


def test_an_unreachable_hub_fails_at_once_instead_of_retrying(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import socket

    from trtllm_oci.errors import TrtllmOciError
    from trtllm_oci.hub.model_config import fetch_config_json

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    with caplog.at_level(logging.WARNING), pytest.raises(TrtllmOciError) as err:
        fetch_config_json("acme/tiny-llm", "main", endpoint=closed)
    assert f"Hugging Face Hub at {closed} is unreachable" in str(err.value)
    assert "model.local_dir" in str(err.value)
    assert "Retrying" not in caplog.text
