"""What the image stage needs at run time ships inside the package, not only in a source checkout."""

from __future__ import annotations

import tomllib
from fnmatch import fnmatch
from pathlib import Path

from trtllm_oci.image.build import SERVING_CONTEXT

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_the_serving_dockerfile_is_package_data_and_infra_points_at_it() -> None:
    dockerfile = SERVING_CONTEXT / "Dockerfile.serving"
    assert dockerfile.is_file()
    assert (REPO_ROOT / "infra" / "Dockerfile.serving").resolve() == dockerfile.resolve()
    package_data = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    relative = dockerfile.relative_to(REPO_ROOT / "trtllm_oci").as_posix()
    assert any(fnmatch(relative, pattern) for pattern in package_data["trtllm_oci"]), package_data
