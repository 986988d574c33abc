"""OCI release at scale against the OCI stand-in: bytes moved per artifact route, and faults that leave nothing behind.

Part 1 deploys a world-size-8 release whose engine is --artifact-gib (sparse rank files: no disk, no RAM) through
the real deploy code and the real SDK, once per route:

- by_reference: the engine sits in the oci:// engine cache (published through the real store, as a build host
  does; that upload is the build's, reported apart). The release path reads the engine's outline, assembles the
  repository, stages configs + tokenizer and registers both prefixes. Goal: 0 engine bytes copied locally, the
  upload a rounding error of the artifact.
- object_storage_export: the engine is in a local cache; the repository is zipped (one local copy) and the zip
  goes through UploadManager and export_model_artifact (one upload).

"copied locally" is the disk the release path allocated (st_blocks of every file it created: sparse placeholders
and hard links count 0); "uploaded" is every request body the stand-in received during the release path.

Part 2 injects 429 / 5xx / lost responses / an expiring session token / failed work requests / a broken stream
and prints what each run left: it must be exactly the release's own deployment and model after a success and
nothing after a failure (and nothing after teardown), with no staging object or open multipart upload.

Exit status 1 if an orphan is left or the by-reference route copies engine bytes.
    python benchmarks/bench_oci_release.py --artifact-gib 3            # the figure
    python benchmarks/bench_oci_release.py --artifact-gib 0.02 --direct-limit-mib 1   # CI smoke
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
import types
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import oci.waiter  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402

from tests.standins.oci_services import OciStandIn, TritonContainer, session_token  # noqa: E402
from trtllm_oci.build.engine_config import engine_summarizer  # noqa: E402
from trtllm_oci.cache.key import EngineCacheKey, cache_key  # noqa: E402
from trtllm_oci.cache.object_storage_store import OciObjectStorageEngineStore  # noqa: E402
from trtllm_oci.cloud.artifact import ObjectPrefix, by_reference_layout, plan_reference_artifact  # noqa: E402
from trtllm_oci.cloud.auth import make_signer  # noqa: E402
from trtllm_oci.cloud.clients import OciClients, RetryPolicy  # noqa: E402
from trtllm_oci.cloud.deployment import DeploymentRequest, deploy, teardown_release  # noqa: E402
from trtllm_oci.cloud.invoke import smoke_test  # noqa: E402
from trtllm_oci.cloud.waiting import WaitPolicy  # noqa: E402
from trtllm_oci.repo.assemble import RepoOptions, assemble_repository, oci_deploy_root  # noqa: E402
from trtllm_oci.repo.package import package_repository  # noqa: E402
from trtllm_oci.serving.launch import deploy_cmd  # noqa: E402

GiB = 1024**3
TRTLLM_VERSION = "0.14.0"  # a table version: rank-file names and the engine config layout follow it
WORLD_SIZE = 8
COMPARTMENT = "ocid1.compartment.oc1..bench"
PROJECT = "ocid1.datascienceproject.oc1.iad.bench"
TENANCY, USER = "ocid1.tenancy.oc1..bench", "ocid1.user.oc1..bench"
DIGEST = "sha256:" + "ab" * 32
WAIT = WaitPolicy(timeout_seconds=60, poll_seconds=1)
FAST_RETRY = RetryPolicy(max_attempts=4, total_elapsed_seconds=30, base_sleep_seconds=0.01, max_sleep_seconds=0.05,
                         jitter_seconds=0.01)


# ---------------------------------------------------------------- fixtures of the run


class Env:
    """A key pair and profile, the stand-in, and SDK clients pointed at it."""

    def __init__(self, work: Path) -> None:
        self.work = work
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.key = key
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode()
        der = key.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
        digest = hashlib.md5(der).hexdigest()  # noqa: S324 - OCI API key fingerprints are MD5
        self.fingerprint = ":".join(digest[i:i + 2] for i in range(0, 32, 2))
        self.key_file = work / "key.pem"
        self.key_file.write_text(pem)
        os.chmod(self.key_file, 0o600)
        self.config = work / "config"
        self.config.write_text(f"[DEFAULT]\nuser={USER}\nfingerprint={self.fingerprint}\ntenancy={TENANCY}\n"
                               f"region=us-ashburn-1\nkey_file={self.key_file}\n")
        self.standin: OciStandIn | None = None

    def start(self, *, lifecycle_delay: float = 0.05, extra_keys: dict | None = None) -> OciStandIn:
        keys = {f"{TENANCY}/{USER}/{self.fingerprint}": self.key.public_key(), **(extra_keys or {})}
        self.standin = OciStandIn(keys, lifecycle_delay=lifecycle_delay)
        self.standin.start()
        self.standin.default_container = TritonContainer(decoupled=False)
        return self.standin

    def stop(self) -> None:
        if self.standin:
            self.standin.stop()
            self.standin = None

    def clients(self, auth=None, read_timeout: float = 1.0) -> OciClients:
        """A 1 s read timeout makes the stand-in's late answers lost responses; bulk transfers get more."""
        auth = auth or make_signer("api_key", config_file=str(self.config))
        url = self.standin.url
        return OciClients(auth, endpoints={s: url for s in ("data_science", "object_storage", "artifacts", "limits")},
                          timeout=(2.0, read_timeout), retry=FAST_RETRY)


def _fake_engine(out: Path, total_bytes: int) -> Path:
    out.mkdir(parents=True)
    (out / "config.json").write_text(json.dumps({
        "version": TRTLLM_VERSION,
        "pretrained_config": {"architecture": "LlamaForCausalLM", "dtype": "float16",
                              "mapping": {"world_size": WORLD_SIZE, "tp_size": WORLD_SIZE, "pp_size": 1}},
        "build_config": {"max_batch_size": 64, "max_input_len": 4096, "max_seq_len": 8192, "max_num_tokens": 8192},
    }))
    for rank in range(WORLD_SIZE):
        with (out / f"rank{rank}.engine").open("wb") as fh:
            fh.truncate(total_bytes // WORLD_SIZE)
    return out


def _tokenizer(out: Path) -> Path:
    out.mkdir(parents=True)
    (out / "tokenizer.json").write_text(json.dumps({"version": "1.0", "model": {"type": "BPE", "vocab": {}}}))
    (out / "tokenizer_config.json").write_text("{}")
    return out


def _inputs() -> EngineCacheKey:
    return EngineCacheKey(model_commit_sha="0" * 40, quantization="fp8", kv_cache_dtype="fp8", tp=WORLD_SIZE, pp=1,
                          build_options={"max_batch_size": 64, "max_seq_len": 8192}, trtllm_version=TRTLLM_VERSION,
                          image_digest="sha256:" + "0" * 64, gpu_arch="sm90")


def _request(**fields) -> DeploymentRequest:
    base = dict(region="us-ashburn-1", compartment_id=COMPARTMENT, project_id=PROJECT, shape="BM.GPU.H100.8",
                display_name="bench", release_id="bench-rel", image="iad.ocir.io/standinns/trtllm-serve:1.0",
                image_digest=DIGEST, cmd=deploy_cmd(oci_deploy_root("repository") + "/model_repository", WORLD_SIZE),
                server_port=8000, health_port=8000, artifact_size_bytes=10**6, image_size_bytes=45 * 10**9,
                world_size=WORLD_SIZE)
    base.update(fields)
    return DeploymentRequest(**base)


BIG_FILE_BYTES = 1024**2  # engine ranks and zips; configs, tokenizer and python models are smaller


def _allocated(paths: list[Path]) -> tuple[int, int]:
    """(disk allocated by big files, by small ones) among files created under `paths`; hard links are no copy."""
    big = small = 0
    for root in paths:
        for path in [root, *root.rglob("*")] if root.is_dir() else [root]:
            if path.is_file() and not path.is_symlink():
                stat = path.stat()
                if stat.st_nlink == 1:
                    if stat.st_size >= BIG_FILE_BYTES:
                        big += stat.st_blocks * 512
                    else:
                        small += stat.st_blocks * 512
    return big, small


def _received(standin: OciStandIn, since: int) -> int:
    return sum(r["body_bytes"] for r in standin.received[since:])


# ---------------------------------------------------------------- part 1: routes


@dataclass
class RouteFigure:
    route: str
    artifact_bytes: int
    copied: tuple[int, int]  # (engine/zip bytes, small-file bytes) written to local disk
    uploaded_bytes: int
    seconds: float
    state: str

    @property
    def copied_bytes(self) -> int:
        return self.copied[0]

    def row(self) -> str:
        return (f"| {self.route} | {self.artifact_bytes / GiB:.3f} | {self.copied[0] / GiB:.3f} | "
                f"{self.copied[0] / self.artifact_bytes:.4f} | {self.copied[1] / 1024:.0f} | "
                f"{self.uploaded_bytes / GiB:.4f} | {self.uploaded_bytes / self.artifact_bytes:.5f} | "
                f"{self.seconds:.1f} | {self.state} |")


def route_by_reference(env: Env, engine_bytes: int) -> tuple[RouteFigure, float]:
    standin = env.start()
    clients = env.clients(read_timeout=120)
    store = OciObjectStorageEngineStore(clients.object_storage, standin.namespace, "engines", "cache",
                                        download_root=env.work / "ref" / "downloads")
    inputs = _inputs()
    started = time.perf_counter()
    store.publish(cache_key(inputs), _fake_engine(env.work / "ref" / "built", engine_bytes), inputs, engine_summarizer(TRTLLM_VERSION))
    build_upload_s = time.perf_counter() - started
    mark = len(standin.received)
    started = time.perf_counter()
    # The release path, from here on: nothing of the engine is downloaded, zipped or uploaded.
    manifest = store.lookup(cache_key(inputs))
    outline = store.materialize_outline(manifest)
    repository = assemble_repository(outline, _tokenizer(env.work / "ref" / "tokenizer"), env.work / "ref" / "repo",
                                     RepoOptions(trtllm_version=TRTLLM_VERSION, deploy_root="/tmp/trtllm-oci/serving"))
    artifact = plan_reference_artifact(repository.root, engine_uri=manifest.uri, engine_bytes=manifest.total_bytes,
                                       artifact_bucket=ObjectPrefix(namespace=standin.namespace, bucket="engines",
                                                                    prefix="cache/releases"), release_id="bench-rel")
    layout = by_reference_layout(artifact)
    req = _request(cmd=deploy_cmd(layout.model_repository, WORLD_SIZE, links=layout.links,
                                  serving_root=layout.deploy_root),
                   artifact_size_bytes=artifact.size_bytes, artifact_route="by_reference")
    result = deploy(clients, req, artifact, wait=WAIT)
    smoke_test(result.url, clients.auth.signer, routes=result.routes)
    seconds = time.perf_counter() - started
    figure = RouteFigure("by_reference", artifact.size_bytes, _allocated([outline, repository.root]),
                         _received(standin, mark), seconds, result.lifecycle_state)
    env.stop()
    return figure, build_upload_s


def route_export(env: Env, engine_bytes: int, direct_limit: int) -> RouteFigure:
    standin = env.start()
    clients = env.clients(read_timeout=120)
    engine = _fake_engine(env.work / "exp" / "cache" / "engine", engine_bytes)  # the local engine cache's entry
    mark = len(standin.received)
    started = time.perf_counter()
    repository = assemble_repository(engine, _tokenizer(env.work / "exp" / "tokenizer"), env.work / "exp" / "repository",
                                     RepoOptions(trtllm_version=TRTLLM_VERSION,
                                                 deploy_root=oci_deploy_root("repository")))
    package = package_repository(repository.root, env.work / "exp" / "artifact.zip")
    req = _request(artifact_size_bytes=package.size_bytes, artifact_sha256=package.sha256)
    result = deploy(clients, req, package.zip_path, wait=WAIT, direct_limit_bytes=direct_limit,
                    staging=ObjectPrefix(namespace=standin.namespace, bucket="staging", prefix="artifacts"))
    seconds = time.perf_counter() - started
    figure = RouteFigure(result.artifact_route, package.size_bytes, _allocated([repository.root, package.zip_path]),
                         _received(standin, mark), seconds, result.lifecycle_state)
    env.stop()
    return figure


# ---------------------------------------------------------------- part 2: faults


@dataclass
class FaultRun:
    scenario: str
    outcome: str
    deployments: int
    models: int
    staging_objects: int
    open_uploads: int
    expected: tuple[int, int]
    after_teardown: tuple[int, int]

    @property
    def orphans(self) -> int:
        extra = max(0, self.deployments - self.expected[0]) + max(0, self.models - self.expected[1])
        return extra + self.staging_objects + self.open_uploads + sum(self.after_teardown)

    def row(self) -> str:
        return (f"| {self.scenario} | {self.outcome} | {self.deployments} | {self.models} | {self.staging_objects} | "
                f"{self.open_uploads} | {self.after_teardown[0]}+{self.after_teardown[1]} | {self.orphans} |")


def _zip(work: Path) -> Path:
    import zipfile

    path = work / "small.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("repository/model_repository/ensemble/config.pbtxt", 'name: "ensemble"\n')
        archive.writestr("repository/engine/rank0.engine", os.urandom(64 * 1024))
    return path


def _finish(env: Env, clients: OciClients, scenario: str, outcome: str, expected: tuple[int, int]) -> FaultRun:
    standin = env.standin
    deployments, models = len(standin.live_deployments()), len(standin.live_models())
    staging = [name for (bucket, name) in standin.objects if bucket == "staging"]
    uploads = len(standin.uploads)
    teardown_release(clients, COMPARTMENT, "bench-rel", wait=WAIT)
    run = FaultRun(scenario, outcome, deployments, models, len(staging), uploads, expected,
                   (len(standin.live_deployments()), len(standin.live_models())))
    env.stop()
    return run


def _outcome(call) -> tuple[str, bool]:
    try:
        value = call()
    except Exception as exc:  # noqa: BLE001 - the table reports what each fault turned into
        return f"{type(exc).__name__}", False
    return (value if isinstance(value, str) else "ACTIVE"), True


def fault_runs(env: Env) -> list[FaultRun]:
    runs: list[FaultRun] = []
    small = _zip(env.work)

    def simple(scenario: str, inject, **deploy_kwargs) -> None:
        standin = env.start()
        clients = env.clients()
        inject(standin)
        outcome, ok = _outcome(lambda: deploy(clients, _request(), small, wait=WAIT, **deploy_kwargs).lifecycle_state)
        runs.append(_finish(env, clients, scenario, outcome, (1, 1) if ok else (0, 0)))

    simple("429 on create model (x2)", lambda s: s.inject("POST", r"/20190101/models$", "status", status=429, times=2))
    simple("500 on create deployment", lambda s: s.inject("POST", r"/20190101/modelDeployments$", "status", status=500))
    simple("503 on get work request (x2)",
           lambda s: s.inject("GET", r"/20190101/workRequests/", "status", status=503, times=2))
    simple("lost response: create model", lambda s: s.inject("POST", r"/20190101/models$", "slow", delay=1.5))
    simple("failed create work request",
           lambda s: s.inject("POST", r"/20190101/modelDeployments$", "fail_work_request"))
    simple("failed export work request", lambda s: s.inject("POST", r"/exportArtifact$", "fail_work_request"),
           direct_limit_bytes=1000, staging=ObjectPrefix(namespace="standinns", bucket="staging", prefix="a"))
    simple("500 on an upload part", lambda s: s.inject("PUT", r"/u/", "status", status=500),
           direct_limit_bytes=1000, staging=ObjectPrefix(namespace="standinns", bucket="staging", prefix="a"))

    # Lost answer to the engine manifest's PUT: the publish must recognise its own manifest and keep the engine.
    standin = env.start()
    clients = env.clients()
    store = OciObjectStorageEngineStore(clients.object_storage, standin.namespace, "engines", "cache",
                                        download_root=env.work / "lost" / "downloads")
    inputs = _inputs()
    key = cache_key(inputs)
    standin.inject("PUT", rf"/o/cache/{key}/manifest.json$", "slow", delay=1.5)
    outcome, _ = _outcome(lambda: "published" if store.publish(key, _fake_engine(env.work / "lost" / "built", 8 * 4096), inputs, engine_summarizer(TRTLLM_VERSION)).uri else "")
    kept = store.lookup(key) is not None
    runs.append(_finish(env, clients, "lost response: engine manifest PUT",
                        outcome + ("" if kept else " (engine LOST)"), (0, 0)))

    # A session token that expires during the deploy; `oci session refresh` (a stand-in script) renews it.
    short, long = session_token(1), session_token(3600)
    standin = env.start(extra_keys={f"ST${t}": env.key.public_key() for t in (short, long)})
    token_file = env.work / "token"
    token_file.write_text(short)
    profile = env.work / "session-config"
    profile.write_text(f"[S]\nfingerprint={env.fingerprint}\ntenancy={TENANCY}\nregion=us-ashburn-1\n"
                       f"key_file={env.key_file}\nsecurity_token_file={token_file}\n")
    cli = env.work / "bin" / "oci"
    cli.parent.mkdir(exist_ok=True)
    cli.write_text(f"#!/bin/sh\nprintf '%s' '{long}' > {token_file}\n")
    cli.chmod(0o755)
    os.environ["PATH"] = f"{cli.parent}:{os.environ['PATH']}"
    time.sleep(1.1)
    clients = env.clients(make_signer("security_token", profile="S", config_file=str(profile)))
    outcome, ok = _outcome(lambda: deploy(clients, _request(), small, wait=WAIT).lifecycle_state)
    runs.append(_finish(env, clients, "expired session token", outcome + f", {standin.auth_failures} x 401",
                        (1, 1) if ok else (0, 0)))

    # A stream that breaks after its 200: the smoke test must fail, not pass on the partial text.
    standin = env.start()
    clients = env.clients()
    result = deploy(clients, _request(streaming=True), small, wait=WAIT)
    standin.default_container = TritonContainer(decoupled=True)
    standin.inject("POST", r"/predictWithResponseStream", "stream_failure", delay=1)
    outcome, _ = _outcome(lambda: smoke_test(result.url, clients.auth.signer, streaming=True, routes=result.routes,
                                             prompt="a b c").text)
    runs.append(_finish(env, clients, "StreamFailure trailer mid-stream", f"smoke test: {outcome}", (1, 1)))
    return runs


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifact-gib", type=float, default=3.0, help="engine size (sparse), default 3")
    parser.add_argument("--direct-limit-mib", type=float, default=2048.0,
                        help="direct-upload limit (lower it at smoke sizes so the export route runs)")
    parser.add_argument("--dir", type=Path, default=None, help="work dir (default: a temp dir, removed after)")
    parser.add_argument("--skip-faults", action="store_true")
    args = parser.parse_args(argv)
    engine_bytes = int(args.artifact_gib * GiB)
    real_time = oci.waiter.time
    # The stand-in's work requests finish in a fraction of a second: the SDK waiter's 1 s, 2 s, ... back-off is
    # scaled down (its order and its deadline are unchanged).
    oci.waiter.time = types.SimpleNamespace(time=real_time.time, sleep=lambda s: real_time.sleep(s * 0.02))
    work = Path(tempfile.mkdtemp(prefix="bench-oci-release-", dir=args.dir))
    env = Env(work)
    path = os.environ["PATH"]
    failures = 0
    try:
        by_ref, build_upload_s = route_by_reference(env, engine_bytes)
        export = route_export(env, engine_bytes, int(args.direct_limit_mib * 1024**2))
        print(f"\nRelease of world size {WORLD_SIZE}, engine {args.artifact_gib:g} GiB (sparse), against the OCI "
              f"stand-in (the engine's publish by its build host took {build_upload_s:.1f} s and is not counted)\n")
        print("| route | artifact GiB | engine bytes copied locally GiB | copies / artifact | small files KiB "
              "| uploaded GiB | uploaded / artifact | release path s | state |")
        print("|---|---|---|---|---|---|---|---|---|")
        print(by_ref.row())
        print(export.row())
        if by_ref.copied_bytes > 0 or by_ref.uploaded_bytes > by_ref.artifact_bytes * 0.01:
            print("FAIL: the by-reference route moved engine bytes", file=sys.stderr)
            failures += 1
        if not args.skip_faults:
            runs = fault_runs(env)
            print("\nInjected faults (a success must leave 1 deployment + 1 model, a failure none; teardown leaves "
                  "nothing)\n")
            print("| fault | outcome | deployments | models | staging objects | open uploads | after teardown "
                  "| orphaned |")
            print("|---|---|---|---|---|---|---|---|")
            for run in runs:
                print(run.row())
            failures += sum(1 for run in runs if run.orphans)
    finally:
        env.stop()
        oci.waiter.time = real_time
        os.environ["PATH"] = path
        if args.dir is None:
            import shutil

            shutil.rmtree(work, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
