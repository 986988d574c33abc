"""Locate a Triton Inference Server installation and prepare its Python backend.

Two kinds of installation are supported:

* the NVIDIA container layout (``/opt/tritonserver`` or a ``tritonserver`` on PATH whose
  ``../backends/python`` holds ``libtriton_python.so`` and its stub), used as is;
* the ``nvidia-pytriton`` wheel (Triton 2.51 for CPU), which ships ``tritonserver``, the python
  backend and one ``triton_python_backend_stub`` per Python version under
  ``pytriton/tritonserver/python_backend_stubs/<X.Y>/``. The python backend loads the stub from
  its own directory, so a backend directory with the stub for the running Python is assembled
  once in a cache dir (the wheel's own directory is left untouched).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import shutil
import site
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from trtllm_oci.errors import InputError, ProcessError
from trtllm_oci.settings import current_settings

CONTAINER_PREFIX = Path("/opt/tritonserver")
DEFAULT_CACHE_ROOT = Path.home() / ".cache" / "trtllm-oci" / "triton-backends"
PYTRITON_DIST = "nvidia-pytriton"
PYTHON_BACKEND_LIB = "libtriton_python.so"
PYTHON_BACKEND_STUB = "triton_python_backend_stub"
PYTHON_BACKEND_UTILS = "triton_python_backend_utils.py"
_COMPLETE_MARKER = ".complete"

INSTALL_HINT = (
    "install the CPU build of Triton with `pip install nvidia-pytriton` (ships tritonserver 2.51 "
    "and the python backend), or run inside an NVIDIA tritonserver container where it lives in "
    "/opt/tritonserver"
)


class TritonNotFoundError(ProcessError):
    """No usable tritonserver (or its python backend) was found."""


@dataclass(frozen=True)
class TritonInstall:
    """A tritonserver binary plus what it needs to run Python-backend models."""

    tritonserver: Path
    backend_dir: Path
    cache_dir: Path | None
    source: str
    env_overrides: dict[str, str] = field(default_factory=dict)

    def server_args(self) -> list[str]:
        """Flags that point tritonserver at the prepared backend (and cache) directories."""
        args = [f"--backend-directory={self.backend_dir}"]
        if self.cache_dir is not None:
            args.append(f"--cache-directory={self.cache_dir}")
        return args

    def environ(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """A full process environment: ``base`` (default os.environ) with path-like overrides
        prepended to any existing value."""
        env = dict(os.environ if base is None else base)
        for key, value in self.env_overrides.items():
            existing = env.get(key)
            env[key] = f"{value}{os.pathsep}{existing}" if existing else value
        return env


def find_triton(
    cache_root: Path | None = None,
    python_version: str | None = None,
    search_order: tuple[str, ...] = ("container", "path", "wheel"),
) -> TritonInstall:
    """Return the first usable Triton installation in ``search_order``.

    ``container`` is /opt/tritonserver, ``path`` a tritonserver on PATH with a sibling
    ``backends/python``, ``wheel`` the nvidia-pytriton wheel (its backend dir is prepared under
    ``cache_root``, default ~/.cache/trtllm-oci/triton-backends). Raises TritonNotFoundError
    naming every place looked at and how to install Triton.
    """
    unknown = set(search_order) - {"container", "path", "wheel"}
    if unknown:
        raise InputError(
            f"search_order has unknown entries {sorted(unknown)}; use 'container', 'path', 'wheel'"
        )
    looked: list[str] = []
    for kind in search_order:
        if kind == "container":
            install = _from_prefix(CONTAINER_PREFIX, "container", looked)
        elif kind == "path":
            on_path = shutil.which("tritonserver")
            install = None
            if on_path is None:
                looked.append("no `tritonserver` on PATH")
            else:
                prefix = Path(on_path).resolve().parent.parent
                install = _from_prefix(prefix, "path", looked)
        else:
            install = _from_wheel(cache_root or DEFAULT_CACHE_ROOT, python_version, looked)
        if install is not None:
            return install
    raise TritonNotFoundError(
        "no usable tritonserver found (" + "; ".join(looked) + "). Fix: " + INSTALL_HINT
    )


def _from_prefix(prefix: Path, source: str, looked: list[str]) -> TritonInstall | None:
    binary = prefix / "bin" / "tritonserver"
    backend_dir = prefix / "backends"
    if not binary.is_file():
        looked.append(f"{binary} does not exist")
        return None
    python_backend = backend_dir / "python"
    missing = [
        name
        for name in (PYTHON_BACKEND_LIB, PYTHON_BACKEND_STUB)
        if not (python_backend / name).is_file()
    ]
    if missing:
        looked.append(f"{binary} found but {python_backend} lacks {', '.join(missing)}")
        return None
    caches = prefix / "caches"
    return TritonInstall(
        tritonserver=binary,
        backend_dir=backend_dir,
        cache_dir=caches if caches.is_dir() else None,
        source=source,
    )


def _wheel_root() -> Path | None:
    spec = importlib.util.find_spec("pytriton")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent


def _from_wheel(cache_root: Path, python_version: str | None, looked: list[str]) -> TritonInstall | None:
    root = _wheel_root()
    if root is None:
        looked.append(f"Python package `pytriton` ({PYTRITON_DIST} wheel) is not installed in {sys.prefix}")
        return None
    dist = root / "tritonserver"
    binary = dist / "bin" / "tritonserver"
    wheel_backend = dist / "backends" / "python"
    libs = root.parent / "nvidia_pytriton.libs"
    version = python_version or f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = dist / "python_backend_stubs" / version / PYTHON_BACKEND_STUB
    for needed in (binary, wheel_backend / PYTHON_BACKEND_LIB, stub, libs):
        if not needed.exists():
            available = sorted(p.name for p in (dist / "python_backend_stubs").glob("*"))
            detail = f"{needed} is missing"
            if needed == stub:
                detail += f" (the wheel has stubs for Python {', '.join(available) or 'none'})"
            looked.append(f"{PYTRITON_DIST} wheel at {root}: {detail}")
            return None

    backend_dir = _prepare_backend_dir(cache_root, wheel_backend, stub, version)
    overrides = {"LD_LIBRARY_PATH": os.pathsep.join(_ld_library_path(libs))}
    overrides["PATH"] = str(_stub_venv(cache_root))
    caches = dist / "caches"
    return TritonInstall(
        tritonserver=binary,
        backend_dir=backend_dir,
        cache_dir=caches if caches.is_dir() else None,
        source="wheel",
        env_overrides=overrides,
    )


STUB_NUMPY_REQUIREMENT = "numpy>=1.21,<2"
STUB_NUMPY_ENV = "TRTLLM_OCI_TRITON_STUB_NUMPY"


@contextmanager
def _built_once(target: Path, key_src: str, what: str) -> Iterator[Path | None]:
    """Yield a staging dir to fill (None when `target` is already complete), then rename it into place
    with a completion marker, so a crash never leaves a half-built directory that a later run trusts."""
    if (target / _COMPLETE_MARKER).is_file():
        yield None
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".staging-{what}-", dir=target.parent))
    try:
        yield staging
        (staging / _COMPLETE_MARKER).write_text(key_src + "\n")
        try:
            staging.rename(target)
        except OSError:
            # Another process finished first; its complete copy is as good as ours.
            if not (target / _COMPLETE_MARKER).is_file():
                shutil.rmtree(target, ignore_errors=True)
                staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _stub_venv(cache_root: Path) -> Path:
    """A venv whose ``bin`` goes first on tritonserver's PATH; returns that bin dir.

    The python backend stub embeds libpython, ignores PYTHONPATH, and takes its ``sys.prefix``
    from the ``python3`` found on PATH (nvidia-pytriton relies on the same: its
    server/triton_server.py puts the environment's bin first on PATH). This venv's site-packages
    holds numpy 1.x and a ``.pth`` that appends this environment's site-packages, so the stub
    imports torch/transformers from here behind numpy 1.x: every nvidia-pytriton release builds
    the stub against the numpy 1.x ABI (0.7.0 pins numpy<2), and under numpy 2 it hands models
    arrays whose items all repeat the first byte. A wheel dir or pre-downloaded wheel can be
    given in ``$TRTLLM_OCI_TRITON_STUB_NUMPY`` (a pip requirement or path) for offline use.
    """
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    key_src = f"{sys.prefix}|{sys.base_prefix}|{version}"
    key = hashlib.sha256(key_src.encode()).hexdigest()[:12]
    target = cache_root / f"stub-venv-py{version}-{key}"
    with _built_once(target, key_src, "venv") as staging:
        if staging is not None:
            # A venv records its own path in bin/activate only; pyvenv.cfg (what the stub reads)
            # holds just `home`, so building in staging and renaming is safe.
            _run_checked([sys.executable, "-m", "venv", "--without-pip", str(staging)], "create the stub venv")
            site_dir = staging / "lib" / f"python{version}" / "site-packages"
            requirement = current_settings().triton_stub_numpy or STUB_NUMPY_REQUIREMENT
            _run_checked(
                [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--quiet",
                 "--no-deps", "--target", str(site_dir), requirement],
                f"install {requirement} for the python backend stub",
            )
            (site_dir / "trtllm_oci_parent_env.pth").write_text("\n".join(_site_packages()) + "\n")
    return target / "bin"


def _run_checked(argv: list[str], what: str) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise TritonNotFoundError(
            f"could not {what}: `{' '.join(argv)}` exited {result.returncode}: "
            f"{(result.stderr or result.stdout).strip()[-800:]}. Fix: make PyPI reachable, or set "
            f"{STUB_NUMPY_ENV} to a local numpy<2 wheel file"
        )


def _ld_library_path(wheel_libs: Path) -> list[str]:
    paths = [str(wheel_libs)]
    # Prefer the libpython of the running interpreter (e.g. pyenv) over the system one the stub
    # was linked against, so extension modules built for this interpreter load in the stub.
    libdir = sysconfig.get_config_var("LIBDIR")
    ldlibrary = sysconfig.get_config_var("LDLIBRARY")
    if libdir and ldlibrary and (Path(libdir) / ldlibrary).exists():
        paths.append(libdir)
    return paths


def _site_packages() -> list[str]:
    seen: list[str] = []
    for path in [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], *site.getsitepackages()]:
        if path not in seen and Path(path).is_dir():
            seen.append(path)
    return seen


def _wheel_version() -> str:
    try:
        return importlib.metadata.version(PYTRITON_DIST)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _prepare_backend_dir(cache_root: Path, wheel_backend: Path, stub: Path, version: str) -> Path:
    """Build ``<cache_root>/<key>/python/{libtriton_python.so, stub, utils}`` once.

    The key hashes the wheel version, Python version and source paths, so a changed wheel gets a
    fresh directory; the directory is built in a temp dir and renamed, so a crash never leaves a
    half-copied backend that a later run would trust.
    """
    key_src = f"{_wheel_version()}|{version}|{wheel_backend.resolve()}|{stub.resolve()}"
    key = hashlib.sha256(key_src.encode()).hexdigest()[:16]
    target = cache_root / f"pytriton-{_wheel_version()}-py{version}-{key}"
    with _built_once(target, key_src, "backend") as staging:
        if staging is not None:
            python_dir = staging / "python"
            python_dir.mkdir()
            shutil.copy2(wheel_backend / PYTHON_BACKEND_LIB, python_dir / PYTHON_BACKEND_LIB)
            shutil.copy2(wheel_backend / PYTHON_BACKEND_UTILS, python_dir / PYTHON_BACKEND_UTILS)
            shutil.copy2(stub, python_dir / PYTHON_BACKEND_STUB)
            (python_dir / PYTHON_BACKEND_STUB).chmod(0o755)
    return target
