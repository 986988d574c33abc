"""Tiny test images built FROM scratch: nothing can be pulled in CI, and vfs storage copies every layer."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import pytest

BUSYBOX_CANDIDATES = (Path("/bin/busybox"), Path("/usr/bin/busybox"))
BUSYBOX_IMAGE = "trtllm-oci-test/busybox:1"
PT_INTERP = 3


def _is_static_elf(path: Path) -> bool:
    """True if the ELF has no program interpreter, i.e. runs in an image without a libc."""
    data = path.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2:  # 64-bit only
        return False
    endian = "<" if data[5] == 1 else ">"
    (phoff,) = struct.unpack_from(endian + "Q", data, 0x20)
    phentsize, phnum = struct.unpack_from(endian + "HH", data, 0x36)
    for index in range(phnum):
        (p_type,) = struct.unpack_from(endian + "I", data, phoff + index * phentsize)
        if p_type == PT_INTERP:
            return False
    return True


def static_busybox() -> Path:
    for candidate in BUSYBOX_CANDIDATES:
        if candidate.exists() and _is_static_elf(candidate.resolve()):
            return candidate.resolve()
    raise RuntimeError(
        f"no statically linked busybox at {', '.join(map(str, BUSYBOX_CANDIDATES))}; "
        "install it with `apt-get install -y busybox-static` (the dynamic `busybox` package cannot run FROM scratch)"
    )


def write_busybox_context(directory: Path, extra_dockerfile: str = "") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy2(static_busybox(), directory / "busybox")
    (directory / "Dockerfile").write_text(
        "FROM scratch\n"
        "COPY busybox /bin/busybox\n"
        'RUN ["/bin/busybox", "--install", "-s", "/bin"]\n'
        "ENV PATH=/usr/local/bin:/usr/bin:/bin\n" + extra_dockerfile
    )
    return directory


@pytest.fixture(scope="session")
def busybox_image(docker_client, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Tag of a ~2 MB image with a shell and coreutils (busybox) on the session's engine."""
    context = write_busybox_context(tmp_path_factory.mktemp("busybox-context"))
    docker_client.images.build(
        path=str(context), tag=BUSYBOX_IMAGE, network_mode="none", rm=True, forcerm=True
    )
    return BUSYBOX_IMAGE
