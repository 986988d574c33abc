from __future__ import annotations

import pytest
from tritonclient.grpc import model_config_pb2 as mc

from trtllm_oci.repo.interface import UnknownTrtllmVersionError, interface_for, load_interfaces


@pytest.mark.parametrize(
    ("version", "interface_id"),
    [
        ("0.5.0", "0.5.0"),
        ("0.6.1", "0.6.0"),
        ("0.7.1", "0.7.0"),
        ("0.11.0", "0.11.0"),
        ("0.12.0", "0.12.0"),
        ("0.14.0", "0.14.0"),
        ("0.18.2", "0.17.0"),
        ("1.0.0", "0.19.0"),
        ("1.2.0rc8", "1.2.0"),
        ("1.2.1", "1.2.0"),
    ],
)
def test_version_maps_to_newest_interface_not_newer(version, interface_id):
    assert interface_for(version).interface_id == interface_id


def test_too_old_version_is_refused_with_the_oldest_supported():
    with pytest.raises(UnknownTrtllmVersionError, match=r"'0\.4\.0' is older than .*'0\.5\.0'"):
        interface_for("0.4.0")


def test_malformed_version_is_refused():
    with pytest.raises(UnknownTrtllmVersionError, match=r"'latest' is not a version number"):
        interface_for("latest")


def test_every_interface_names_its_upstream_source_and_valid_types():
    for interface_id, interface in load_interfaces().items():
        assert interface.source["repo"] in (
            "triton-inference-server/tensorrtllm_backend",
            "NVIDIA/TensorRT-LLM",
        )
        assert "config.pbtxt" in interface.source["path"]
        for name, model in interface.models.items():
            for tensor in [*model.inputs, *model.outputs]:
                if not tensor.data_type.startswith("${"):
                    mc.DataType.Value(tensor.data_type)  # raises on a type the schema does not know
            names = [t.name for t in model.inputs]
            assert len(names) == len(set(names)), (interface_id, name)


def test_0_5_interface_facts():
    i = interface_for("0.5.0")
    ens = i.models["ensemble"]
    assert ens.max_batch_size == 128
    assert ens.input("max_tokens").data_type == "TYPE_UINT32"
    assert ens.input("end_id").data_type == "TYPE_UINT32"
    assert {"text_input", "max_tokens", "bad_words", "stop_words"} == set(ens.required_inputs)
    assert not i.has_bls
    assert i.models["tensorrt_llm"].parameters["gpt_model_type"] == "inflight_fused_batching"
    assert "tokenizer_type" in i.parameter_keys("preprocessing")


def test_0_12_interface_facts():
    i = interface_for("0.12.0")
    ens = i.models["ensemble"]
    assert set(ens.required_inputs) == {"text_input", "max_tokens"}
    assert ens.input("max_tokens").data_type == "TYPE_INT32"
    assert "min_length" in [t.name for t in ens.inputs]
    assert "min_tokens" not in [t.name for t in ens.inputs]
    assert i.models["tensorrt_llm"].backend == "${triton_backend}"


def test_1_2_interface_facts():
    i = interface_for("1.2.1")
    ens = i.models["ensemble"]
    names = [t.name for t in ens.inputs]
    assert {"min_tokens", "seed", "return_num_input_tokens", "return_num_output_tokens"} <= set(names)
    assert "min_length" not in names and "random_seed" not in names
    trt = i.models["tensorrt_llm"]
    assert trt.input("input_lengths").reshape == []
    assert trt.input("prompt_embedding_table").data_type == "${prompt_embedding_table_data_type}"
    assert "enable_trt_overlap" in trt.parameters
    routing = {s.model_name: s for s in ens.steps}
    assert routing["tensorrt_llm"].input_map["end_id"] == "_PREPROCESSOR_END_ID"
    assert routing["tensorrt_llm"].input_map["streaming"] == "stream"
    assert routing["postprocessing"].output_map == {"OUTPUT": "text_output"}
