"""What the C++ backend reads without a fallback (trtllm_oci/data/backend_parameters.json), and that every
assembled tensorrt_llm config carries it, for every version of the version table."""

from __future__ import annotations

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from tests.repo.fake_engines import write_legacy_engine, write_trtllm_build_engine
from tools.extract_backend_parameters import extract
from trtllm_oci.repo.assemble import (
    AssembleError,
    RepoOptions,
    assemble_repository,
    carry_required_parameters,
)
from trtllm_oci.repo.interface import (
    BackendParameters,
    RequiredParameter,
    backend_parameters_for,
    load_backend_parameters,
)
from trtllm_oci.versions import get_version, supported_versions

GUIDED_DECODING_KEYS = ("guided_decoding_backend", "xgrammar_tokenizer_info_path")


def _engine_for(version: str, root):
    if get_version(version).engine_naming == "legacy":
        return write_legacy_engine(root, tp=1, max_batch_size=128)
    return write_trtllm_build_engine(root, version=version, tp=1)


def _tensorrt_llm_config(repo_root) -> mc.ModelConfig:
    text = (repo_root / "model_repository/tensorrt_llm/config.pbtxt").read_text()
    return text_format.Parse(text, mc.ModelConfig())


@pytest.mark.parametrize("version", supported_versions())
def test_assembled_config_carries_every_key_the_backend_reads_without_fallback(
    version, tmp_path, tokenizer_dir, python_models_dir
):
    facts = backend_parameters_for(version)
    assert facts.required, f"{version}: the backend always reads gpt_model_type without a fallback"
    manifest = assemble_repository(
        _engine_for(version, tmp_path / "engine"),
        tokenizer_dir,
        tmp_path / "repo",
        RepoOptions(trtllm_version=version),
        python_models_dir=python_models_dir,
    )
    parameters = _tensorrt_llm_config(manifest.root).parameters
    missing = sorted(set(facts.required) - set(parameters))
    assert not missing, f"{version}: tensorrt_llm lacks {missing}; the backend throws 'Cannot find parameter'"
    for key in facts.required:
        value = parameters[key].string_value
        assert "${" not in value, (version, key, value)
        if value == "":
            assert "" in facts.required[key].unset_values, (version, key)
    assert parameters["gpt_model_type"].string_value in ("inflight_fused_batching", "inflight_batching", "V1")


def test_1_2_1_guided_decoding_keys_are_present_and_unset(tmp_path, tokenizer_dir, python_models_dir):
    # model_instance_state.cc getGuidedDecodingConfigFromParams: an empty backend or path means "no guided
    # decoding"; an absent key fails the model load.
    manifest = assemble_repository(
        _engine_for("1.2.1", tmp_path / "engine"),
        tokenizer_dir,
        tmp_path / "repo",
        RepoOptions(trtllm_version="1.2.1"),
        python_models_dir=python_models_dir,
    )
    parameters = _tensorrt_llm_config(manifest.root).parameters
    for key in GUIDED_DECODING_KEYS:
        assert parameters[key].string_value == ""
    assert parameters["tokenizer_dir"].string_value == str(manifest.root / "tokenizer")


def test_reference_backend_config_also_carries_the_guided_decoding_keys(tmp_path, tokenizer_dir, python_models_dir):
    hf = tokenizer_dir
    (hf / "config.json").write_text("{}")
    manifest = assemble_repository(
        None,
        tokenizer_dir,
        tmp_path / "repo",
        RepoOptions(trtllm_version="1.2.1", backend="reference"),
        hf_model_dir=hf,
        python_models_dir=python_models_dir,
    )
    parameters = _tensorrt_llm_config(manifest.root).parameters
    assert all(parameters[key].string_value == "" for key in GUIDED_DECODING_KEYS)


def test_a_required_key_without_any_value_is_refused_naming_it():
    facts = BackendParameters(
        release_id="9.9.0",
        source={"repo": "example/backend", "ref": "v9.9.0"},
        required={"new_mandatory_key": RequiredParameter(type="std::string", where=["m.cc:1 f"])},
        required_when={},
        optional={},
    )
    with pytest.raises(AssembleError, match=r"'new_mandatory_key'.*m\.cc:1 f @ example/backend@v9\.9\.0"):
        carry_required_parameters(mc.ModelConfig(name="tensorrt_llm"), facts, "tensorrtllm")
    config = mc.ModelConfig(name="tensorrt_llm")
    carry_required_parameters(config, facts, "reference")  # never read by the C++ backend
    assert "new_mandatory_key" not in config.parameters


def test_kv_cache_reuse_defaults_to_the_backends_own_default(tmp_path, tokenizer_dir, python_models_dir):
    for version, expected in (("0.14.0", False), ("1.2.1", True)):
        assert backend_parameters_for(version).default_bool("enable_kv_cache_reuse") is expected
        manifest = assemble_repository(
            _engine_for(version, tmp_path / version / "engine"),
            tokenizer_dir,
            tmp_path / version / "repo",
            RepoOptions(trtllm_version=version),
            python_models_dir=python_models_dir,
        )
        # Absent: the backend's initializer applies (bool enableKVCacheReuse = <default>).
        assert "enable_kv_cache_reuse" not in _tensorrt_llm_config(manifest.root).parameters
    manifest = assemble_repository(
        _engine_for("1.2.1", tmp_path / "off" / "engine"),
        tokenizer_dir,
        tmp_path / "off" / "repo",
        RepoOptions(trtllm_version="1.2.1", enable_kv_cache_reuse=False),
        python_models_dir=python_models_dir,
    )
    assert _tensorrt_llm_config(manifest.root).parameters["enable_kv_cache_reuse"].string_value == "false"


def test_every_release_cites_its_source_commit():
    for release, facts in load_backend_parameters().items():
        assert facts.source["repo"] in ("triton-inference-server/tensorrtllm_backend", "NVIDIA/TensorRT-LLM")
        assert len(str(facts.source["commit"])) == 40, release
        assert facts.source["files"], release
    assert load_backend_parameters()["1.2.0"].source["repo"] == "NVIDIA/TensorRT-LLM"
    assert backend_parameters_for("1.2.1").release_id == "1.2.0"
    assert backend_parameters_for("0.18.2").release_id == "0.16.0"


# --- the extractor (tools/extract_backend_parameters.py) on small C++ sources ------------------------------

_SOURCE = r"""
// GetParameter<std::string>("commented_out") must not count
executor::X ModelInstanceState::helper()
{
    std::string backendStr = model_state_->GetParameter<std::string>("plain_required");
    if (backendStr.empty() || backendStr == "${plain_required}")
    {
        return {};
    }
    bool reuse = true;
    try
    {
        reuse = model_state_->GetParameter<bool>("with_fallback");
    }
    catch (std::exception const& e)
    {
        TLLM_LOG_WARNING("with_fallback is not specified");
    }
    try
    {
        auto x = model_state_->GetParameter<int32_t>("rethrown");
    }
    catch (std::exception const& e)
    {
        TLLM_THROW("rethrown is needed");
    }
    if (mode.isLookahead())
    {
        auto w = model_state_->GetParameter<uint32_t>("only_for_lookahead");
    }
    std::string fieldName = "through_variable";
    try
    {
        model_state_->GetParameter<float>(fieldName);
    }
    catch (std::exception const& e)
    {
    }
    return {};
}

void ModelInstanceState::guardedHelper()
{
    auto y = model_state_->GetParameter<int32_t>("read_in_guarded_helper");
}

ModelInstanceState::ModelInstanceState(ModelState* model_state)
    : model_state_(model_state)
{
    auto h = helper();
    try
    {
        guardedHelper();
    }
    catch (std::exception const& e)
    {
        TLLM_LOG_WARNING("skipped");
    }
}
"""


def test_extractor_classifies_reads_by_their_fallback():
    result = extract({"model_instance_state.cc": _SOURCE})
    assert set(result["required"]) == {"plain_required", "rethrown"}
    assert result["required"]["plain_required"]["unset_values"] == ["", "${plain_required}"]
    assert result["required"]["rethrown"]["unset_values"] == []
    assert result["required_when"]["only_for_lookahead"]["when"] == ["mode.isLookahead()"]
    assert set(result["optional"]) == {"with_fallback", "through_variable", "read_in_guarded_helper"}
    assert result["optional"]["with_fallback"]["default"] == "true"
    assert "commented_out" not in {**result["required"], **result["optional"]}


def test_extractor_counts_an_error_returning_catch_as_no_fallback():
    source = r"""
TRITONSERVER_Error* Create(ModelState* s)
{
    try
    {
        auto v = s->GetParameter<std::string>("needed");
    }
    catch (std::exception const& ex)
    {
        return TRITONSERVER_ErrorNew(TRITONSERVER_ERROR_INTERNAL, ex.what());
    }
    return nullptr;
}
"""
    assert set(extract({"libtensorrtllm.cc": source})["required"]) == {"needed"}


@pytest.mark.parametrize("version", supported_versions())
def test_static_batching_is_written_where_served_and_refused_where_not(
    version, tmp_path, tokenizer_dir, python_models_dir
):
    from packaging.version import Version

    from trtllm_oci.versions import load_version_table

    served = Version(version) <= Version(load_version_table().static_batching_until)
    options = RepoOptions(trtllm_version=version, gpt_model_type="V1")
    engine = _engine_for(version, tmp_path / "engine")
    if not served:
        with pytest.raises(AssembleError, match=r"V1 \(static batching\) is not served by TRT-LLM 1\.2\.1.*"
                                                r"Static batching type is deprecated.*inflight_fused_batching"):
            assemble_repository(engine, tokenizer_dir, tmp_path / "repo", options, python_models_dir=python_models_dir)
        assert not (tmp_path / "repo").exists()
        return
    manifest = assemble_repository(engine, tokenizer_dir, tmp_path / "repo", options, python_models_dir=python_models_dir)
    # 0.5.0 templates hard-code inflight_fused_batching; the option still reaches the config.
    assert _tensorrt_llm_config(manifest.root).parameters["gpt_model_type"].string_value == "V1"
