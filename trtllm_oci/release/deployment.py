"""From a release spec to the Model Deployment request: image reference, Triton command line, sizes."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import oci.regions

from trtllm_oci import planner
from trtllm_oci.backends import backend_for
from trtllm_oci.backends.base import SERVING_MANIFEST, LaunchRequest, ServingPorts
from trtllm_oci.backends.pytorch import OPTIONS_FILE
from trtllm_oci.cache.manifest import ENGINE_SUBDIR
from trtllm_oci.cloud.artifact import (
    ENGINE_DIR,
    ArtifactRoute,
    ArtifactRouteChoice,
    ObjectPrefix,
    ReferencedArtifact,
    ServingLayout,
    by_reference_layout,
    choose_artifact_route,
    default_artifact_bucket,
    plan_reference_artifact,
)
from trtllm_oci.cloud.auth import make_signer
from trtllm_oci.cloud.clients import OciClients
from trtllm_oci.cloud.deployment import IMAGE_DIGEST_PLACEHOLDER, DeploymentRequest
from trtllm_oci.cloud.ocir import OcirTokenSource, container_repository_id
from trtllm_oci.cloud.preflight import Check, PreflightReport, preflight_checks
from trtllm_oci.errors import AccessError, InputError, SpecError
from trtllm_oci.image.errors import RepositoryAccessRefusedError
from trtllm_oci.image.refs import (
    ImageRef,
    RegistryAuth,
    RegistryEndpoint,
    RegistryLogin,
    RenewableLogin,
    ocir_image_ref,
    parse_image_ref,
)
from trtllm_oci.image.registry_api import RegistryClient
from trtllm_oci.model_facts import ModelFacts
from trtllm_oci.release.serving import REPOSITORY_DIR_NAME, served_model_name, serving_options
from trtllm_oci.repo.assemble import oci_deploy_root
from trtllm_oci.settings import Settings, current_settings
from trtllm_oci.spec import OciTarget, ReleaseSpec

OCIR_AUTH_TOKEN_SECRET_BLOCK = "ocir-auth-token"
# The TRTLLM_OCI_OCI_ENDPOINTS entry naming the address this host reaches OCIR through (push, registry API, token).
OCIR_ENDPOINT_KEY = "ocir"

# The NVIDIA trtllm-python-py3 images unpack to 40+ GB (oracle-samples Triton_TensorRT guide); used to size
# STORAGE_SIZE_IN_GB before the real size is known from the pushed image.
TRTLLM_IMAGE_SIZE_ESTIMATE_BYTES = 45 * 10**9


def storage_image_bytes(measured_size_bytes: int | None) -> int:
    """Image bytes to size STORAGE_SIZE_IN_GB with: the pushed image's measured size (PublishedImage.size_bytes),
    else the estimate (a dry run comes before the push)."""
    return measured_size_bytes or TRTLLM_IMAGE_SIZE_ESTIMATE_BYTES


def region_key(region: str) -> str:
    keys = {long: short for short, long in oci.regions.REGIONS_SHORT_NAMES.items()}
    if region not in keys:
        raise SpecError(f"target.region {region!r} is not an OCI region the oci SDK knows; e.g. us-ashburn-1")
    return keys[region]


def oci_target(spec: ReleaseSpec) -> OciTarget:
    if not isinstance(spec.target, OciTarget):
        raise SpecError(f"release {spec.release_id} has target.kind={spec.target.kind!r}; deploying needs kind: oci")
    if not spec.target.ocir_namespace:
        raise SpecError("target.ocir_namespace is required to push the serving image (get it with `oci os ns get`)")
    return spec.target


def serving_image_tag(spec: ReleaseSpec) -> str:
    try:
        ours = version("trtllm-oci")
    except PackageNotFoundError:  # running from a source tree that was not pip-installed
        ours = "0+source"
    return f"{base_image(spec).rsplit(':', 1)[1]}-trtllm-oci{ours}".replace("+", "-")


def base_image(spec: ReleaseSpec) -> str:
    """The image the serving image is built FROM: the version's Triton image, or its trtllm-serve release image."""
    return backend_for(spec.serving.backend).serving_image(spec.trtllm_version, spec.serving.effective_frontend)


def serving_image_platform(spec: ReleaseSpec) -> str:
    """The platform the serving image is built for: the target shape's host (`linux/arm64` on a Grace shape)."""
    from trtllm_oci.shapes import load_catalog

    return f"linux/{load_catalog().get(oci_target(spec).shape).host_arch}"


def serving_image_ref(spec: ReleaseSpec) -> str:
    """The image the deployment names: `<region-key>.ocir.io/<namespace>/<repository>:<tag>`, its region's OCIR."""
    target = oci_target(spec)
    assert target.ocir_namespace is not None  # oci_target refuses a target without one
    return ocir_image_ref(region_key(target.region), target.ocir_namespace, target.ocir_repository, serving_image_tag(spec))


def ocir_endpoint(settings: Settings) -> RegistryEndpoint | None:
    """The `ocir` entry of TRTLLM_OCI_OCI_ENDPOINTS: where this host reaches OCIR (None: its public host)."""
    text = settings.oci_endpoints.get(OCIR_ENDPOINT_KEY)
    return RegistryEndpoint.parse(text, what=f"TRTLLM_OCI_OCI_ENDPOINTS[{OCIR_ENDPOINT_KEY!r}]") if text else None


def push_image_ref(spec: ReleaseSpec, settings: Settings) -> ImageRef:
    """Where this host pushes the serving image: the deployment's reference, through the `ocir` endpoint when one
    is set. The deployment still names `serving_image_ref` (with the pushed digest): the service pulls from OCIR."""
    ref = parse_image_ref(serving_image_ref(spec))
    endpoint = ocir_endpoint(settings)
    return ref.on_registry(endpoint.host) if endpoint else ref


def deployment_request(
    spec: ReleaseSpec,
    *,
    image_digest: str = IMAGE_DIGEST_PLACEHOLDER,
    artifact_size_bytes: int,
    artifact_sha256: str | None = None,
    image_size_bytes: int = TRTLLM_IMAGE_SIZE_ESTIMATE_BYTES,
    artifact_route: ArtifactRoute = "direct",
    layout: ServingLayout | None = None,
    quality_passed: bool | None = None,
) -> DeploymentRequest:
    """The BYOC request for a release; the model repository lives inside the artifact at its deploy root.

    `layout` (trtllm_oci.cloud.artifact.by_reference_layout) replaces the zip's layout for a model by reference.
    `quality_passed`: the quality gate's verdict (None: no gate), tagged on the model and the deployment.
    """
    target = oci_target(spec)
    port = spec.serving.http_port
    backend = backend_for(spec.serving.backend)
    options = serving_options(spec)
    # For Triton the image's launcher expands the per-rank mpirun argv inside the container, so cmd stays short
    # at any world size (the expanded argv is ~400 bytes a rank; Data Science allows < 2048).
    cmd = backend.launch_command(LaunchRequest(
        deploy_root=oci_deploy_root(REPOSITORY_DIR_NAME), trtllm_version=spec.trtllm_version,
        world_size=spec.parallelism.world_size,
        ports=ServingPorts(http=port, grpc=spec.serving.grpc_port, metrics=spec.serving.grpc_port + 1),
        options=options, layout=layout))
    return DeploymentRequest(
        region=target.region,
        compartment_id=target.compartment_id,
        project_id=target.project_id,
        shape=target.shape,
        instance_count=target.instance_count,
        autoscaling=target.autoscaling,
        bandwidth_mbps=target.bandwidth_mbps,
        display_name=spec.release_id,
        description=f"trtllm-oci release {spec.release_id}: {spec.model.label}, {spec.quantization.method.value}, "
        f"tp={spec.parallelism.tp} pp={spec.parallelism.pp}, TensorRT-LLM {spec.trtllm_version}",
        release_id=spec.release_id,
        image=serving_image_ref(spec),
        image_digest=image_digest,
        cmd=cmd,
        server_port=port,
        health_port=port,
        streaming=spec.serving.streaming,
        predict_model=backend.predict_model(spec.serving.streaming, spec.serving.include_bls, options),
        routes=backend.routes(spec.serving.streaming, spec.serving.include_bls, options),
        artifact_size_bytes=artifact_size_bytes,
        image_size_bytes=image_size_bytes,
        artifact_sha256=artifact_sha256,
        access_log_id=target.access_log_id,
        access_log_group_id=target.log_group_id if target.access_log_id else None,
        predict_log_id=target.predict_log_id,
        predict_log_group_id=target.log_group_id if target.predict_log_id else None,
        deployment_timeout_minutes=target.deployment_timeout_minutes,
        world_size=spec.parallelism.world_size,
        artifact_route=artifact_route,
        extra_env=dict(target.extra_env),
        quality_verdict=None if quality_passed is None else "passed" if quality_passed else "failed",
    )


def oci_clients(target: OciTarget, settings: Settings) -> OciClients:
    return OciClients(make_signer(target.auth, profile=target.profile), region=target.region,
                      endpoints=settings.oci_endpoints)


@dataclass(frozen=True)
class OcirLogin:
    """The release's OCIR login, asked for credentials right before each registry operation; `source` names where
    they come from the way a user configures them, for error messages."""

    login: RegistryLogin
    source: str

    def __call__(self) -> RegistryAuth:
        return self.login()

    def invalidate(self) -> None:
        """Passed on to a login that caches a short-lived token (OcirTokenSource); an auth token has nothing to drop."""
        if isinstance(self.login, RenewableLogin):
            self.login.invalidate()


def stored_ocir_user(stored_user: str, namespace: str) -> tuple[str, str | None]:
    """(user, identity domain) from the user part of the `ocir-auth-token` Secret: `<user>`, `<domain>/<user>`
    (e.g. `oracleidentitycloudservice/<user>` for IDCS-federated users), or the whole docker login user
    `<namespace>/[<domain>/]<user>` (OCIR's login forms: trtllm_oci/image/refs.py)."""
    parts = stored_user.split("/")
    if len(parts) in (2, 3) and parts[0] == namespace:
        parts = parts[1:]
    if len(parts) == 1 and parts[0]:
        return parts[0], None
    if len(parts) == 2 and all(parts):
        return parts[1], parts[0]
    raise InputError(
        f"the Secret block {OCIR_AUTH_TOKEN_SECRET_BLOCK!r} names user {stored_user!r}, which is not an OCIR login "
        f"for namespace {namespace!r} (target.ocir_namespace); save it as '<user>:<auth token>', "
        "'<identity-domain>/<user>:<auth token>' or the docker login form "
        f"'{namespace}/[<identity-domain>/]<user>:<auth token>'")


def registry_login(target: OciTarget, clients: OciClients, settings: Settings,
                   stored_auth_token: str | None = None) -> OcirLogin:
    """An auth token kept by the caller (the flows' `ocir-auth-token` Secret block, `<user>:<token>`): OCIR's
    `<namespace>/[<domain>/]<user>` login with it, good until the token is revoked. Else a short-lived token from
    OCIR's docker token endpoint signed with the pipeline's own OCI identity (no stored secret), fetched again
    before a registry operation once half its lifetime has passed."""
    key = region_key(target.region)
    endpoint = ocir_endpoint(settings)
    registry = endpoint.host if endpoint else None
    if not target.ocir_namespace:
        raise InputError("target.ocir_namespace is required to log in to OCIR (get it with `oci os ns get`)")
    if stored_auth_token is not None:
        user_part, sep, token = stored_auth_token.partition(":")
        if not sep or not user_part or not token:
            raise InputError(f"the Secret block {OCIR_AUTH_TOKEN_SECRET_BLOCK!r} must hold '<user>:<auth token>' "
                             "(the user with or without the '<namespace>/' prefix); re-save it in that form")
        user, domain = stored_ocir_user(user_part, target.ocir_namespace)
        auth = RegistryAuth.ocir(key, target.ocir_namespace, user, token, domain, registry=registry)
        return OcirLogin(lambda: auth, f"the auth token of {auth.username!r} in the Secret block "
                                       f"{OCIR_AUTH_TOKEN_SECRET_BLOCK!r}")
    # OCIR serves its docker token on the registry's own host, so an endpoint for the registry is one for the token.
    token_url = settings.ocir_token_url or (f"{endpoint.scheme or 'https'}://{endpoint.host}" if endpoint else None)
    source = OcirTokenSource(key, clients.auth.signer, base_url=token_url, registry=registry)
    return OcirLogin(source, f"a docker token signed by the OCI identity of target.auth={target.auth!r} "
                             f"(no Secret block {OCIR_AUTH_TOKEN_SECRET_BLOCK!r} is saved)")


def registry_auth(target: OciTarget, clients: OciClients, settings: Settings,
                  stored_auth_token: str | None = None) -> RegistryAuth:
    """The credentials `registry_login` gives now (one registry operation's worth)."""
    return registry_login(target, clients, settings, stored_auth_token)()


def registry_login_check(spec: ReleaseSpec, settings: Settings, login: OcirLogin,
                         clients: OciClients | None = None) -> Check:
    """Pre-flight: log in to the registry the push goes to and read the release's repository, before the
    download, the build and the push; a refused login names the credentials to fix.

    A repository refused after an accepted login is not held against the release while the repository does not
    exist yet: the image stage creates it (ensure_container_repository) before the push, and OCIR may refuse a
    repository that is in no compartment to a user whose policy names one.
    """
    ref = push_image_ref(spec, settings)
    endpoint = ocir_endpoint(settings)
    target = oci_target(spec)
    try:
        auth = login()
        detail = RegistryClient(ref.registry, auth, scheme=endpoint.scheme if endpoint else None).check_access(
            ref.repository)
    except RepositoryAccessRefusedError as exc:
        if clients is not None and container_repository_id(clients.artifacts, target.compartment_id,
                                                           target.ocir_repository) is None:
            return Check("registry login", None, f"login accepted; repository {target.ocir_repository} does not "
                                                 "exist yet (created before the push, which then checks access) "
                                                 f"(credentials: {login.source})")
        return Check("registry login", False, f"{exc} (credentials: {login.source})")
    except (AccessError, InputError) as exc:
        return Check("registry login", False, f"{exc} (credentials: {login.source})")
    return Check("registry login", True, f"{detail} (credentials: {login.source})")


def estimated_artifact_bytes(spec: ReleaseSpec, facts: ModelFacts) -> int:
    """Engines (or the checkpoint) ≈ the weights at their quantized size; the tokenizer and configs are small."""
    per_rank = planner.per_gpu_weight_bytes(facts, spec.quantization.method, spec.parallelism.tp, spec.parallelism.pp)
    return int(per_rank * spec.parallelism.world_size)


def release_artifact_bucket(spec: ReleaseSpec) -> ObjectPrefix | None:
    """Where the release stages artifact files (configs and tokenizer by reference, a zip to export):
    target.artifact_bucket, else `<engine cache>/releases` when the engine cache is in Object Storage."""
    target = oci_target(spec)
    if target.artifact_bucket:
        return ObjectPrefix.parse(target.artifact_bucket)
    return default_artifact_bucket(spec.engine_cache.uri if spec.engine_cache else None)


def not_referenceable(spec: ReleaseSpec) -> str | None:
    """Why this release's cached artifact cannot be taken by reference even from an oci:// cache (None: it can).

    Engines (Triton) and a checkpoint served by trtllm-serve have a launcher layout that links the referenced objects
    into one serving root; Triton's llmapi model.yaml names the checkpoint in the zip's layout, and the quality gate
    serves the checkpoint on this host before the deploy, so both keep the zip."""
    s = spec.serving
    if s.backend == "reference":
        return "there is no engine (CPU reference backend)"
    if s.backend == "pytorch" and s.effective_frontend != "openai":
        return "Triton's llmapi model (serving.frontend triton) is served from the zipped repository"
    if s.backend == "pytorch" and spec.evaluation is not None:
        return "the evaluation serves the checkpoint on this host first, so it is downloaded and zipped"
    return None


def artifact_route(spec: ReleaseSpec, estimated_bytes: int) -> ArtifactRouteChoice:
    """How the release's artifact reaches the model catalog, decided before anything is built: engines or the
    checkpoint by reference from an oci:// engine cache, else a zip (direct up to 2 GiB, else staged and exported)."""
    target = oci_target(spec)
    cache = spec.engine_cache
    return choose_artifact_route(
        estimated_artifact_bytes=estimated_bytes, target_region=target.region,
        engine_cache_uri=cache.uri if cache else None, engine_cache_region=cache.region if cache else None,
        artifact_bucket_uri=target.artifact_bucket,
        artifact_noun="checkpoint files" if spec.serving.backend == "pytorch" else "engines",
        not_referenceable=not_referenceable(spec))


def reference_artifact(spec: ReleaseSpec, repository_root: Path, manifest_uri: str, manifest_bytes: int,
                       bucket: ObjectPrefix) -> ReferencedArtifact:
    """The model by reference of an assembled repository: the cached engines (or checkpoint) where the cache holds
    them, the repository's small files staged under `bucket`."""
    if spec.serving.backend == "pytorch":
        return plan_reference_artifact(repository_root, engine_uri=manifest_uri, engine_bytes=manifest_bytes,
                                       artifact_bucket=bucket, release_id=spec.release_id,
                                       artifact_dir=served_model_name(spec), required=SERVING_MANIFEST)
    return plan_reference_artifact(repository_root, engine_uri=manifest_uri, engine_bytes=manifest_bytes,
                                   artifact_bucket=bucket, release_id=spec.release_id)


def planned_reference_layout(spec: ReleaseSpec, route: ArtifactRouteChoice) -> ServingLayout | None:
    """The serving root a by-reference release will link, before the build: the cache entry's and the staged
    prefix's names are placeholders of their real length (the key and the content digest come later), so the dry
    run shows the launcher's cmd as it will run and the pre-flight measures that cmd. None for a zip route."""
    if route.route != "by_reference" or route.bucket is None or spec.engine_cache is None:
        return None
    cache = ObjectPrefix.parse(spec.engine_cache.uri, field="engine_cache.uri")
    # <cache>/<key: 64 hex>/engine-<UTC stamp>-<8 hex>/ (trtllm_oci.cache.object_storage_store layout)
    entry = cache.child("k" * 64, f"{ENGINE_SUBDIR}-{'0' * 8}T{'0' * 6}Z-{'0' * 8}")
    pytorch = spec.serving.backend == "pytorch"
    files = (OPTIONS_FILE, SERVING_MANIFEST) if pytorch else ("model_repository/ensemble/config.pbtxt",
                                                               "tokenizer/tokenizer.json")
    planned = ReferencedArtifact(
        engine=entry, engine_bytes=0, artifact_dir=served_model_name(spec) if pytorch else ENGINE_DIR,
        repository_root=Path(REPOSITORY_DIR_NAME), files=files, small_bytes=0,
        staged=route.bucket.child(spec.release_id, "0" * 16), sha256="0" * 64)
    return by_reference_layout(planned)


def preflight(spec: ReleaseSpec, route: ArtifactRouteChoice, estimated_bytes: int,
              clients: OciClients | None = None, *, login: OcirLogin | None = None,
              settings: Settings | None = None) -> PreflightReport:
    """Every service limit the deployment must meet (cmd and env size, ports, region, registry, OCIDs, timeout,
    scaling, shape offered, GPU quota), checked before the download, the build and the image push; with `login`
    (and `settings`, for the `ocir` endpoint) also the registry login the push will use."""
    req = deployment_request(spec, artifact_size_bytes=estimated_bytes, artifact_route=route.route,
                             layout=planned_reference_layout(spec, route))
    target = oci_target(spec)
    most = target.autoscaling.max_instances if target.autoscaling else None
    report = preflight_checks(req, clients=clients, artifact_route=route, instances_at_most=most)
    if login is not None:
        report.checks.append(registry_login_check(spec, settings or current_settings(), login, clients))
    return report
