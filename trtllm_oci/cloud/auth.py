"""Pluggable OCI request signers (API key, instance/resource principal, session token).

The four kinds mirror ADS's AuthType values (oracle/accelerated-data-science:ads/common/auth.py@2.15.2).
Secrets (private keys, pass phrases, session tokens) never appear in reprs, logs or exception messages:
the config dict is wrapped in `RedactedConfig` and every SDK exception is re-raised without chaining.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Literal

import oci

from trtllm_oci.cloud.errors import OciAuthError
from trtllm_oci.settings import current_settings

AuthKind = Literal["api_key", "instance_principal", "resource_principal", "security_token"]
AUTH_KINDS: tuple[str, ...] = ("api_key", "instance_principal", "resource_principal", "security_token")

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
    try:
        with open(expanded, encoding="ascii") as fh:
            token = fh.read().strip()
    except OSError:
        raise OciAuthError(
            f"{what}: security_token_file {token_file!r} cannot be read; run `oci session refresh` or "
            f"`oci session authenticate --profile-name {profile}`."
        ) from None
    if not token:
        raise OciAuthError(f"{what}: security_token_file {token_file!r} is empty; run `oci session authenticate`.")
    private_key = _load_private_key(config.get("key_file"), config.get("pass_phrase"), what)
    signer = oci.auth.signers.SecurityTokenSigner(token, private_key)
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
