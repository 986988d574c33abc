"""Ways of serving a model (see `base.ServingBackend`); `backend_for` picks one by its spec name."""

from __future__ import annotations

from trtllm_oci.backends.base import ServingBackend
from trtllm_oci.errors import InputError


def backend_for(name: str) -> ServingBackend:
    """The backend `serving.backend` names."""
    from trtllm_oci.backends.pytorch import PyTorchBackend
    from trtllm_oci.backends.reference import ReferenceBackend
    from trtllm_oci.backends.tensorrt import TensorRTEngineBackend

    backends: dict[str, ServingBackend] = {
        b.name: b for b in (PyTorchBackend(), TensorRTEngineBackend(), ReferenceBackend())}
    if name not in backends:
        raise InputError(f"serving.backend {name!r} is not one of {sorted(backends)}")
    return backends[name]
