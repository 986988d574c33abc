"""The error root and its kinds. Every error a user can act on is a `TrtllmOciError` of one kind; each
message names the bad value and the fix. Packages subclass a kind only where a caller tells cases apart
(a gated model from a missing one, an OOM from another failed step) or an error carries data.

The kinds say who has to act: the user's input (`InputError`), their credentials (`AccessError`), the
size of what they asked for (`CapacityError`), a remote service (`ServiceError`), an artifact on disk or in
a bucket (`ArtifactError`), a process we started (`ProcessError`), or time (`WaitTimeoutError`).
"""

from __future__ import annotations


class TrtllmOciError(Exception):
    """Base class for errors a user can act on."""


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
