"""SDK client construction and the retry policy shared by every call.

Retries use the SDK's own machinery (oci/retry/retry.py@2.189.0): 429, any 5xx, timeouts and connection
errors are retried with decorrelated-jitter backoff. Creates stay single because every create carries an
`opc_retry_token` that is the same across the SDK's attempts (oci/base_client.py add_opc_retry_token_if_needed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import oci
from oci.retry import RetryStrategyBuilder

from trtllm_oci.cloud.auth import OciAuth, RedactedConfig


@dataclass(frozen=True)
class RetryPolicy:
    """Knobs of the SDK retry strategy; tests shrink the sleeps."""

    max_attempts: int = 6
    total_elapsed_seconds: int = 600
    base_sleep_seconds: float = 1.0
    max_sleep_seconds: float = 30.0
    jitter_seconds: float = 1.0
    # 409 IncorrectState/LockConflict are what the SDK default retries too; they are safe for reads and for
    # requests that carry a retry token, not for state-changing actions without one (see `no_conflict`).
    retry_conflicts: bool = True

    def build(self):
        statuses: dict[int, list[str]] = {429: []}
        if self.retry_conflicts:
            statuses[409] = ["IncorrectState", "LockConflict"]
        return RetryStrategyBuilder(
            max_attempts=self.max_attempts,
            total_elapsed_time_seconds=self.total_elapsed_seconds,
            retry_base_sleep_time_seconds=self.base_sleep_seconds,
            retry_max_wait_between_calls_seconds=self.max_sleep_seconds,
            decorrelated_jitter=self.jitter_seconds,
            service_error_retry_config=statuses,
            service_error_retry_on_any_5xx=True,
        ).get_retry_strategy()

    def no_conflict(self) -> RetryPolicy:
        return RetryPolicy(self.max_attempts, self.total_elapsed_seconds, self.base_sleep_seconds,
                           self.max_sleep_seconds, self.jitter_seconds, retry_conflicts=False)


@dataclass
class OciClients:
    """The three service clients a deployment needs, built from one `OciAuth`.

    `region` is the region the services are called in; without it the SDK takes the auth profile's (or the
    principal's) region, which need not be the region the spec names. `endpoints` maps service name
    ("data_science", "object_storage", "artifacts", "limits") to a service_endpoint override (private endpoints; tests
    point them at a local stand-in); `timeout` is (connect, read) seconds.
    """

    auth: OciAuth
    region: str | None = None
    endpoints: dict[str, str] = field(default_factory=dict)
    timeout: tuple[float, float] | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    def _kwargs(self, service: str) -> dict[str, Any]:
        kwargs: dict[str, Any] = dict(self.auth.client_kwargs)
        if self.region:
            kwargs["config"] = RedactedConfig({**self.auth.config, "region": self.region})
        kwargs["retry_strategy"] = self.retry.build()
        if service in self.endpoints:
            kwargs["service_endpoint"] = self.endpoints[service]
        if self.timeout is not None:
            kwargs["timeout"] = self.timeout
        return kwargs

    def _client(self, service: str, cls):
        if service not in self._cache:
            self._cache[service] = cls(**self._kwargs(service))
        return self._cache[service]

    @property
    def data_science(self) -> oci.data_science.DataScienceClient:
        return self._client("data_science", oci.data_science.DataScienceClient)

    @property
    def object_storage(self) -> oci.object_storage.ObjectStorageClient:
        return self._client("object_storage", oci.object_storage.ObjectStorageClient)

    @property
    def artifacts(self) -> oci.artifacts.ArtifactsClient:
        return self._client("artifacts", oci.artifacts.ArtifactsClient)

    @property
    def limits(self) -> oci.limits.LimitsClient:
        return self._client("limits", oci.limits.LimitsClient)

    def strategy(self, *, allow_conflict_retry: bool = True):
        """A retry strategy for one call; state-changing calls without a retry token pass False."""
        return (self.retry if allow_conflict_retry else self.retry.no_conflict()).build()
