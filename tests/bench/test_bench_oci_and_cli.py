"""OCI-signed streaming against a local signature-checking server; the CLI in a subprocess."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from trtllm_oci.bench.columns import REQUIRED_SUMMARY_CSV_COLUMNS
from trtllm_oci.bench.payload import ModelCapabilities
from trtllm_oci.bench.records import RequestRecord, RequestSpec
from trtllm_oci.bench.transports import OciModelDeploymentTransport

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


async def _serve_and_send(public_key, signer, tokens: int = 4):
    seen: list[dict] = []

    async def predict(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        problem = _check_signature(request, body, public_key)
        if problem:
            return web.json_response({"code": "NotAuthenticated", "message": problem}, status=401)
        seen.append(await request.json())
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for i in range(tokens):
            await asyncio.sleep(0.01)
            await response.write(f'data: {{"text_output": " t{i}", "num_output_tokens": {i + 1}}}\n\n'.encode())
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
        async with OciModelDeploymentTransport(url, signer, caps=ModelCapabilities.assumed_ensemble()) as transport:
            records = [RequestRecord(i, RequestSpec("hello", tokens)) for i in range(2)]
            await asyncio.gather(*(transport.send(r) for r in records))
    finally:
        await runner.cleanup()
    return records, seen


def test_oci_transport_signs_each_request():
    key, fingerprint, pem = _key_and_fingerprint()
    records, seen = asyncio.run(_serve_and_send(key.public_key(), _signer(pem, fingerprint)))
    assert all(r.ok for r in records), [r.error for r in records]
    assert [r.output_text for r in records] == [" t0 t1 t2 t3"] * 2
    assert seen[0]["min_tokens"] == 4 and seen[0]["stream"] is True


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
    return subprocess.run([sys.executable, "-m", "trtllm_oci.bench.cli", *args], capture_output=True, text=True,
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
