"""The error root and its kinds. Every error a user can act on is a `TrtllmOciError` of one kind; each
message names the bad value and the fix. Packages subclass a kind only where a caller tells cases apart
(a gated model from a missing one, an OOM from another failed step) or an error carries data.

The kinds say who has to act: the user's input (`InputError`), their credentials (`AccessError`), the
size of what they asked for (`CapacityError`), a remote service (`ServiceError`), an artifact on disk or in
a bucket (`ArtifactError`), a process we started (`ProcessError`), or time (`WaitTimeoutError`).
"""

from __future__ import annotations

import re


class TrtllmOciError(Exception):
    """Base class for errors a user can act on.

    Its message never shows the credentials of a URL in it (`redact_credentials`): messages quote the user's
    URLs (HF_ENDPOINT, `bench --url`), and every place that shows an error reads it through `str` (the CLI's
    error line, Prefect's failed-state message, tracebacks), `repr` (Prefect's "Task run failed with
    exception: ..." line) or its pickled args (Prefect persists a failed task's exception)."""

    def __init__(self, *args: object) -> None:
        super().__init__(*(redact_credentials(a) if isinstance(a, str) else a for a in args))

    def __str__(self) -> str:
        return redact_credentials(super().__str__())

    def __repr__(self) -> str:
        return redact_credentials(super().__repr__())


class InputError(TrtllmOciError, ValueError):
    """A value the user gave (spec field, flag, file, directory, version, combination) is wrong.

    A ValueError too, so pydantic validators that raise it report the field it belongs to."""


class SpecError(InputError):
    """A release spec (YAML, CLI flags or flow parameters) is invalid."""


class UnknownShapeError(SpecError):
    """A shape name is not in the GPU shape catalog."""


class AccessError(TrtllmOciError):
    """Credentials are missing, invalid or not granted (Hub token, OCI identity, registry login)."""


class CapacityError(TrtllmOciError):
    """What was asked for does not fit: GPU memory, disk space, a service quota."""


class ServiceError(TrtllmOciError):
    """A remote service (Hugging Face Hub, OCI, a container registry) failed or refused the request."""


class ArtifactError(TrtllmOciError):
    """An artifact (engine directory, cache entry, model repository, archive) is incomplete or inconsistent."""


class ProcessError(TrtllmOciError):
    """A process this tool started (a build step, tritonserver, docker build) failed."""


class WaitTimeoutError(TrtllmOciError, TimeoutError):
    """Waited longer than allowed for a lock, a server or a cloud resource."""


# user:password@ (or a bare token@) in any URL, and the values of query parameters that carry secrets. Not in
# oci://bucket@namespace/prefix: OCI's Object Storage URI puts the bucket where userinfo goes, and messages about
# a cache or an artifact bucket must name it.
_URL_USERINFO = re.compile(r"(?P<scheme>\b(?!oci://)[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^\s/@?#]+)@")
_SECRET_QUERY = re.compile(
    r"(?P<name>[?&](?:[\w-]*(?:token|key|secret|password|passwd|signature|sig|auth|credential)[\w-]*))=(?P<value>[^&\s#]+)",
    re.IGNORECASE)
REDACTED = "***"


def redact_credentials(text: str) -> str:
    """`text` with the credentials of every URL in it replaced by ***: the userinfo (`https://user:pass@host`,
    `https://TOKEN@host`) and secret-looking query values (`?token=...`, `&X-Amz-Signature=...`). Messages and
    logs that may echo a user's URL (HF_ENDPOINT, `bench --url`) pass through it."""
    text = _URL_USERINFO.sub(lambda m: f"{m['scheme']}{REDACTED}@", text)
    return _SECRET_QUERY.sub(lambda m: f"{m['name']}={REDACTED}", text)
