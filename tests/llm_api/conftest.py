"""Facts of a TensorRT-LLM version as another version would state them (an option renamed upstream)."""

from __future__ import annotations

import pytest

from trtllm_oci.llm_api import facts as facts_module


@pytest.fixture
def renamed_option(monkeypatch):
    """Make 1.2.1's facts spell `enable_chunked_prefill` as `enable_chunked_context`, as a later release might."""
    real = facts_module.llm_api_facts("1.2.1")
    fields = dict(real.llm_args.fields)
    fields["enable_chunked_context"] = fields.pop("enable_chunked_prefill")
    renamed = real.model_copy(update={"llm_args": real.llm_args.model_copy(update={"fields": fields})})

    def fake(version: str):
        return renamed if version.removeprefix("v") == "1.2.1" else facts_module.llm_api_facts(version)

    for module in (
        "trtllm_oci.llm_api.options",
        "trtllm_oci.llm_api.serve_command",
        "trtllm_oci.llm_api.triton_repo",
    ):
        monkeypatch.setattr(f"{module}.llm_api_facts", fake)
    return renamed
