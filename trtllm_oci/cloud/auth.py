"""Pluggable OCI request signers (API key, instance/resource principal, session token).

The four kinds mirror ADS's AuthType values (oracle/accelerated-data-science:ads/common/auth.py@2.15.2).
Secrets (private keys, pass phrases, session tokens) never appear in reprs, logs or exception messages:
the config dict is wrapped in `RedactedConfig` and every SDK exception is re-raised without chaining.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import oci
from oci.auth.signers import SecurityTokenSigner

from trtllm_oci.cloud.errors import OciAuthError
from trtllm_oci.settings import current_settings

AuthKind = Literal["api_key", "instance_principal", "resource_principal", "security_token"]
AUTH_KINDS: tuple[str, ...] = ("api_key", "instance_principal", "resource_principal", "security_token")

log = logging.getLogger(__name__)
# `oci session authenticate` tokens last 1 h by default (shared/reference/2026-update.md); refresh well before.
SESSION_REFRESH_MARGIN_SECONDS = 600
SESSION_REFRESH_RETRY_SECONDS = 60

_SECRET_CONFIG_KEYS = frozenset({"key_content", "pass_phrase", "security_token", "security_token_content"})


class RedactedConfig(dict):
    """An OCI SDK config dict whose repr/str hide secret values (the SDK still reads them as a dict)."""

    def __repr__(self) -> str:
        shown = {k: ("<redacted>" if k in _SECRET_CONFIG_KEYS else v) for k, v in self.items()}
        return f"RedactedConfig({shown!r})"

    __str__ = __repr__


@dataclass(frozen=True)
class OciAuth:
    """What every SDK client needs: `Client(**auth.client_kwargs)` or `requests.post(..., auth=auth.signer)`."""

    kind: str
    config: RedactedConfig
    signer: Any = field(repr=False)
    region: str | None = None

    @property
    def client_kwargs(self) -> dict[str, Any]:
        return {"config": self.config, "signer": self.signer}

    def __repr__(self) -> str:
        return f"OciAuth(kind={self.kind!r}, region={self.region!r}, signer={type(self.signer).__name__})"


def _read_profile(profile: str, config_file: str) -> dict[str, Any]:
    try:
        return oci.config.from_file(file_location=config_file, profile_name=profile)
    except oci.exceptions.ConfigFileNotFound:
        raise OciAuthError(
            f"OCI config file {config_file!r} not found. Create it with `oci setup config`, pass "
            f"config_file=<path>, or use auth kind 'instance_principal'/'resource_principal' inside OCI."
        ) from None
    except oci.exceptions.ProfileNotFound:
        raise OciAuthError(
            f"Profile {profile!r} not found in OCI config file {config_file!r}. "
            f"Add a [{profile}] section or pass profile=<an existing profile>."
        ) from None
    except oci.exceptions.InvalidKeyFilePath:
        raise OciAuthError(
            f"OCI config file {config_file!r} profile {profile!r}: key_file does not exist; fix the key_file path."
        ) from None
    except (oci.exceptions.InvalidConfig, ValueError) as exc:
        # InvalidConfig/ValueError messages name keys, never values.
        raise OciAuthError(f"OCI config file {config_file!r} profile {profile!r} is invalid: {exc}") from None


def _load_private_key(path: str | None, pass_phrase: str | None, what: str):
    if not path:
        raise OciAuthError(f"{what}: no key_file is set; add key_file=<path to the PEM private key> to the profile.")
    expanded = os.path.expanduser(path)
    if not os.path.isfile(expanded):
        raise OciAuthError(f"{what}: key_file {path!r} does not exist; fix the key_file path in the profile.")
    try:
        return oci.signer.load_private_key_from_file(expanded, pass_phrase)
    except oci.exceptions.MissingPrivateKeyPassphrase:
        raise OciAuthError(f"{what}: key_file {path!r} is encrypted; add pass_phrase to the profile.") from None
    except oci.exceptions.InvalidPrivateKey:
        raise OciAuthError(
            f"{what}: key_file {path!r} is not a usable private key, or its pass_phrase is wrong."
        ) from None


def _api_key_auth(profile: str, config_file: str) -> OciAuth:
    config = _read_profile(profile, config_file)
    try:
        oci.config.validate_config(config)
    except oci.exceptions.InvalidConfig as exc:
        if not any(config.get(k) for k in ("user", "tenancy", "fingerprint", "key_file", "key_content")):
            # configparser always has a DEFAULT section, so the SDK does not report it as missing.
            raise OciAuthError(
                f"Profile {profile!r} not found (or empty) in OCI config file {config_file!r}. "
                f"Add a [{profile}] section or pass profile=<an existing profile>."
            ) from None
        raise OciAuthError(
            f"OCI config profile {profile!r} in {config_file!r} is incomplete or malformed: {exc}. "
            "API-key auth needs user, tenancy, fingerprint, key_file and region."
        ) from None
    what = f"API-key auth (profile {profile!r})"
    private_key = _load_private_key(config.get("key_file"), config.get("pass_phrase"), what)
    signer = oci.signer.Signer(
        tenancy=config["tenancy"], user=config["user"], fingerprint=config["fingerprint"],
        private_key_file_location=config.get("key_file"), pass_phrase=config.get("pass_phrase"),
    )
    del private_key  # validated above only to turn SDK errors into actionable ones
    return OciAuth("api_key", RedactedConfig(config), signer, config.get("region"))


def token_expiry(token: str) -> float | None:
    """The `exp` claim (epoch seconds) of a JWT session token, None if it has none or is not a JWT."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["exp"])
    except (IndexError, KeyError, TypeError, ValueError):
        return None


class SessionTokenSigner(SecurityTokenSigner):
    """A session-token signer that stays valid through multi-hour waits.

    The token of `oci session authenticate` expires (1 h by default); a deployment wait outlives it. Before each
    request this signer re-reads `security_token_file` when it changed (someone ran `oci session refresh`), and
    when the token is within `refresh_margin_s` of its `exp` it runs `oci session refresh` itself (the OCI CLI's
    own refresh; the SDK has none for session tokens) and reloads. A token that is expired and cannot be
    refreshed raises OciAuthError naming the command, instead of a bare 401 from the service.
    """

    def __init__(self, token_file: str, private_key: Any, *, profile: str, config_file: str,
                 refresh_margin_s: float = SESSION_REFRESH_MARGIN_SECONDS,
                 refresh_command: tuple[str, ...] = ("oci", "session", "refresh")) -> None:
        self.token_file = token_file
        self.profile = profile
        self.config_file = config_file
        self.refresh_margin_s = refresh_margin_s
        self.refresh_command = refresh_command
        self._private_key = private_key
        self._lock = threading.RLock()
        self._last_attempt = 0.0
        self._load()

    def _read(self) -> str:
        try:
            with open(self.token_file, encoding="ascii") as fh:
                token = fh.read().strip()
        except OSError:
            raise OciAuthError(f"security_token_file {self.token_file!r} cannot be read; run `oci session refresh "
                               f"--profile {self.profile}` or `oci session authenticate`.") from None
        if not token:
            raise OciAuthError(f"security_token_file {self.token_file!r} is empty; run `oci session authenticate "
                               f"--profile-name {self.profile}`.")
        return token

    def _load(self) -> None:
        token = self._read()
        self._mtime = os.stat(self.token_file).st_mtime_ns
        self.expires_at = token_expiry(token)
        super().__init__(token, self._private_key)

    def _refresh(self) -> None:
        self._last_attempt = time.monotonic()
        executable = shutil.which(self.refresh_command[0])
        if executable is None:
            log.warning("the session token of profile %s expires soon and the OCI CLI is not installed to refresh "
                        "it; run `oci session refresh --profile %s` elsewhere", self.profile, self.profile)
            return
        command = [executable, *self.refresh_command[1:], "--profile", self.profile, "--config-file",
                   self.config_file]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.warning("`oci session refresh --profile %s` failed to run: %s", self.profile, type(exc).__name__)
            return
        if done.returncode != 0:
            log.warning("`oci session refresh --profile %s` exited %d; the session may have reached its maximum "
                        "lifetime (run `oci session authenticate`)", self.profile, done.returncode)
            return
        self._load()
        log.info("refreshed the session token of profile %s", self.profile)

    def ensure_fresh(self) -> None:
        with self._lock:
            try:
                changed = os.stat(self.token_file).st_mtime_ns != self._mtime
            except OSError:
                changed = False
            if changed:
                self._load()
            now = time.time()
            if self.expires_at is None or self.expires_at - now > self.refresh_margin_s:
                return
            if time.monotonic() - self._last_attempt >= SESSION_REFRESH_RETRY_SECONDS or self.expires_at <= now:
                self._refresh()
            if self.expires_at is not None and self.expires_at <= time.time():
                raise OciAuthError(
                    f"the session token of profile {self.profile!r} expired and could not be refreshed; run "
                    f"`oci session refresh --profile {self.profile}` (or `oci session authenticate`) and re-run.")

    def refresh_security_token(self) -> None:
        """Called by the SDK's waiter on a 401 (oci/waiter.py): reload or refresh now."""
        with self._lock:
            self._mtime = -1
            self._refresh()

    def do_request_sign(self, request, enforce_content_headers=True):
        self.ensure_fresh()
        return super().do_request_sign(request, enforce_content_headers)


def _security_token_auth(profile: str, config_file: str) -> OciAuth:
    config = _read_profile(profile, config_file)
    what = f"Session-token auth (profile {profile!r})"
    token_file = config.get("security_token_file")
    if not token_file:
        raise OciAuthError(
            f"{what}: the profile has no security_token_file. Run `oci session authenticate --profile-name "
            f"{profile}` or use auth kind 'api_key'."
        )
    expanded = os.path.expanduser(token_file)
    if not os.path.isfile(expanded):
        raise OciAuthError(
            f"{what}: security_token_file {token_file!r} cannot be read; run `oci session refresh` or "
            f"`oci session authenticate --profile-name {profile}`."
        )
    private_key = _load_private_key(config.get("key_file"), config.get("pass_phrase"), what)
    signer = SessionTokenSigner(expanded, private_key, profile=profile, config_file=os.path.expanduser(config_file))
    if not config.get("region"):
        raise OciAuthError(f"{what}: the profile has no region; add region=<e.g. us-ashburn-1>.")
    return OciAuth("security_token", RedactedConfig(config), signer, config.get("region"))


def _instance_principal_auth() -> OciAuth:
    try:
        signer = oci.auth.signers.InstancePrincipalsSecurityTokenSigner()
    except Exception as exc:  # the SDK raises many types here (connection, HTTP, parsing)
        raise OciAuthError(
            "Instance-principal auth failed: the OCI instance metadata service did not issue a certificate "
            f"({type(exc).__name__}). This only works on an OCI compute instance in a dynamic group with "
            "policies; elsewhere use auth kind 'api_key' or 'security_token'."
        ) from None
    return OciAuth("instance_principal", RedactedConfig({"region": signer.region}), signer, signer.region)


def _resource_principal_auth() -> OciAuth:
    if not current_settings().oci_resource_principal_version:
        raise OciAuthError(
            "Resource-principal auth needs OCI_RESOURCE_PRINCIPAL_VERSION (set by OCI Data Science Jobs, "
            "Notebooks, Pipelines and Functions). Outside those, use auth kind 'api_key' or 'instance_principal'."
        )
    try:
        signer = oci.auth.signers.get_resource_principals_signer()
    except Exception as exc:  # messages may quote env values, so only the type is kept
        raise OciAuthError(
            f"Resource-principal auth failed ({type(exc).__name__}): check the OCI_RESOURCE_PRINCIPAL_* "
            "environment variables (RPST, PRIVATE_PEM, REGION) injected by the service."
        ) from None
    region = getattr(signer, "region", None)
    return OciAuth("resource_principal", RedactedConfig({"region": region} if region else {}), signer, region)


def make_signer(kind: AuthKind, profile: str = "DEFAULT", config_file: str = "~/.oci/config") -> OciAuth:
    """Load credentials of `kind` and return config + signer usable as SDK client kwargs and requests auth."""
    if kind == "api_key":
        return _api_key_auth(profile, config_file)
    if kind == "security_token":
        return _security_token_auth(profile, config_file)
    if kind == "instance_principal":
        return _instance_principal_auth()
    if kind == "resource_principal":
        return _resource_principal_auth()
    raise OciAuthError(f"Unknown OCI auth kind {kind!r}; use one of {', '.join(AUTH_KINDS)}.")
