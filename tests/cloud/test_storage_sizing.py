"""STORAGE_SIZE_IN_GB from the measured image and what the artifact's route really puts on the volume."""

from types import SimpleNamespace

from tests.cloud.conftest import make_request
from trtllm_oci.cloud import limits
from trtllm_oci.cloud.artifact import artifact_volume_bytes
from trtllm_oci.cloud.deployment import build_environment_variables
from trtllm_oci.image.publish import local_image_size
from trtllm_oci.release.deployment import TRTLLM_IMAGE_SIZE_ESTIMATE_BYTES, storage_image_bytes


class _Images:
    def __init__(self, sizes):
        self.sizes = sizes

    def get(self, ref):
        if ref not in self.sizes:
            raise LookupError(ref)
        return SimpleNamespace(attrs={"Size": self.sizes[ref]})


def test_the_published_image_carries_its_measured_size():
    client = SimpleNamespace(images=_Images({"sha256:abc": 52_000_000_000}))
    assert local_image_size(client, "sha256:abc") == 52_000_000_000
    assert local_image_size(client, "iad.ocir.io/ns/repo:tag") is None
    assert storage_image_bytes(52_000_000_000) == 52_000_000_000
    assert storage_image_bytes(None) == TRTLLM_IMAGE_SIZE_ESTIMATE_BYTES


def test_70b_by_reference_needs_the_objects_once_a_zip_twice():
    image, artifact = 45 * 10**9, 130 * 10**9
    by_reference = limits.storage_size_gb(image, artifact_volume_bytes(artifact, "by_reference"))
    zipped = limits.storage_size_gb(image, artifact_volume_bytes(artifact, "object_storage_export"))
    assert by_reference == 219  # 175 GB + 25 %
    assert zipped == 382  # image + zip + unzipped copy = 305 GB + 25 %, not 219
    env = build_environment_variables(make_request(image_size_bytes=image, artifact_size_bytes=artifact,
                                                   artifact_route="object_storage_export"))
    assert env["STORAGE_SIZE_IN_GB"] == "382"
