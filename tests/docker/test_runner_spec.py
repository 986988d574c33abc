"""ContainerRunSpec validation and its translation to docker-py arguments (no engine needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from trtllm_oci.build.runner import BindMount, ContainerRunSpec, Step


def test_defaults_follow_nvidia_run_options():
    kwargs = ContainerRunSpec(image="nvcr.io/nvidia/tritonserver:25.12-trtllm-python-py3").create_kwargs()
    assert kwargs["ipc_mode"] == "host"
    assert {(u["Name"], u["Soft"], u["Hard"]) for u in kwargs["ulimits"]} == {
        ("memlock", -1, -1),
        ("stack", 67108864, 67108864),
    }
    (request,) = kwargs["device_requests"]
    assert (request["Driver"], request["Count"], request["Capabilities"]) == ("nvidia", -1, [["gpu"]])
    assert kwargs["environment"]["PYTHONUNBUFFERED"] == "1"
    assert "shm_size" not in kwargs


def test_gpu_device_ids_become_a_device_request():
    kwargs = ContainerRunSpec(image="i", gpus=["0", "GPU-0a1b2c3d-aaaa-bbbb"]).create_kwargs()
    (request,) = kwargs["device_requests"]
    assert request["DeviceIDs"] == ["0", "GPU-0a1b2c3d-aaaa-bbbb"]
    assert not request.get("Count")


def test_no_gpus_means_no_device_request():
    assert ContainerRunSpec(image="i", gpus=None).create_kwargs()["device_requests"] is None


def test_for_engine_build_layout(tmp_path: Path):
    spec = ContainerRunSpec.for_engine_build("i", tmp_path / "m", tmp_path / "w", tmp_path / "o")
    mounts = {m["Target"]: (m["Source"], m["ReadOnly"]) for m in spec.create_kwargs()["mounts"]}
    assert mounts == {
        "/model": (str(tmp_path / "m"), True),
        "/work": (str(tmp_path / "w"), False),
        "/output": (str(tmp_path / "o"), False),
    }
    assert spec.workdir == "/work"


def test_private_ipc_with_shm_size():
    kwargs = ContainerRunSpec(image="i", ipc_mode=None, shm_size="16g").create_kwargs()
    assert kwargs["shm_size"] == "16g" and "ipc_mode" not in kwargs


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"shm_size": "16g"}, "no effect with ipc_mode='host'"),
        ({"gpus": []}, "gpus=None"),
        ({"gpus": ["cuda:0"]}, "'cuda:0'"),
        ({"user": "1000:1000:5"}, "'1000:1000:5'"),
        ({"ulimits": {"memlok": -1}}, "unknown ulimit 'memlok'"),
        ({"image": ""}, "image"),
        (
            {"mounts": [{"source": "/a", "target": "/work"}, {"source": "/b", "target": "/work/"}]},
            "/work",
        ),
    ],
)
def test_bad_spec_values_are_named(fields, needle):
    with pytest.raises(ValidationError) as info:
        ContainerRunSpec(**{"image": "i", **fields})
    assert needle in str(info.value)


@pytest.mark.parametrize(
    ("mount", "needle"),
    [
        ({"source": "relative/dir", "target": "/m"}, "'relative/dir' is relative"),
        ({"source": "/abs", "target": "m"}, "'m' must be an absolute path"),
    ],
)
def test_bad_mounts_are_named(mount, needle):
    with pytest.raises(ValidationError) as info:
        BindMount(**mount)
    assert needle in str(info.value)


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"argv": []}, "argv"),
        ({"argv": [""]}, "argv[0]"),
        ({"argv": ["x"], "timeout_s": 0}, "timeout_s"),
        ({"argv": ["x"], "name": ""}, "name"),
    ],
)
def test_bad_steps_are_named(fields, needle):
    with pytest.raises(ValidationError) as info:
        Step(**{"name": "s", **fields})
    assert needle in str(info.value)
