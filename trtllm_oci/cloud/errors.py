"""Exceptions raised by trtllm_oci.cloud. Messages are plain words that name the bad value and the fix."""

from __future__ import annotations

from trtllm_oci.errors import AccessError, InputError, ServiceError, WaitTimeoutError


class OciAuthError(AccessError):
    """Credentials could not be loaded or are not usable."""


class DeploymentLimitError(InputError):
    """A deployment request breaks a Data Science service limit; raised before any API call."""


class DeploymentFailedError(ServiceError):
    """A model deployment (or one of its work requests) ended FAILED or NEEDS_ATTENTION, or timed out."""

    def __init__(self, message: str, *, model_deployment_id: str | None = None,
                 work_request_id: str | None = None, lifecycle_state: str | None = None,
                 work_request_errors: list[str] | None = None, work_request_logs: list[str] | None = None,
                 cleaned_up: list[str] | None = None, left_for_teardown: list[str] | None = None):
        super().__init__(message)
        self.model_deployment_id = model_deployment_id
        self.work_request_id = work_request_id
        self.lifecycle_state = lifecycle_state
        self.work_request_errors = work_request_errors or []
        self.work_request_logs = work_request_logs or []
        self.cleaned_up = cleaned_up or []
        self.left_for_teardown = left_for_teardown or []


class StillInProgressError(WaitTimeoutError):
    """The client stopped waiting while the service is still working. Not a failure: nothing was deleted."""

    def __init__(self, message: str, *, model_deployment_id: str | None = None,
                 work_request_id: str | None = None, lifecycle_state: str | None = None,
                 left_for_teardown: list[str] | None = None):
        super().__init__(message)
        self.model_deployment_id = model_deployment_id
        self.work_request_id = work_request_id
        self.lifecycle_state = lifecycle_state
        self.left_for_teardown = left_for_teardown or []


class TeardownIncompleteError(ServiceError):
    """Teardown removed what it could; some tagged resources are left (listed in `problems`)."""

    def __init__(self, message: str, *, report: object, problems: list[str]):
        super().__init__(message)
        self.report = report
        self.problems = problems


class ArtifactUploadError(ServiceError):
    """The model artifact could not be uploaded or exported into the model catalog."""


class OcirError(ServiceError):
    """An OCIR API call (docker token, container repository) failed."""


class OcirLoginRefusedError(OcirError, AccessError):
    """OCIR's docker token endpoint refused the signing principal (401/403): another attempt is refused too."""
