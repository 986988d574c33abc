"""The version table: images, defaults, lookups and its own consistency checks."""

from __future__ import annotations

import pytest
import yaml
from pydantic import ValidationError

from trtllm_oci.versions import (
    DEFAULT_TRTLLM_VERSION,
    UnsupportedVersionError,
    VersionTable,
    get_version,
    load_version_table,
    supported_versions,
)


def test_required_versions_and_their_images():
    images = {v: get_version(v).serving_image for v in supported_versions()}
    assert images == {
        "0.5.0": "nvcr.io/nvidia/tritonserver:23.10-trtllm-python-py3",
        "0.9.0": "nvcr.io/nvidia/tritonserver:24.05-trtllm-python-py3",
        "0.12.0": "nvcr.io/nvidia/tritonserver:24.08-trtllm-python-py3",
        "0.14.0": "nvcr.io/nvidia/tritonserver:24.10-trtllm-python-py3",
        "1.2.1": "nvcr.io/nvidia/tritonserver:26.04-trtllm-python-py3",
    }
    assert get_version("1.2.1").image_tag == "26.04-trtllm-python-py3"


def test_dialects_and_engine_naming():
    assert (
        get_version("0.5.0").dialect == "legacy_build_py" and get_version("0.5.0").engine_naming == "legacy"
    )
    for v in ("0.9.0", "0.12.0", "0.14.0", "1.2.1"):
        assert get_version(v).dialect == "convert_then_build" and get_version(v).engine_naming == "rank"


def test_default_is_in_table_and_v_prefix_is_accepted():
    assert DEFAULT_TRTLLM_VERSION in supported_versions()
    assert get_version("v0.14.0").version == "0.14.0"


def test_unknown_version_error_names_value_and_choices():
    with pytest.raises(UnsupportedVersionError, match=r"'0\.13\.0' is not supported; choose one of"):
        get_version("0.13.0")


def _table_dict() -> dict:
    return load_version_table().model_dump(mode="json")


def test_table_rejects_default_not_listed():
    data = _table_dict()
    data["default_version"] = "9.9.9"
    with pytest.raises(ValidationError, match="default_version 9.9.9"):
        VersionTable.model_validate(data)


def test_table_rejects_family_pointing_at_missing_script():
    data = _table_dict()
    data["versions"][1]["families"]["llama"]["script"] = "nope"
    with pytest.raises(ValidationError, match="unknown script 'nope'"):
        VersionTable.model_validate(data)


def test_table_rejects_build_flag_not_in_flag_list():
    data = _table_dict()
    data["versions"][2]["max_length_flag"] = "--max_output_len"
    with pytest.raises(ValidationError, match="'--max_output_len' missing"):
        VersionTable.model_validate(data)


def test_yaml_file_round_trips_through_the_model():
    from importlib import resources

    raw = yaml.safe_load(resources.files("trtllm_oci.data").joinpath("trtllm_versions.yaml").read_text())
    assert VersionTable.model_validate(raw) == load_version_table()


def test_flag_extractor_reads_add_argument_and_cli_plugin_args():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "data" / "trtllm_cli_flags" / "extract_argparse_flags.py"
    spec = importlib.util.spec_from_file_location("extract_argparse_flags", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    source = (
        "p.add_argument('--max_seq_len', '--max_decoder_seq_len', dest='x')\n"
        "p.add_argument('-s', type=int)\n"
        "cli_plugin_args = ['gemm_plugin', 'context_fmha']\n"
    )
    assert module.flags_in_source(source) == {
        "--max_seq_len",
        "--max_decoder_seq_len",
        "--gemm_plugin",
        "--context_fmha",
    }
