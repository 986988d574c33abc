"""The serving image: build, push to OCIR (or any v2 registry), skip when the registry has it."""

from trtllm_oci.image.build import BUILD_KEY_LABEL, build_image, compute_build_key
from trtllm_oci.image.errors import (
    ImageBuildError,
    ImagePushError,
    RegistryAuthError,
    RegistryError,
)
from trtllm_oci.image.publish import PublishedImage, publish_image
from trtllm_oci.image.push import push_image
from trtllm_oci.image.refs import (
    OCIR_TOKEN_USERNAME,
    ImageRef,
    RegistryAuth,
    ocir_image_ref,
    ocir_registry,
    ocir_username,
    parse_image_ref,
)
from trtllm_oci.image.registry_api import RegistryClient, registry_has

__all__ = [
    "BUILD_KEY_LABEL",
    "OCIR_TOKEN_USERNAME",
    "ImageBuildError",
    "ImagePushError",
    "ImageRef",
    "PublishedImage",
    "RegistryAuth",
    "RegistryAuthError",
    "RegistryClient",
    "RegistryError",
    "build_image",
    "compute_build_key",
    "ocir_image_ref",
    "ocir_registry",
    "ocir_username",
    "parse_image_ref",
    "publish_image",
    "push_image",
    "registry_has",
]
