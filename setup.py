"""Package layout only; all metadata lives in pyproject.toml.

flows/ and tasks/ sit at the top level (design card) but are installed inside the package as
trtllm_oci.flows / trtllm_oci.tasks, so nothing claims the generic import names `flows` / `tasks`.
"""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["trtllm_oci", "trtllm_oci.*"]) + ["trtllm_oci.flows", "trtllm_oci.tasks"],
    package_dir={"trtllm_oci.flows": "flows", "trtllm_oci.tasks": "tasks"},
)
