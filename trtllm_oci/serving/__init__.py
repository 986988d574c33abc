"""Local Triton serving runtime: locating tritonserver, launch argv, a managed local server,
and the project's Python-backend models (shipped as package data under ``models/``)."""

from trtllm_oci.serving.launch import launch_argv
from trtllm_oci.serving.local import LocalTriton, TritonStartError
from trtllm_oci.serving.triton_install import TritonInstall, TritonNotFoundError, find_triton

__all__ = [
    "LocalTriton",
    "TritonInstall",
    "TritonNotFoundError",
    "TritonStartError",
    "find_triton",
    "launch_argv",
]
