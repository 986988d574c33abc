"""The `release` form in the Prefect UI, asserted on the schema the UI builds it from (parameter_schema, as a
deployment stores it); tools/ui_form_screenshot.py renders the page itself with headless Chromium.

What the UIs understand (read in Prefect 3.8.8's bundles): v1 (prefect-ui-library) renders `anyOf` as a
choice and shows a JSON editor for `oneOf`; both render `enum` as a select; an optional scalar's
anyOf [X, null] becomes a type toggle reading 'Property is type "None"'.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from trtllm_oci.versions import supported_versions


def _schema() -> dict[str, Any]:
    from prefect.utilities.callables import parameter_schema

    from trtllm_oci.flows.release import release

    return parameter_schema(release).model_dump_for_openapi()


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    return schema["definitions"][ref.rsplit("/", 1)[1]] if ref else node


def test_target_is_a_choice_of_kinds_that_opens_their_fields() -> None:
    schema = _schema()
    target = schema["definitions"]["ReleaseSpec"]["properties"]["target"]
    assert "oneOf" not in target and "discriminator" not in target
    kinds = [_resolve(schema, option) for option in target["anyOf"]]
    assert [k["properties"]["kind"]["enum"] for k in kinds] == [["local"], ["oci"]]
    assert all(k["title"].startswith(("local:", "oci:")) for k in kinds)
    assert {"region", "compartment_id", "project_id", "shape"} <= set(kinds[1]["required"])


def test_versions_and_shapes_are_selects_from_their_tables(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from trtllm_oci.shapes import load_catalog

    schema = _schema()
    assert schema["definitions"]["ReleaseSpec"]["properties"]["trtllm_version"]["enum"] == supported_versions()
    names = load_catalog().names()
    assert schema["definitions"]["OciTarget"]["properties"]["shape"]["enum"] == names
    # Optional ("omit on a machine without GPUs"): the select sits beside a None choice, so a run_deployment
    # that sends the spec's None validates.
    gpu_shape = schema["definitions"]["LocalTarget"]["properties"]["gpu_shape"]["anyOf"]
    assert gpu_shape == [{"type": "string", "enum": names}, {"type": "null"}]
    # Another catalog (TRTLLM_OCI_SHAPES) gives another select: the enum is read when the schema is made.
    catalog = yaml.safe_dump({"gpus": {"B200": {"memory_gib": 178, "memory_bandwidth_gbs": 8000,
                                                "compute_capability": "10.0", "fp16_tflops": 2250}},
                              "shapes": {"BM.GPU.B200.8": {"gpu": "B200", "gpu_count": 8, "price_per_hour_usd": 1,
                                                           "price_source": "test", "price_date": "2026-12-01"}}})
    (tmp_path / "shapes.yaml").write_text(catalog)
    monkeypatch.setenv("TRTLLM_OCI_SHAPES", str(tmp_path / "shapes.yaml"))
    assert _schema()["definitions"]["OciTarget"]["properties"]["shape"]["enum"] == ["BM.GPU.B200.8"]


def test_no_optional_number_or_free_text_shows_a_none_toggle() -> None:
    schema = _schema()
    toggles = []
    for model in ("ReleaseSpec", "ModelSource", "LocalTarget", "OciTarget", "ServingSpec", "BenchmarkSpec",
                  "EngineCacheSpec"):
        for name, field in schema["definitions"][model]["properties"].items():
            options = field.get("anyOf", [])
            if {"type": "null"} in options and any(o.get("type") in ("string", "integer", "number")
                                                   and "enum" not in o for o in options):
                toggles.append(f"{model}.{name}")
    assert toggles == []
    serving = schema["definitions"]["ServingSpec"]["properties"]
    assert serving["triton_max_batch_size"]["type"] == "integer" and "default" not in serving["triton_max_batch_size"]


def test_a_run_from_the_form_with_optional_fields_left_empty_or_null_validates() -> None:
    from prefect.utilities.schema_tools.validation import validate

    schema = _schema()
    # What the UI sends with the optional inputs left empty (omitted), and what run_deployment sends
    # (spec.model_dump(mode="json"), nulls included): the server validates flow runs with this function.
    for spec in ({"model": {"local_dir": "/models/tiny"}},
                 {"model": {"local_dir": "/models/tiny", "hf_repo": None}, "name": None,
                  "serving": {"triton_max_batch_size": None, "max_tokens_in_paged_kv_cache": None},
                  "target": {"kind": "local", "gpu_shape": None}}):
        assert validate({"spec": spec}, schema, raise_on_error=True) == []
    with pytest.raises(Exception, match="shape"):
        validate({"spec": {"model": {"local_dir": "/m"}, "target": {"kind": "local", "gpu_shape": "VM.GPU.A11.1"}}},
                 schema, raise_on_error=True)
