"""examples/ from the TensorRT-LLM release image of the same version, used only when its TensorRT equals
the serving image's. The stand-in image has the release image's layout (examples at
/app/tensorrt_llm/examples, docker/Dockerfile.multi `release` stage) and a python3 that answers
`import tensorrt; print(tensorrt.__version__)` with a fixed version."""

from __future__ import annotations

import pytest

from tests.docker.conftest import write_busybox_context
from trtllm_oci.build.trtllm_sources import ReleaseImageError, examples_from_release_image

TAG = "trtllm-oci-test/trtllm-release:1"
TENSORRT = "10.14.1.48"


@pytest.fixture(scope="module")
def release_image(docker_client, tmp_path_factory) -> str:
    context = write_busybox_context(
        tmp_path_factory.mktemp("release-context"),
        'RUN ["/bin/sh", "-c", "mkdir -p /app/tensorrt_llm/examples/quantization '
        "&& echo '# quantize.py' > /app/tensorrt_llm/examples/quantization/quantize.py "
        f"&& printf '#!/bin/sh\\\\necho {TENSORRT}\\\\n' > /bin/python3 && chmod +x /bin/python3\"]\n",
    )
    docker_client.images.build(path=str(context), tag=TAG, network_mode="none", rm=True, forcerm=True)
    return TAG


def test_examples_are_copied_when_tensorrt_matches(docker_client, release_image, tmp_path):
    dest = examples_from_release_image(docker_client, release_image, TENSORRT, tmp_path / "checkout")
    assert (dest / "examples" / "quantization" / "quantize.py").read_text() == "# quantize.py\n"
    assert not [c for c in docker_client.containers.list(all=True) if c.image.tags == [TAG]]


def test_another_tensorrt_is_refused_naming_both(docker_client, release_image, tmp_path):
    with pytest.raises(ReleaseImageError, match=rf"has TensorRT {TENSORRT} but the serving image has 10\.4\.0"):
        examples_from_release_image(docker_client, release_image, "10.4.0", tmp_path / "checkout")
    assert not (tmp_path / "checkout").exists()
