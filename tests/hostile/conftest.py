"""Careless and hostile input, run as a user runs it: the CLI in a subprocess, in a scratch directory with its
own HOME and TRTLLM_OCI_HOME, so each test can also check that nothing was written outside where it belongs
(`written` lists every file that appeared under the scratch directory)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

CONFIGS = Path(__file__).parent.parent / "data" / "hf_configs"


@dataclass
class Scratch:
    root: Path

    @property
    def home(self) -> Path:
        return self.root / "trtllm-oci-home"

    @property
    def cwd(self) -> Path:
        return self.root / "cwd"

    def model(self, config: str | dict, name: str = "model") -> Path:
        """A directory holding only config.json (what plan and dry runs need), from tests/data or a dict."""
        directory = self.root / "inputs" / name
        directory.mkdir(parents=True)
        if isinstance(config, str):
            shutil.copy(CONFIGS / f"{config}.json", directory / "config.json")
        else:
            (directory / "config.json").write_text(json.dumps(config))
        return directory

    def file(self, name: str, content: str | bytes) -> Path:
        path = self.root / "inputs" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        return path

    def written(self) -> list[str]:
        """Files under the scratch directory other than the inputs the test wrote itself."""
        return sorted(str(p.relative_to(self.root)) for p in self.root.rglob("*")
                      if p.is_file() and p.relative_to(self.root).parts[0] != "inputs")

    def cli(self, *args: str, env: dict[str, str] | None = None, timeout: float = 120,
            stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        self.cwd.mkdir(parents=True, exist_ok=True)
        environment = {k: v for k, v in os.environ.items()
                       if not k.startswith(("TRTLLM_OCI_", "PREFECT_API_URL", "HF_ENDPOINT"))}
        environment.update({"HOME": str(self.root / "user-home"), "TRTLLM_OCI_HOME": str(self.home),
                            "HF_HUB_OFFLINE": "1", "HF_HOME": str(self.root / "user-home" / "hf")})
        environment.update(env or {})
        return subprocess.run([sys.executable, "-m", "trtllm_oci.cli", *args], capture_output=True, text=True,
                              timeout=timeout, env=environment, cwd=self.cwd, input=stdin)


@pytest.fixture
def scratch(tmp_path: Path) -> Scratch:
    return Scratch(tmp_path)


def assert_refused(result: subprocess.CompletedProcess[str], *fragments: str, max_chars: int = 2000) -> str:
    """Exit status 2, no traceback, a short message holding every fragment (the value and the fix)."""
    message = result.stderr
    assert result.returncode == 2, (result.returncode, result.stdout[-2000:], message[-2000:])
    assert "Traceback" not in message, message
    assert "errors.pydantic.dev" not in message, message
    assert len(message) <= max_chars, f"{len(message)} characters: {message[:500]}..."
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message
