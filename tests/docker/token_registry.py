"""A registry behind Docker token auth (Bearer challenges), as strict as OCIR for what the flows rely on.

The registry is the real distribution binary configured with `auth: token`; it verifies the JWTs itself
(signature against rootcertbundle via the libtrust key id in the `kid` header, issuer, audience, expiry with
distribution's 60 s leeway, granted actions), so the stand-in is only the token endpoint (the realm). Its rules,
each as OCIR applies them:

- Basic credentials are required; OCIR has no anonymous push and answers private pulls without credentials with
  "Anonymous users are only allowed read access on public repos" (the wording trtllm_oci/image/push.py matches).
- The user is `<tenancy-namespace>/<user>`, or `<tenancy-namespace>/<domain>/<user>` for federated (IDCS:
  `oracleidentitycloudservice`) and identity-domain users, with an auth token as the password
  (https://www.ateam-oracle.com/authentication-mechanisms-for-oci-container-registry-ocir, option 1;
  oracle-samples/oci-data-science-ai-samples model-deployment/containers/nim/README.md for the IDCS form). A bare
  user without the namespace, another tenancy's namespace or a wrong token is refused with 401.
- Or the user `BEARER_TOKEN` with a JWT from the signed `GET /20180419/docker/token`, which "expires
  automatically and must be regenerated" (same A-team page, option 2): `login_token_valid` says whether such a
  JWT is (still) good; the OCI stand-in issues them with a configurable lifetime and no leeway.
- Scopes are granted only for repositories under the tenancy's namespace (`<region>.ocir.io/<namespace>/<repo>`,
  https://docs.cloud.oracle.com/iaas/Content/Registry/Concepts/registrywhatisarepository.htm); for any other name
  the token carries no actions, which the token protocol allows ("the token server ... may grant a subset":
  distribution/distribution docs/spec/auth/token.md) and the registry then refuses the request.
- Tokens live `token_seconds` (the response's `expires_in`).
- The login is checked on every token request, not once: docker asks the realm again with the same Basic
  credentials for each push and whenever its registry token runs out (distribution registry/client/auth/
  session.go, tokenHandler: fetchToken again once the cached token's expiry has passed), so a BEARER_TOKEN
  login that expired since the last request is refused part-way, as OCIR refuses it (pushing with the docker
  CLI: https://docs.oracle.com/en-us/iaas/Content/Registry/Tasks/registrypushingimagesusingthedockercli.htm; the
  token "expires automatically and must be regenerated", A-team page above). Blobs a refused push completed
  stay stored (the registry is distribution itself), so a push sent again with a new login skips them.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
import secrets
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

SERVICE = "trtllm-oci-test-registry"
ISSUER = "trtllm-oci-test-issuer"
OCIR_TOKEN_USERNAME = "BEARER_TOKEN"
# `<namespace>/<user>` or `<namespace>/<identity-domain>/<user>` (OCIR's docker login user forms).
_OCIR_USER_RE = re.compile(r"^(?P<namespace>[a-z0-9][a-z0-9_-]*)/(?:(?P<domain>[^/]+)/)?(?P<user>[^/]+)$")


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
class Grant:
    """One answer of the token endpoint: who asked, for which scopes, what was granted (None: refused)."""

    username: str | None
    scopes: tuple[str, ...]
    granted: tuple[str, ...] | None
    at: float


@dataclass
class TokenRegistry:
    address: str
    username: str
    password: str
    realm: str
    namespace: str
    accounts: dict[str, str] = field(repr=False)  # OCIR user -> auth token; the test may add or revoke
    grants: list[Grant] = field(default_factory=list)
    issue_pull_token: Callable[[str], str] = field(default=lambda repository: "", repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def refusals(self) -> list[Grant]:
        return [g for g in self.grants if g.granted is None]

    def pushes_granted(self) -> list[Grant]:
        return [g for g in self.grants
                if g.granted and any("push" in a.rpartition(":")[2].split(",") for a in g.granted)]


@contextmanager
def token_registry(state_dir: Path, *, namespace: str = "ns", user: str = "oci-user",
                   login_token_valid: Callable[[str], bool] | None = None,
                   token_seconds: int = 300) -> Iterator[TokenRegistry]:
    """`login_token_valid`: whether a JWT from OCIR's /20180419/docker/token is good now (the `BEARER_TOKEN`
    login); None: that login is refused."""
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
    username, password = f"{namespace}/{user}", secrets.token_urlsafe(16)
    accounts = {username: password}
    grants: list[Grant] = []
    lock = threading.Lock()

    def granted_access(scopes: list[str]) -> list[dict]:
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            repo, _, actions = rest.rpartition(":")
            if kind == "repository" and repo.startswith(f"{namespace}/"):
                access.append({"type": kind, "name": repo, "actions": [a for a in actions.split(",") if a]})
        return access

    def issue(subject: str, access: list[dict]) -> str:
        issued = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": subject,
            "aud": SERVICE,
            "exp": issued + token_seconds,
            "nbf": issued - 10,
            "iat": issued,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        header = {"typ": "JWT", "alg": "RS256", "kid": kid}
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"

    def authenticate(header: str | None) -> tuple[str | None, str | None]:
        """(user, None) when the Basic credentials are good, else (user or None, why not)."""
        if not header or not header.startswith("Basic "):
            return None, "Anonymous users are only allowed read access on public repos"
        try:
            who, _, secret = base64.b64decode(header[len("Basic "):]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None, "malformed Basic credentials"
        if who == OCIR_TOKEN_USERNAME:
            ok = login_token_valid is not None and login_token_valid(secret)
            return who, None if ok else "Not Authorized (the bearer token is invalid or has expired)"
        form = _OCIR_USER_RE.match(who)
        if form is None or form["namespace"] != namespace:
            return who, "Not Authorized (the user must be '<tenancy-namespace>/<user>')"
        if accounts.get(who) != secret:
            return who, "Not Authorized"
        return who, None

    def issue_pull_token(repository: str) -> str:
        """A pull token as the Data Science service's own principal gets it (policy 'allow any-user to read repos
        ... where request.principal.type=datasciencemodeldeployment', shared/reference/oci.md 1.2)."""
        return issue("datasciencemodeldeployment", granted_access([f"repository:{repository}:pull"]))

    class TokenHandler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:
            url = urlparse(self.path)
            query = parse_qs(url.query)
            scopes = query.get("scope", [])
            if url.path != "/token" or query.get("service") != [SERVICE]:
                self._reply(400, {"errors": [{"code": "BAD_REQUEST", "message": "unknown service"}]})
                return
            who, refused = authenticate(self.headers.get("Authorization"))
            if refused:
                with lock:
                    grants.append(Grant(who, tuple(scopes), None, time.time()))
                self._reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": refused}]})
                return
            assert who is not None
            access = granted_access(scopes)
            with lock:
                grants.append(Grant(who, tuple(scopes), tuple(f"{a['name']}:{','.join(a['actions'])}"
                                                              for a in access), time.time()))
            token = issue(who, access)
            self._reply(200, {"token": token, "access_token": token, "expires_in": token_seconds})

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
        yield TokenRegistry(address=address, username=username, password=password, realm=realm,
                            namespace=namespace, accounts=accounts, grants=grants,
                            issue_pull_token=issue_pull_token)
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
