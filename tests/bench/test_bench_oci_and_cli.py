"""OCI-signed streaming against a local signature-checking server; the CLI in a subprocess."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.standins.openai_server import OpenAIStandIn
from trtllm_oci.bench.columns import REQUIRED_SUMMARY_CSV_COLUMNS
from trtllm_oci.bench.metrics import summarize_point
from trtllm_oci.bench.payload import ModelCapabilities
from trtllm_oci.bench.records import RequestRecord, RequestSpec
from trtllm_oci.bench.transports import OciModelDeploymentTransport
from trtllm_oci.bench.wire import OpenAIWire

# The installed console script, as a user runs it (the venv's bin beside this interpreter).
TRTLLM_OCI = Path(sys.executable).with_name("trtllm-oci")

REPO = Path(__file__).resolve().parents[2]
_SIG_RE = re.compile(r'(\w+)="([^"]*)"')
# oci/signer.py: POST/PUT/PATCH sign these headers, in this order.
_BODY_SIGNED = ["date", "(request-target)", "host", "content-length", "content-type", "x-content-sha256"]


def _key_and_fingerprint():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    digest = hashlib.md5(der).hexdigest()  # noqa: S324 - OCI API key fingerprints are MD5
    fingerprint = ":".join(digest[i : i + 2] for i in range(0, 32, 2))
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return key, fingerprint, pem.decode()


def _signer(pem: str, fingerprint: str):
    import oci

    return oci.signer.Signer(
        tenancy="ocid1.tenancy.oc1..aaaatest",
        user="ocid1.user.oc1..aaaatest",
        fingerprint=fingerprint,
        private_key_file_location=None,
        private_key_content=pem,
    )


def _check_signature(request: web.Request, body: bytes, public_key) -> str | None:
    """What the OCI front end checks, minus key lookup: header set, keyId form, body hash, RSA signature."""
    auth = request.headers.get("Authorization", "")
    if not auth.startswith("Signature "):
        return "missing Signature authorization"
    params = dict(_SIG_RE.findall(auth))
    if params.get("algorithm") != "rsa-sha256" or params.get("version") != "1":
        return f"bad algorithm/version {params}"
    if not re.fullmatch(r"ocid1\.tenancy\.[^/]+/ocid1\.user\.[^/]+/([0-9a-f]{2}:){15}[0-9a-f]{2}", params.get("keyId", "")):
        return f"bad keyId {params.get('keyId')}"
    signed = params.get("headers", "").split()
    if signed != _BODY_SIGNED:
        return f"signed headers {signed}"
    if base64.b64encode(hashlib.sha256(body).digest()).decode() != request.headers.get("x-content-sha256"):
        return "x-content-sha256 does not match the body"
    if int(request.headers.get("content-length", -1)) != len(body):
        return "content-length does not match the body"
    lines = []
    for name in signed:
        if name == "(request-target)":
            lines.append(f"(request-target): {request.method.lower()} {request.path_qs}")
        else:
            lines.append(f"{name}: {request.headers.get(name, '')}")
    try:
        public_key.verify(base64.b64decode(params["signature"]), "\n".join(lines).encode(), padding.PKCS1v15(),
                          hashes.SHA256())
    except Exception:  # noqa: BLE001 - any verification failure is a 401
        return "signature does not verify"
    return None


def _openai_chunks(tokens: int) -> list[str]:
    """trtllm-serve's chat stream (postprocess_handlers.py): role, content deltas, usage, [DONE]."""
    head = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "served"}
    chunks = [{**head, "choices": [{"index": 0, "delta": {"role": "assistant"}}]}]
    chunks += [{**head, "choices": [{"index": 0, "delta": {"content": f" t{i}"}}]} for i in range(tokens)]
    chunks.append({**head, "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": tokens,
                                                    "total_tokens": 9 + tokens}})
    return [f"data: {json.dumps(c)}\n\n" for c in chunks] + ["data: [DONE]\n\n"]


async def _serve_and_send(public_key, signer, tokens: int = 4, wire=None):
    seen: list[dict] = []

    async def predict(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        problem = _check_signature(request, body, public_key)
        if problem:
            return web.json_response({"code": "NotAuthenticated", "message": problem}, status=401)
        seen.append(await request.json())
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        if wire is None:
            events = [f'data: {{"text_output": " t{i}", "num_output_tokens": {i + 1}}}\n\n' for i in range(tokens)]
        else:
            events = _openai_chunks(tokens)
        for event in events:
            await asyncio.sleep(0.01)
            await response.write(event.encode())
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/ocid1.datasciencemodeldeployment.oc1.test/predictWithResponseStream", predict)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    url = f"http://127.0.0.1:{port}/ocid1.datasciencemodeldeployment.oc1.test/predict"
    try:
        caps = ModelCapabilities.assumed_ensemble()
        async with OciModelDeploymentTransport(url, signer, caps=caps, wire=wire) as transport:
            records = [RequestRecord(i, RequestSpec("hello", tokens)) for i in range(2)]
            await asyncio.gather(*(transport.send(r) for r in records))
            assert transport.label == ("oci_md" if wire is None else "oci_md+openai_chat")
    finally:
        await runner.cleanup()
    return records, seen


def test_oci_transport_signs_each_request():
    key, fingerprint, pem = _key_and_fingerprint()
    records, seen = asyncio.run(_serve_and_send(key.public_key(), _signer(pem, fingerprint)))
    assert all(r.ok for r in records), [r.error for r in records]
    assert [r.output_text for r in records] == [" t0 t1 t2 t3"] * 2
    assert seen[0]["min_tokens"] == 4 and seen[0]["stream"] is True


def test_oci_transport_carries_openai_bodies_signed():
    """A deployment running trtllm-serve: the OpenAI chat body, signed, streamed back through OCI."""
    key, fingerprint, pem = _key_and_fingerprint()
    wire = OpenAIWire("served", "chat")
    records, seen = asyncio.run(_serve_and_send(key.public_key(), _signer(pem, fingerprint), wire=wire))
    assert all(r.ok for r in records), [r.error for r in records]
    assert [r.output_text for r in records] == [" t0 t1 t2 t3"] * 2
    assert seen[0]["model"] == "served" and seen[0]["messages"] == [{"role": "user", "content": "hello"}]
    assert seen[0]["stream"] is True and seen[0]["stream_options"] == {"include_usage": True}
    assert "text_input" not in seen[0]
    summary, _ = summarize_point(records, None)
    assert summary["osl_mean"] == 4 and summary["token_count_source"] == "server" and summary["isl_mean"] == 9


def test_oci_transport_records_a_rejected_signature():
    key, fingerprint, _ = _key_and_fingerprint()
    _, _, other_pem = _key_and_fingerprint()  # signs with a key the server does not know
    records, seen = asyncio.run(_serve_and_send(key.public_key(), _signer(other_pem, fingerprint)))
    assert not seen
    assert all(r.http_status == 401 and "signature does not verify" in r.error for r in records)


def test_oci_transport_rejects_a_non_signer():
    with pytest.raises(TypeError, match="no do_request_sign"):
        OciModelDeploymentTransport("https://md.example/ocid1", signer=object())


# ---------------------------------------------------------------- CLI


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([str(TRTLLM_OCI), "bench", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)


def test_cli_writes_summary_csv(timed_triton, tmp_path, tiny_model_dir):
    out = tmp_path / "out"
    result = _cli(
        "--url", timed_triton.http_url, "--model", "timed_stream", "--transport", "http",
        "--concurrency", "1,4", "--input-len", "16", "--output-len", "6", "--num-requests", "8",
        "--tokenizer", str(tiny_model_dir), "--extra-input", "first_token_delay_ms=20",
        "--extra-input", "inter_token_delay_ms=2", "--slo-ttft-ms", "500", "--gpu-count", "1",
        "--usd-per-hour", "2", "--out", str(out),
    )
    assert result.returncode == 0, result.stderr
    summary = pd.read_csv(out / "summary.csv")
    assert set(REQUIRED_SUMMARY_CSV_COLUMNS) <= set(summary.columns)
    assert list(summary["concurrency"]) == [1, 4]
    assert list(summary["n_ok"]) == [8, 8] and list(summary["n_err"]) == [0, 0]
    assert (summary["input_count_source"] == "server").all() and (summary["token_count_source"] == "server").all()
    assert (summary["osl_mean"] == 6).all() and (summary["osl_err_mean_pct"] == 0).all()
    assert (summary["ttft_ms_p50"] > 19).all() and (summary["ttft_ms_p50"] < 60).all()
    requests = pd.read_parquet(out / "requests.parquet")
    assert len(requests) == 16 and requests["ok"].all()
    for name in ("summary.parquet", "requests.csv", "summary.md", "throughput_vs_latency.png", "pareto.png"):
        assert (out / name).stat().st_size > 0, name
    assert "Peak throughput" in (out / "summary.md").read_text()


def test_cli_grpc_transport(timed_triton, tmp_path):
    result = _cli(
        "--url", timed_triton.grpc_url, "--model", "timed_stream", "--transport", "grpc", "--concurrency", "2",
        "--input-len", "4", "--output-len", "3", "--num-requests", "4", "--no-plots", "--out", str(tmp_path),
        "--extra-input", "first_token_delay_ms=5",
    )
    assert result.returncode == 0, result.stderr
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert summary.loc[0, "transport"] == "grpc" and summary.loc[0, "n_ok"] == 4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--concurrency", "0"], "every value must be >= 1"),
        (["--dataset", "sharegpt"], "use 'random' or 'sharegpt FILE'"),
        (["--dataset", "sharegpt", "/nonexistent.json", "--fixed-output"], "sharegpt /nonexistent.json: file not found"),
        (["--tokenizer", "/nonexistent-dir"], "--tokenizer /nonexistent-dir is not a directory"),
        (["--io-pairs", "128-128"], "must look like INPUT/OUTPUT"),
        (["--transport", "grpc", "--url", "http://x:8001"], "must be host:port"),
        (["--api", "chat"], "--api chat sends OpenAI bodies: use it with --transport openai"),
        (["--no-stream"], "--no-stream is for --transport openai"),
        (["--transport", "openai", "--openai-length-fields", "min_length"], "output-length fields ['min_length']"),
        (["--transport", "openai", "--url", "localhost:8000"], "must start with http:// or https://"),
        (["--transport", "openai", "--request-timeout-s", "0"], "--request-timeout-s 0.0 must be > 0"),
    ],
)
def test_cli_bad_inputs_fail_clearly(args, message, tmp_path):
    base = ["--url", "http://127.0.0.1:9", "--out", str(tmp_path / "o")]
    result = _cli(*base, *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert not (tmp_path / "o" / "summary.csv").exists()


def test_cli_unreachable_server(tmp_path):
    result = _cli("--url", "http://127.0.0.1:9", "--out", str(tmp_path / "o"))
    assert result.returncode == 2 and "cannot reach http://127.0.0.1:9" in result.stderr


def test_cli_help_lists_the_options():
    result = _cli("--help")
    for option in ("--request-rate", "--burstiness", "--max-concurrency", "--warmup", "--repeats", "--seed",
                   "--dataset", "--slo-ttft-ms", "--slo-tpot-ms", "--shape", "--io-pairs", "--tokenizer"):
        assert option in result.stdout


# ---------------------------------------------------------------- CLI: openai transport, --out, hung servers


def test_cli_openai_transport(tmp_path, tiny_model_dir):
    with OpenAIStandIn(first_token_delay_ms=10, inter_token_delay_ms=2) as server:
        result = _cli(
            "--transport", "openai", "--api", "completions", "--url", server.url, "--concurrency", "1,2",
            "--input-len", "8", "--output-len", "3", "--num-requests", "4", "--tokenizer", str(tiny_model_dir),
            "--no-plots", "--out", str(tmp_path),
        )
    assert result.returncode == 0, result.stderr
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert list(summary["transport"]) == ["openai_completions_sse"] * 2
    assert list(summary["model"]) == ["standin-model"] * 2  # the only model /v1/models lists
    assert list(summary["n_ok"]) == [4, 4] and (summary["osl_mean"] == 3).all()
    assert (summary["token_count_source"] == "server").all() and not summary["flag_client_token_counts"].any()
    assert all(s.route == "completions" and s.body["max_tokens"] == 3 for s in server.requests)


def test_cli_refuses_an_unwritable_out_before_any_request(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with OpenAIStandIn() as server:
        for out, message in ((blocker, "exists and is not a directory"), (blocker / "sub", "is not writable")):
            result = _cli("--transport", "openai", "--url", server.url, "--out", str(out))
            assert result.returncode == 2
            assert f"--out {out} {message}" in result.stderr and "Traceback" not in result.stderr
        assert server.requests == []  # nothing was sent


def test_cli_hung_server_records_timeouts_and_keeps_the_measured_points(tmp_path):
    """Answers the warm-up and the first load point, then accepts requests and never answers."""
    hang_from = 2 + 3  # warm-up (2, the widest concurrency) + the c=1 point's 3 requests
    with OpenAIStandIn(first_token_delay_ms=5, inter_token_delay_ms=1,
                       faults={i: "hang" for i in range(hang_from, 100)}) as server:
        result = _cli(
            "--transport", "openai", "--url", server.url, "--concurrency", "1,2", "--input-len", "4",
            "--output-len", "3", "--num-requests", "3", "--request-timeout-s", "1", "--no-plots",
            "--out", str(tmp_path), timeout=60,
        )
    assert result.returncode == 1, result.stderr
    assert "the server stopped answering during load point concurrency 2" in result.stderr
    assert "Traceback" not in result.stderr
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert list(summary["n_ok"]) == [3, 0] and list(summary["n_err"]) == [0, 3]
    requests = pd.read_csv(tmp_path / "requests.csv")
    assert requests[requests["load_point"] == 1]["error"].str.contains("within --request-timeout-s 1 s").all()


def test_cli_server_that_accepts_and_never_answers_the_probe(tmp_path):
    async def silent(reader, writer):
        await asyncio.sleep(3600)

    async def go():
        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            return await asyncio.to_thread(
                _cli, "--transport", "openai", "--url", f"http://127.0.0.1:{port}", "--request-timeout-s", "1",
                "--out", str(tmp_path / "o"), timeout=60)
        finally:
            server.close()

    result = asyncio.run(go())
    assert result.returncode == 2
    assert "/v1/models got no answer within 1 s" in result.stderr and "Traceback" not in result.stderr


def test_results_already_measured_survive_a_failure_later(tmp_path, monkeypatch):
    from trtllm_oci.bench.results import ResultWriter
    from trtllm_oci.bench.runner import BenchmarkConfig, run_benchmark
    from trtllm_oci.bench.transports import OpenAITransport

    class FailsLater(OpenAITransport):
        sent = 0

        async def send(self, record):
            FailsLater.sent += 1
            if FailsLater.sent > 2 + 4:  # warm-up 2, first point 4
                raise RuntimeError("the client crashed mid-run")
            await super().send(record)

    with OpenAIStandIn(first_token_delay_ms=2, inter_token_delay_ms=1) as server:
        config = BenchmarkConfig(url=server.url, transport="openai", concurrencies=[1, 2], io_pairs=[(4, 3)],
                                 num_requests=4)
        monkeypatch.setattr(BenchmarkConfig, "make_transport", lambda self: FailsLater(self.url))
        with pytest.raises(RuntimeError, match="crashed mid-run"):
            run_benchmark(config, on_point=ResultWriter(tmp_path).write_tables)
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert list(summary["concurrency"]) == [1] and list(summary["n_ok"]) == [4]
    assert len(pd.read_parquet(tmp_path / "requests.parquet")) == 4
    assert "| openai_chat_sse |" in (tmp_path / "summary.md").read_text()


@pytest.mark.parametrize(("api", "streaming", "suffix"), [
    ("chat", True, "/predictWithResponseStream"),  # MODEL_DEPLOY_PREDICT_ENDPOINT is the chat route
    ("completions", True, "/predictWithResponseStream/v1/completions"),
    ("completions", False, "/predict/v1/completions"),
])
def test_oci_transport_posts_openai_bodies_to_the_route_of_their_api(api, streaming, suffix):
    """A completions body on /v1/chat/completions is refused by trtllm-serve (its request models forbid extra
    fields): on an OpenAI deployment the body's API picks the path, through the allowlisted suffix."""
    from trtllm_oci.cloud.routes import openai_routes

    base = "https://md.example/ocid1.datasciencemodeldeployment.oc1.test"
    transport = OciModelDeploymentTransport(base + "/predict", lambda request: request, routes=openai_routes(),
                                            streaming=streaming, wire=OpenAIWire("served", api))
    assert transport.url == base + suffix
