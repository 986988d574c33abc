"""Golden argv for launch_argv, written from get_cmd of
triton-inference-server/tensorrtllm_backend:scripts/launch_triton_server.py@v0.19.0."""

import pytest

from trtllm_oci.serving.launch import launch_argv

TS = "/opt/tritonserver/bin/tritonserver"
PORTS = ["--grpc-port=8001", "--http-port=8000", "--metrics-port=8002"]


def test_world_size_1_is_plain_tritonserver():
    assert launch_argv("/models", 1) == [
        TS, "--model-repository=/models", *PORTS, *PORTS,
        "--disable-auto-complete-config", "--backend-config=python,shm-region-prefix-name=prefix0_",
    ]


def test_world_size_1_mpirun_form_matches_upstream_default():
    assert launch_argv("/models", 1, use_mpi=True) == [
        "mpirun", "--allow-run-as-root", "-n", "1", TS, "--model-repository=/models", *PORTS, *PORTS,
        "--disable-auto-complete-config", "--backend-config=python,shm-region-prefix-name=prefix0_", ":",
    ]


def test_world_size_2_one_app_context_per_rank_with_log_on_rank0():
    argv = launch_argv("/models", 2, log_file="/tmp/triton.log", tensorrt_llm_model_names=("tensorrt_llm", "draft"))
    assert argv == [
        "mpirun", "--allow-run-as-root",
        "-n", "1", TS, "--model-repository=/models", *PORTS, "--log-verbose=3", "--log-file=/tmp/triton.log",
        *PORTS, "--disable-auto-complete-config", "--backend-config=python,shm-region-prefix-name=prefix0_", ":",
        "-n", "1", TS, "--model-repository=/models", *PORTS,
        "--model-control-mode=explicit", "--load-model=tensorrt_llm", "--load-model=draft",
        *PORTS, "--disable-auto-complete-config", "--backend-config=python,shm-region-prefix-name=prefix1_", ":",
    ]


def test_custom_ports_oversubscribe_exit_timeout_and_extra_args():
    argv = launch_argv("/r", 4, http_port=9000, grpc_port=9001, metrics_port=9002, tritonserver="/bin/ts",
                       oversubscribe=True, exit_timeout_s=5, extra_args=["--backend-directory=/b"])
    assert argv[:3] == ["mpirun", "--allow-run-as-root", "--oversubscribe"]
    assert argv.count(":") == 4
    assert argv.count("--exit-timeout-secs=5") == 4
    assert argv.count("--backend-directory=/b") == 4
    assert "--grpc-port=9001" in argv and "--http-port=9000" in argv and "--metrics-port=9002" in argv
    assert [a for a in argv if a.startswith("--backend-config")][-1].endswith("prefix3_")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"world_size": 0}, "world_size=0"),
        ({"world_size": True}, "world_size=True"),
        ({"world_size": 2, "use_mpi": False}, "needs mpirun"),
        ({"world_size": 1, "http_port": 0}, "http_port=0"),
        ({"world_size": 1, "grpc_port": 70000}, "grpc_port=70000"),
        ({"world_size": 1, "metrics_port": 8000}, "ports must differ"),
        ({"world_size": 2, "tensorrt_llm_model_names": ()}, "is empty"),
        ({"world_size": 2, "tensorrt_llm_model_names": "tensorrt_llm"}, "sequence of names"),
        ({"world_size": 2, "tensorrt_llm_model_names": ("a,b",)}, "'a,b'"),
        ({"world_size": 1, "exit_timeout_s": -1}, "exit_timeout_s=-1"),
    ],
)
def test_bad_inputs_are_refused_with_the_value_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        launch_argv("/models", **kwargs)
