"""A local stand-in for the Hugging Face Hub HTTP API, for tests only.

Implements exactly the routes our download code reaches through huggingface_hub 2.4.0, with the
status codes, `X-Error-Code`/`X-Error-Message` headers and JSON bodies that
`huggingface_hub.utils._http.hf_raise_for_status` keys on (huggingface_hub:src/huggingface_hub/utils/_http.py@v2.4.0):

- GET  /api/models/{repo}                       -> model info at main (`HfApi.model_info`)
- GET  /api/models/{repo}/revision/{rev}        -> model info at a branch/tag/sha; `?blobs=true` adds size,
                                                    blobId and lfs{sha256,size,pointerSize} per sibling
- GET  /api/models/{repo}/refs                  -> branches and tags with their commits (`HfApi.list_repo_refs`);
                                                    `?include_prs=1` adds pullRequests
- POST /api/models/{repo}/paths-info/{rev}      -> form `paths=...` (`HfApi.get_paths_info`); lfs uses `oid`
- HEAD/GET /{repo}/resolve/{rev}/{file}         -> regular files inline; LFS files 302 to /cdn-lfs/... with
                                                    X-Repo-Commit, ETag, X-Linked-Size, X-Linked-ETag
- GET  /cdn-lfs/{sha256}/{file}                 -> the bytes, honouring `Range: bytes=N-[M]` with 206

Access rules follow the real Hub: unknown token -> 401 "Invalid credentials in Authorization header";
missing/private repo -> 401 (anonymous) or 404 (authenticated) RepoNotFound; gated repo info is public
but its files answer 401 GatedRepo (anonymous) or 403 GatedRepo (token without access); bad revision
-> 404 RevisionNotFound; missing file -> 404 EntryNotFound.

Fault injection: `inject_status(...)` answers the next N matching requests with a status (and optional
Retry-After); `drop_after(...)` sends full headers but closes the socket after N body bytes.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, unquote, urlsplit

LFS_SUFFIXES = (".safetensors", ".bin", ".model", ".onnx", ".msgpack", ".h5", ".gguf", ".pth")


def git_blob_sha1(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass
class StandInRepo:
    repo_id: str
    commits: dict[str, dict[str, bytes]]  # sha -> {path: content}
    refs: dict[str, str]  # branch or tag -> sha
    tags: set[str] = field(default_factory=set)  # which names in refs are tags; the others are branches
    gated: str | bool = False  # False, "auto" or "manual", as in the Hub's model info
    private: bool = False
    authorized_tokens: set[str] = field(default_factory=set)
    reported_sizes: dict[str, int] = field(default_factory=dict)  # override sizes in metadata only


@dataclass
class RecordedRequest:
    method: str
    path: str
    range: str | None
    authenticated: bool


@dataclass
class _Fault:
    pattern: str
    method: str | None
    remaining: int
    status: int | None = None
    retry_after: str | None = None
    drop_after_bytes: int | None = None


class HfHubStandIn:
    """Start with `start()` (or as a context manager); `endpoint` is then the base URL to pass as `endpoint=`."""

    def __init__(self, valid_tokens: set[str] | None = None) -> None:
        self.repos: dict[str, StandInRepo] = {}
        self.valid_tokens: set[str] = set(valid_tokens or ())
        self.requests: list[RecordedRequest] = []
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ setup
    def add_repo(self, repo: StandInRepo) -> StandInRepo:
        self.repos[repo.repo_id] = repo
        return repo

    def move_ref(self, repo_id: str, ref: str, sha: str, files: dict[str, bytes] | None = None,
                 tag: bool = False) -> None:
        """Point a branch (a push) or a tag (`tag=True`) at `sha`, adding the commit when `files` are given."""
        with self._lock:
            repo = self.repos[repo_id]
            if files is not None:
                repo.commits[sha] = files
            if sha not in repo.commits:
                raise KeyError(f"{repo_id} has no commit {sha}; pass its files")
            repo.refs[ref] = sha
            if tag:
                repo.tags.add(ref)

    def inject_status(self, pattern: str, status: int, times: int = 1, method: str | None = None,
                      retry_after: str | None = None) -> None:
        with self._lock:
            self._faults.append(_Fault(pattern, method, times, status=status, retry_after=retry_after))

    def drop_after(self, pattern: str, nbytes: int, times: int = 1) -> None:
        with self._lock:
            self._faults.append(_Fault(pattern, "GET", times, drop_after_bytes=nbytes))

    def requests_matching(self, pattern: str, method: str | None = None) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if pattern in r.path and (method is None or r.method == method)]

    # ------------------------------------------------------------------ lifecycle
    @property
    def endpoint(self) -> str:
        assert self._server is not None, "stand-in not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> HfHubStandIn:
        standin = self

        class Handler(_Handler):
            hub = standin

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="hf-hub-standin", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> HfHubStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ internals
    def _take_fault(self, method: str, path: str, drop: bool) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if (fault.drop_after_bytes is not None) != drop:
                    continue
                if fault.remaining > 0 and fault.pattern in path and (fault.method in (None, method)):
                    fault.remaining -= 1
                    return fault
        return None


_API_INFO = re.compile(r"^/api/models/(?P<repo>[^/]+(?:/[^/]+)?)(?:/revision/(?P<rev>[^/]+))?$")
_API_REFS = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)/refs$")
_API_PATHS = re.compile(r"^/api/models/(?P<repo>[^/]+(?:/[^/]+)?)/paths-info/(?P<rev>[^/]+)$")
_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)$")
_CDN = re.compile(r"^/cdn-lfs/(?P<sha256>[0-9a-f]{64})/(?P<file>.+)$")
_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


class _HubError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        self.status, self.message, self.code = status, message, code


class _Handler(BaseHTTPRequestHandler):
    hub: HfHubStandIn
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - silence stderr access log
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    # ---------------------------------------------------------------- dispatch
    def _dispatch(self, method: str) -> None:
        split = urlsplit(self.path)
        path = split.path
        token = self._token()
        with self.hub._lock:
            self.hub.requests.append(RecordedRequest(method, path, self.headers.get("Range"), token is not None))
        body = b""
        if method == "POST":
            body = self.rfile.read(int(self.headers.get("Content-Length", "0") or 0))
        fault = self.hub._take_fault(method, path, drop=False)
        if fault is not None:
            extra = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            self._send_json(fault.status, {"error": f"injected {fault.status}"}, extra)
            return
        try:
            if token is not None and token not in self.hub.valid_tokens:
                raise _HubError(401, "Invalid credentials in Authorization header")
            if m := _API_PATHS.match(path):
                self._paths_info(m["repo"], unquote(m["rev"]), token, body)
            elif method == "GET" and (m := _API_REFS.match(path)):
                self._refs(m["repo"], token, parse_qs(split.query).get("include_prs") == ["1"])
            elif m := _API_INFO.match(path):
                rev = unquote(m["rev"]) if m["rev"] else "main"
                self._model_info(m["repo"], rev, token, parse_qs(split.query).get("blobs") == ["true"])
            elif m := _RESOLVE.match(path):
                self._resolve(method, m["repo"], unquote(m["rev"]), unquote(m["file"]), token)
            elif m := _CDN.match(path):
                self._cdn(method, m["sha256"])
            else:
                raise _HubError(404, "Sorry, we can't find the page you are looking for.")
        except _HubError as err:
            headers = {"X-Error-Message": err.message}
            if err.code:
                headers["X-Error-Code"] = err.code
            self._send_json(err.status, {"error": err.message}, headers, head=(method == "HEAD"))

    def _token(self) -> str | None:
        auth = self.headers.get("Authorization")
        if auth and auth.startswith("Bearer "):
            return auth[len("Bearer "):]
        return None

    # ---------------------------------------------------------------- access
    def _repo(self, repo_id: str, token: str | None) -> StandInRepo:
        repo = self.hub.repos.get(repo_id)
        if repo is None or (repo.private and token not in repo.authorized_tokens):
            raise _HubError(401 if token is None else 404, "Repository not found", "RepoNotFound")
        return repo

    def _commit(self, repo: StandInRepo, rev: str) -> tuple[str, dict[str, bytes]]:
        sha = repo.refs.get(rev, rev)
        if sha not in repo.commits:
            raise _HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        return sha, repo.commits[sha]

    def _check_gate(self, repo: StandInRepo, token: str | None) -> None:
        if not repo.gated or token in repo.authorized_tokens:
            return
        if token is None:
            raise _HubError(401, f"Access to model {repo.repo_id} is restricted. You must have access to it and be "
                                 "authenticated to access it. Please log in.", "GatedRepo")
        raise _HubError(403, f"Access to model {repo.repo_id} is restricted and you are not in the authorized list. "
                             f"Visit https://huggingface.co/{repo.repo_id} to ask for access.", "GatedRepo")

    # ---------------------------------------------------------------- routes
    def _model_info(self, repo_id: str, rev: str, token: str | None, blobs: bool) -> None:
        repo = self._repo(repo_id, token)
        sha, files = self._commit(repo, rev)
        siblings = []
        for name, content in sorted(files.items()):
            sib: dict[str, object] = {"rfilename": name}
            if blobs:
                size = repo.reported_sizes.get(name, len(content))
                sib["size"] = size
                if name.endswith(LFS_SUFFIXES):
                    sib["blobId"] = hashlib.sha1(name.encode()).hexdigest()  # pointer-file oid, not content
                    sib["lfs"] = {"sha256": hashlib.sha256(content).hexdigest(), "size": size, "pointerSize": 134}
                else:
                    sib["blobId"] = git_blob_sha1(content)
            siblings.append(sib)
        self._send_json(200, {
            "_id": hashlib.md5(repo_id.encode()).hexdigest()[:24], "id": repo_id, "modelId": repo_id,
            "author": repo_id.split("/")[0], "sha": sha, "private": repo.private, "gated": repo.gated,
            "disabled": False, "lastModified": "2026-01-01T00:00:00.000Z", "tags": [], "library_name": "transformers",
            "siblings": siblings,
        })

    def _refs(self, repo_id: str, token: str | None, include_prs: bool) -> None:
        # Shape read by HfApi.list_repo_refs (huggingface_hub:src/huggingface_hub/hf_api.py@v2.4.0)
        repo = self._repo(repo_id, token)
        branches, tags = [], []
        for name, sha in sorted(repo.refs.items()):
            kind = "tags" if name in repo.tags else "heads"
            (tags if kind == "tags" else branches).append(
                {"name": name, "ref": f"refs/{kind}/{name}", "targetCommit": sha})
        data: dict[str, object] = {"branches": branches, "converts": [], "tags": tags}
        if include_prs:
            data["pullRequests"] = []
        self._send_json(200, data)

    def _paths_info(self, repo_id: str, rev: str, token: str | None, body: bytes) -> None:
        repo = self._repo(repo_id, token)
        _, files = self._commit(repo, rev)
        wanted = parse_qs(body.decode()).get("paths", [])
        out = []
        for name in wanted:
            if name not in files:
                continue  # the Hub silently omits unknown paths
            content = files[name]
            size = repo.reported_sizes.get(name, len(content))
            entry: dict[str, object] = {"type": "file", "path": name, "size": size}
            if name.endswith(LFS_SUFFIXES):
                entry["oid"] = hashlib.sha1(name.encode()).hexdigest()
                entry["lfs"] = {"oid": hashlib.sha256(content).hexdigest(), "size": size, "pointerSize": 134}
            else:
                entry["oid"] = git_blob_sha1(content)
            out.append(entry)
        self._send_json(200, out)

    def _resolve(self, method: str, repo_id: str, rev: str, filename: str, token: str | None) -> None:
        repo = self._repo(repo_id, token)
        self._check_gate(repo, token)
        sha, files = self._commit(repo, rev)
        if filename not in files:
            raise _HubError(404, "Entry not found", "EntryNotFound")
        content = files[filename]
        if filename.endswith(LFS_SUFFIXES):
            sha256 = hashlib.sha256(content).hexdigest()
            self.send_response(302)
            self.send_header("Location", f"/cdn-lfs/{sha256}/{quote(filename)}")
            self.send_header("X-Repo-Commit", sha)
            self.send_header("ETag", f'"{hashlib.sha1(filename.encode()).hexdigest()}"')
            self.send_header("X-Linked-Size", str(len(content)))
            self.send_header("X-Linked-ETag", f'"{sha256}"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self._send_bytes(method, content, {"X-Repo-Commit": sha, "ETag": f'"{git_blob_sha1(content)}"'})

    def _cdn(self, method: str, sha256: str) -> None:
        for repo in self.hub.repos.values():
            for files in repo.commits.values():
                for content in files.values():
                    if hashlib.sha256(content).hexdigest() == sha256:
                        self._send_bytes(method, content, {"ETag": f'"{sha256}"'})
                        return
        raise _HubError(404, "NoSuchKey")

    # ---------------------------------------------------------------- responses
    def _send_bytes(self, method: str, content: bytes, headers: dict[str, str]) -> None:
        start, end = 0, len(content) - 1
        status = 200
        range_header = self.headers.get("Range")
        if range_header and (m := _RANGE.match(range_header.strip())):
            start = int(m[1])
            end = int(m[2]) if m[2] else len(content) - 1
            if start >= len(content) and len(content) > 0:
                self._send_json(416, {"error": "Range Not Satisfiable"}, {"Content-Range": f"bytes */{len(content)}"})
                return
            status = 206
        payload = content[start:end + 1]
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(payload)))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(content)}")
        self.end_headers()
        if method == "HEAD":
            return
        fault = self.hub._take_fault(method, urlsplit(self.path).path, drop=True)
        if fault is not None and fault.drop_after_bytes is not None:
            self.wfile.write(payload[:fault.drop_after_bytes])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        self.wfile.write(payload)

    def _send_json(self, status: int, data: object, headers: dict[str, str] | None = None, head: bool = False) -> None:
        body = json.dumps(data).encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)
