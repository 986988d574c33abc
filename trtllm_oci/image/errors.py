"""Errors of the image stage (build, push, registry queries)."""

from __future__ import annotations

from trtllm_oci.errors import AccessError, ProcessError, ServiceError


class ImageBuildError(ProcessError):
    """The Docker build failed; the message carries the builder's error and the last output lines."""


class ImagePushError(ServiceError):
    """The push failed for a reason other than credentials."""


class RegistryError(ServiceError):
    """The registry's HTTP API answered with something unexpected."""


class RegistryAuthError(AccessError):
    """The registry refused the credentials or the access. Names registry and user, never the password."""

    def __init__(self, registry: str, username: str | None, registry_says: str, hint: str = "") -> None:
        self.registry = registry
        self.username = username
        self.registry_says = registry_says
        self.hint = hint
        who = f"user {username!r}" if username else "anonymous access (no credentials given)"
        message = f"registry {registry} refused {who}: {registry_says}"
        if hint:
            message += f". {hint}"
        super().__init__(message)

    def __reduce__(self):  # keep the fields through pickling (Prefect persists task exceptions)
        return (type(self), (self.registry, self.username, self.registry_says, self.hint))


class RepositoryAccessRefusedError(RegistryAuthError):
    """The registry accepted the login (a token was issued) but refused the repository: a policy or a repository
    that does not exist yet, not the user or the password."""
