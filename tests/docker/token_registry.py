"""A registry behind Docker token auth (Bearer challenges), the scheme OCIR uses.

The registry is the real distribution binary configured with `auth: token`; it verifies the
JWTs itself (signature against rootcertbundle via the libtrust key id in the `kid` header,
issuer, audience, expiry, granted actions), so the stand-in is only the token endpoint:
it checks Basic credentials and grants the requested scope, like OCIR's /20180419/docker/token.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import secrets
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

SERVICE = "trtllm-oci-test-registry"
ISSUER = "trtllm-oci-test-issuer"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _libtrust_key_id(public_key) -> str:
    # docker/libtrust:util.go keyIDFromCryptoKey: base32 of the first 240 bits of sha256(SPKI DER), in 4-char groups.
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    text = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(text[i : i + 4] for i in range(0, len(text), 4))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class TokenRegistry:
    address: str
    username: str
    password: str
    realm: str


@contextmanager
def token_registry(state_dir: Path) -> Iterator[TokenRegistry]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ISSUER)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    state_dir.mkdir(parents=True, exist_ok=True)
    bundle = state_dir / "token-root.pem"
    bundle.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    kid = _libtrust_key_id(key.public_key())
    username, password = "ns/oci-user", secrets.token_urlsafe(16)

    def issue(scope: str | None) -> str:
        access = []
        if scope:
            kind, repo, actions = scope.split(":", 2)
            access.append({"type": kind, "name": repo, "actions": actions.split(",")})
        issued = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": username,
            "aud": SERVICE,
            "exp": issued + 300,
            "nbf": issued - 10,
            "iat": issued,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        header = {"typ": "JWT", "alg": "RS256", "kid": kid}
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"

    class TokenHandler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:
            url = urlparse(self.path)
            query = parse_qs(url.query)
            expected = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
            if url.path != "/token" or query.get("service") != [SERVICE]:
                self._reply(400, {"errors": [{"code": "BAD_REQUEST", "message": "unknown service"}]})
            elif self.headers.get("Authorization") != expected:
                self._reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": "Not Authorized"}]})
            else:
                token = issue(query.get("scope", [None])[-1])
                self._reply(200, {"token": token, "access_token": token, "expires_in": 300})

        def _reply(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), TokenHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    realm = f"http://127.0.0.1:{server.server_address[1]}/token"
    address = f"127.0.0.1:{_free_port()}"
    config = state_dir / "config.yml"
    config.write_text(
        f"version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {state_dir / 'data'}\n"
        f"http:\n  addr: {address}\n  secret: {secrets.token_hex(8)}\n"
        f"auth:\n  token:\n    realm: {realm}\n    service: {SERVICE}\n    issuer: {ISSUER}\n"
        f"    rootcertbundle: {bundle}\n"
    )
    binary = shutil.which("docker-registry") or shutil.which("registry")
    if binary is None:
        raise RuntimeError("no registry binary; apt-get install -y docker-registry")
    log = (state_dir / "registry.log").open("wb")
    proc = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://{address}/v2/", timeout=2)
            except urllib.error.HTTPError as exc:
                if exc.code == 401:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"token-auth registry did not start; see {state_dir / 'registry.log'}")
            time.sleep(0.2)
        yield TokenRegistry(address=address, username=username, password=password, realm=realm)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        server.shutdown()
        server.server_close()
