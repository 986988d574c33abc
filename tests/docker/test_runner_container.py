"""run_steps_in_container against a real dockerd with a FROM-scratch busybox image."""

from __future__ import annotations

import pickle
import resource
import time
from pathlib import Path

import pytest

from trtllm_oci.build.runner import (
    RUNNER_LABEL,
    BuildOutOfMemoryError,
    ContainerRunSpec,
    Step,
    StepFailedError,
    StepLaunchError,
    StepTimeoutError,
    run_steps_in_container,
)


def _memlock_limit() -> int:
    """memlock=-1 (NVIDIA's setting) needs CAP_SYS_RESOURCE; CI sandboxes cap it, so stay within the hard limit."""
    _, hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    return -1 if hard == resource.RLIM_INFINITY else hard


def _spec(image: str, **overrides) -> ContainerRunSpec:
    base = {
        "image": image,
        "gpus": None,
        "network_mode": "none",
        "ulimits": {"memlock": _memlock_limit(), "stack": 67108864},
    }
    base.update(overrides)
    return ContainerRunSpec(**base)


def _runner_containers(docker_client) -> list:
    return docker_client.containers.list(all=True, filters={"label": f"{RUNNER_LABEL}=1"})


class Recorder:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.times: list[float] = []

    def __call__(self, line: str) -> None:
        self.lines.append(line)
        self.times.append(time.monotonic())

    def at(self, text: str) -> float:
        return self.times[self.lines.index(text)]


def test_mounts_env_user_workdir_and_ulimits_reach_the_step(tmp_path: Path, busybox_image, docker_client):
    model, work, output = tmp_path / "model", tmp_path / "work", tmp_path / "output"
    for d in (model, work, output):
        d.mkdir()
        d.chmod(0o777)
    (model / "config.json").write_text('{"architectures": ["LlamaForCausalLM"]}')
    spec = ContainerRunSpec.for_engine_build(
        busybox_image,
        model,
        work,
        output,
        gpus=None,
        network_mode="none",
        ulimits={"memlock": _memlock_limit(), "stack": 67108864},
        environment={"TLLM_LOG_LEVEL": "INFO"},
        user="1234:5678",
    )
    log = Recorder()
    script = (
        "cat /model/config.json; echo; id -u; id -g; echo level=$TLLM_LOG_LEVEL; pwd; ulimit -s; "
        "echo rank0 > /output/rank0.engine; echo scratch > /work/tmp.txt"
    )
    results = run_steps_in_container(
        [Step(name="probe", argv=["sh", "-c", script])], spec, docker_client, log
    )

    assert log.lines[0].startswith("=== step probe")
    assert log.lines[1:] == [
        '{"architectures": ["LlamaForCausalLM"]}',
        "1234",
        "5678",
        "level=INFO",
        "/work",
        "65536",  # ulimit -s reports KiB: 67108864 bytes
    ]
    assert (output / "rank0.engine").read_text() == "rank0\n"
    assert (output / "rank0.engine").stat().st_uid == 1234
    assert (work / "tmp.txt").exists()
    assert results[0].exit_code == 0 and results[0].name == "probe"
    assert _runner_containers(docker_client) == []


def test_model_mount_is_read_only(tmp_path: Path, busybox_image, docker_client):
    model, work, output = (tmp_path / n for n in ("model", "work", "output"))
    for d in (model, work, output):
        d.mkdir()
    spec = ContainerRunSpec.for_engine_build(
        busybox_image, model, work, output, gpus=None, network_mode="none", ulimits={"stack": 67108864}
    )
    with pytest.raises(StepFailedError) as info:
        run_steps_in_container(
            [Step(name="write-model", argv=["touch", "/model/oops"])], spec, docker_client, lambda _: None
        )
    assert "Read-only file system" in "\n".join(info.value.tail_lines)
    assert not (model / "oops").exists()


def test_lines_stream_live_and_in_order(busybox_image, docker_client):
    log = Recorder()
    step = Step(
        name="slow", argv=["sh", "-c", "echo first; echo second; sleep 2; printf 'third\\r'; echo fourth"]
    )
    run_steps_in_container([step], _spec(busybox_image), docker_client, log)
    assert log.lines[1:] == ["first", "second", "third", "fourth"]
    # "first" must reach the log while the step still sleeps, not when it has finished.
    assert log.at("fourth") - log.at("first") >= 1.5


def test_failure_reports_exit_code_and_last_40_lines_and_stops(tmp_path: Path, busybox_image, docker_client):
    out = tmp_path / "out"
    out.mkdir()
    spec = _spec(busybox_image, mounts=[{"source": out, "target": "/out"}])
    failing = Step(name="convert", argv=["sh", "-c", "for i in $(seq 1 100); do echo line $i; done; exit 3"])
    never = Step(name="build", argv=["touch", "/out/should-not-exist"])
    with pytest.raises(StepFailedError) as info:
        run_steps_in_container([failing, never], spec, docker_client, lambda _: None)
    error = info.value
    assert type(error) is StepFailedError
    assert error.exit_code == 3
    assert error.step.name == "convert"
    assert error.tail_lines == [f"line {i}" for i in range(61, 101)]
    message = str(error)
    assert "exit code 3" in message and "line 100" in message and "line 60\n" not in message
    assert not (out / "should-not-exist").exists()
    assert _runner_containers(docker_client) == []
    # Prefect pickles task exceptions; the details must survive.
    clone = pickle.loads(pickle.dumps(error))
    assert (type(clone), clone.exit_code, clone.tail_lines, str(clone)) == (
        StepFailedError,
        3,
        error.tail_lines,
        message,
    )


@pytest.mark.parametrize(
    "text",
    [
        "RuntimeError: CUDA error: out of memory",
        "[TRT] [E] 2: Requested amount of GPU memory (17179869184 bytes) could not be allocated.",
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB",
    ],
)
def test_out_of_memory_output_raises_oom_error_with_advice(text, busybox_image, docker_client):
    step = Step(name="trtllm-build", argv=["sh", "-c", f"echo '{text}'; echo 'Traceback tail'; exit 1"])
    with pytest.raises(BuildOutOfMemoryError) as info:
        run_steps_in_container(
            [step],
            _spec(busybox_image),
            docker_client,
            lambda _: None,
            oom_advice=lambda: "Alternatives: tp=2 on BM.GPU.A10.4, or max_batch_size=64",
        )
    message = str(info.value)
    assert text in message
    assert "Alternatives: tp=2 on BM.GPU.A10.4" in message
    assert info.value.exit_code == 1


def test_cgroup_oom_kill_is_recognised(busybox_image, docker_client):
    # tail -c keeps the last 100 MB of an endless stream in memory: over a 16 MiB limit it is OOM-killed.
    step = Step(name="load-weights", argv=["tail", "-c", "100000000", "/dev/zero"])
    with pytest.raises(BuildOutOfMemoryError) as info:
        run_steps_in_container([step], _spec(busybox_image, mem_limit="16m"), docker_client, lambda _: None)
    assert info.value.exit_code == 137
    assert "OOM-killed" in str(info.value)
    assert _runner_containers(docker_client) == []


def test_plain_failure_mentioning_memory_is_not_oom(busybox_image, docker_client):
    step = Step(name="x", argv=["sh", "-c", "echo 'free GPU memory: 70 GiB'; exit 2"])
    with pytest.raises(StepFailedError) as info:
        run_steps_in_container([step], _spec(busybox_image), docker_client, lambda _: None)
    assert type(info.value) is StepFailedError


def test_keyboard_interrupt_removes_the_container(busybox_image, docker_client):
    def interrupt_on_second_tick(line: str) -> None:
        if line == "tick 2":
            raise KeyboardInterrupt

    step = Step(
        name="endless", argv=["sh", "-c", "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done"]
    )
    with pytest.raises(KeyboardInterrupt):
        run_steps_in_container([step], _spec(busybox_image), docker_client, interrupt_on_second_tick)
    assert _runner_containers(docker_client) == []


def test_timeout_kills_the_step(busybox_image, docker_client):
    step = Step(name="hang", argv=["sh", "-c", "echo started; sleep 60"], timeout_s=1.5)
    started = time.monotonic()
    with pytest.raises(StepTimeoutError) as info:
        run_steps_in_container([step], _spec(busybox_image), docker_client, lambda _: None)
    assert time.monotonic() - started < 20
    assert "timeout of 1.5s" in str(info.value)
    assert info.value.tail_lines == ["started"]
    assert _runner_containers(docker_client) == []


def test_missing_executable_is_a_launch_error(busybox_image, docker_client):
    with pytest.raises(StepLaunchError) as info:
        run_steps_in_container(
            [Step(name="build", argv=["trtllm-build", "--checkpoint_dir", "/x"])],
            _spec(busybox_image),
            docker_client,
            lambda _: None,
        )
    assert "trtllm-build" in str(info.value)
    assert _runner_containers(docker_client) == []


def test_absent_image_without_pull_is_a_launch_error(docker_client):
    spec = _spec("trtllm-oci-test/absent:1", pull_missing=False)
    with pytest.raises(StepLaunchError, match=r"trtllm-oci-test/absent:1.*docker pull"):
        run_steps_in_container([Step(name="a", argv=["true"])], spec, docker_client, lambda _: None)


def test_accepts_a_docker_host_url(busybox_image, docker_host):
    log = Recorder()
    run_steps_in_container(
        [Step(name="hello", argv=["echo", "hello"])], _spec(busybox_image), docker_host, log
    )
    assert log.lines[-1] == "hello"


def test_nvidia_defaults_create_and_run(busybox_image, docker_client):
    """NVIDIA's defaults (ipc=host, 64 MiB stack) are accepted by a real engine; GPUs and memlock left out here."""
    spec = ContainerRunSpec(image=busybox_image, gpus=None, network_mode="none")
    spec = spec.model_copy(update={"ulimits": {**spec.ulimits, "memlock": _memlock_limit()}})
    log = Recorder()
    run_steps_in_container([Step(name="ulimit", argv=["sh", "-c", "ulimit -s"])], spec, docker_client, log)
    assert log.lines[-1] == "65536"


def test_the_cgroup_oom_counter_of_a_running_step_is_read(busybox_image, docker_client):
    # The second signal beside State.OOMKilled: the container's own memory cgroup, readable while it runs.
    from trtllm_oci.build.runner import _CgroupOomWatch

    container = docker_client.containers.create(
        busybox_image, command=["sleep", "2"], mem_limit="32m", memswap_limit="32m", detach=True
    )
    try:
        container.start()
        watch = _CgroupOomWatch(container).start()
        container.wait()
        watch.stop()
    finally:
        container.remove(force=True)
    assert watch.first == 0 and watch.kills == 0
