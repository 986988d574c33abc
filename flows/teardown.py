"""Flow `teardown`: deactivate and delete everything a release created on OCI (found by its tags)."""

from __future__ import annotations

from prefect import flow

from trtllm_oci.cloud.deployment import TeardownReport
from trtllm_oci.spec import ReleaseSpec
from trtllm_oci.tasks.cloud import teardown_task


@flow(name="teardown", flow_run_name="teardown-{spec.release_id}")
def teardown(spec: ReleaseSpec) -> TeardownReport:
    return teardown_task(spec)
