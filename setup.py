"""Package layout only; all metadata lives in pyproject.toml.

flows/ and tasks/ sit at the top level (design card) but are installed inside the package as
trtllm_oci.flows / trtllm_oci.tasks, so nothing claims the generic import names `flows` / `tasks`.
"""

from setuptools import find_namespace_packages, setup

setup(
    # Namespace discovery also lists the data-only directories (Python-backend models, the serving image's
    # build context), which setuptools otherwise warns about as importable yet unlisted.
    packages=find_namespace_packages(include=["trtllm_oci", "trtllm_oci.*"], exclude=["*.__pycache__"])
    + ["trtllm_oci.flows", "trtllm_oci.tasks"],
    package_dir={"trtllm_oci.flows": "flows", "trtllm_oci.tasks": "tasks"},
)
