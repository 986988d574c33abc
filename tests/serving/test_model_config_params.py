"""The config-parameter helpers all the Python-backend models share (model_config_params.py): imported from
the shipped file with the real triton_python_backend_utils, and loaded by the real tritonserver."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.serving.conftest import load_model_module, write_repo
from trtllm_oci.serving import LocalTriton, TritonStartError

MODULE_FILE = Path(__file__).resolve().parents[2] / "trtllm_oci/serving/models/model_config_params.py"


@pytest.fixture(scope="module")
def params():
    return load_model_module(MODULE_FILE, "model_config_params_under_test")


def _config(**values: str) -> dict:
    # The JSON the Python backend passes as args["model_config"]: parameters map to {"string_value": ...}.
    return {"parameters": {key: {"string_value": value} for key, value in values.items()}}


def test_string_parameter_treats_absent_empty_and_placeholder_as_unset(params):
    config = _config(set="/models/tok", empty="", placeholder="${tokenizer_dir}", inner="a${b}")
    assert params.string_parameter(config, "set") == "/models/tok"
    assert params.string_parameter(config, "empty") is None
    assert params.string_parameter(config, "placeholder") is None
    assert params.string_parameter(config, "inner") == "a${b}"
    assert params.string_parameter(config, "absent") is None
    assert params.string_parameter({}, "absent") is None


@pytest.mark.parametrize("value", ["1", "true", "True", " TRUE ", "t", "yes", "Y", "on"])
def test_bool_parameter_true_words(params, value):
    assert params.bool_parameter(_config(flag=value), "flag", False) is True


@pytest.mark.parametrize("value", ["0", "false", "no", "off", "enabled"])
def test_bool_parameter_other_words_are_false(params, value):
    assert params.bool_parameter(_config(flag=value), "flag", True) is False


@pytest.mark.parametrize("value", [None, "", "${skip_special_tokens}"])
@pytest.mark.parametrize("default", [False, True])
def test_bool_parameter_unset_gives_default(params, value, default):
    config = _config() if value is None else _config(flag=value)
    assert params.bool_parameter(config, "flag", default) is default


def test_load_tokenizer_reads_tokenizer_dir(params, tiny_model, tiny_tokenizer):
    tokenizer_dir, tokenizer = params.load_tokenizer(_config(tokenizer_dir=str(tiny_model)))
    assert tokenizer_dir == str(tiny_model)
    assert tokenizer.padding_side == "left"
    assert tokenizer.encode("hello world") == tiny_tokenizer.encode("hello world")


@pytest.mark.timeout(180)
def test_unfilled_tokenizer_dir_placeholder_fails_the_load_with_the_fix(tmp_path, tiny_model):
    repo = write_repo(tmp_path / "repo", tiny_model, tokenizer_dir=Path("${tokenizer_dir}"))
    with pytest.raises(TritonStartError) as caught, LocalTriton(repo, ready_timeout_s=120):
        pass
    message = str(caught.value)
    assert "preprocessing" in message or "postprocessing" in message
    assert "parameter 'tokenizer_dir' is not set; point it at a Hugging Face tokenizer directory" in message
