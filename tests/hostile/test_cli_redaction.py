"""The CLI prints what the domain loggers say (no handler configured: logging's last-resort handler on
stderr); a Hub URL with credentials in HF_ENDPOINT is redacted there as in the error line."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.hostile.conftest import CONFIGS, Scratch
from tests.standins.hf_hub import HfHubStandIn, StandInRepo

# The real CLI, with the Hub retry policy made quick (two attempts 10 ms apart instead of six with backoff).
QUICK_RETRY_CLI = (
    "import functools, sys\n"
    "from trtllm_oci.hub import download, retry\n"
    "download.RetryPolicy = functools.partial(retry.RetryPolicy, max_attempts=2, base_delay_s=0.01)\n"
    "from trtllm_oci.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def test_cli_retry_warnings_redact_credentials_in_hf_endpoint(scratch: Scratch) -> None:
    sha = "e" * 40
    with HfHubStandIn() as hub:
        hub.add_repo(StandInRepo("acme/tiny", {sha: {"config.json": (CONFIGS / "llama-2-7b-hf.json").read_bytes()}},
                                 refs={"main": sha}))
        hub.inject_status("/api/models/acme/tiny", 503, times=1000)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TRTLLM_OCI_", "PREFECT_", "HF_"))}
        env.update(HOME=str(scratch.root / "user-home"), TRTLLM_OCI_HOME=str(scratch.home), HF_HUB_OFFLINE="0",
                   HF_HOME=str(scratch.root / "user-home" / "hf"),
                   HF_ENDPOINT=hub.endpoint.replace("http://", "http://hubuser:s3cr3t-pw@"))
        scratch.cwd.mkdir(parents=True)
        result = subprocess.run([sys.executable, "-c", QUICK_RETRY_CLI, "build", "--model", "acme/tiny",
                                 "--runner", "local"], capture_output=True, text=True, timeout=300, env=env,
                                cwd=scratch.cwd)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "s3cr3t-pw" not in result.stderr and "hubuser" not in result.stderr, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("Resolving acme/tiny@main failed")]
    assert warnings and "http://***@127.0.0.1" in warnings[0], result.stderr
    assert "trtllm-oci build: error: Resolving acme/tiny@main still failing after 2 attempts" in result.stderr
