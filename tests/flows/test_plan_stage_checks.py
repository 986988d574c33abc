"""The release flow's plan stage refuses what the model's config.json rules out, before the download stage
and without a GPU shape to plan against (a local target): the same checks `build --dry-run` runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from trtllm_oci.release.plan import ReleaseCheckError, check_release
from trtllm_oci.spec import parse_spec

CONFIGS = Path(__file__).parent.parent / "data" / "hf_configs"


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    shutil.copy(CONFIGS / "llama-2-13b-hf.json", tmp_path / "config.json")
    return tmp_path


@pytest.mark.parametrize(
    ("patch", "fragment"),
    [
        ({"parallelism": {"tp": 3}}, "tp=3 does not divide the model's 40 attention heads"),
        ({"parallelism": {"pp": 41}}, "pp=41 exceeds the model's 40 layers"),
        ({"build": {"max_input_len": 1024, "max_seq_len": 8192}}, "max_seq_len=8192 is longer than the 4096-token"),
        ({"quantization": {"method": "int8_sq"}, "trtllm_version": "0.5.0"}, "int8_sq"),
        ({"serving": {"backend": "pytorch", "frontend": "triton"}, "build": {"max_seq_len": 4096}},
         "serving.frontend triton with target.kind local"),
    ],
)
def test_the_plan_task_refuses_before_any_download(model_dir: Path, patch: dict, fragment: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect.logging import disable_run_logger

    from trtllm_oci.tasks import plan
    from trtllm_oci.tasks.plan import plan_capacity

    monkeypatch.setattr(plan, "hf_token", lambda settings: None)  # a local model: no Secret block to ask an API for

    spec = parse_spec({"model": {"local_dir": str(model_dir)}, **patch})
    with disable_run_logger(), pytest.raises(ReleaseCheckError, match=fragment.replace("(", r"\(")):
        plan_capacity.fn(spec)


def test_every_problem_is_listed_at_once(model_dir: Path) -> None:
    spec = parse_spec({"model": {"local_dir": str(model_dir)}, "parallelism": {"tp": 3, "pp": 50},
                       "build": {"max_input_len": 100, "max_seq_len": 9000}})
    facts_config = json.loads((model_dir / "config.json").read_text())
    from trtllm_oci.model_facts import facts_from_config

    with pytest.raises(ReleaseCheckError) as error:
        check_release(spec, facts_from_config(facts_config))
    assert len(error.value.problems) == 3


def test_a_local_llmapi_release_that_is_not_served_here_is_not_refused(model_dir: Path) -> None:
    from trtllm_oci.model_facts import facts_from_config

    facts = facts_from_config(json.loads((model_dir / "config.json").read_text()))
    spec = parse_spec({"model": {"local_dir": str(model_dir)}, "serving": {"backend": "pytorch", "frontend": "triton"},
                       "benchmark": {"enabled": False}})
    check_release(spec, facts)
