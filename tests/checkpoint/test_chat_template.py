"""Whether a tokenizer has a chat template, from the files transformers takes it from."""

from __future__ import annotations

import json

import pytest

from trtllm_oci.checkpoint.chat_template import has_chat_template
from trtllm_oci.cloud.invoke import generate_body


@pytest.mark.parametrize(("files", "expected"), [
    ({}, False),
    ({"tokenizer_config.json": json.dumps({"bos_token": "<s>"})}, False),
    ({"tokenizer_config.json": json.dumps({"chat_template": ""})}, False),
    ({"tokenizer_config.json": "{not json"}, False),
    ({"chat_template.jinja": "  \n"}, False),
    ({"tokenizer_config.json": json.dumps({"chat_template": "{{ m }}"})}, True),
    ({"chat_template.jinja": "{{ m }}"}, True),
    ({"chat_template.json": json.dumps({"chat_template": "{{ m }}"})}, True),
], ids=["none", "config-without", "empty-string", "bad-json", "blank-jinja", "config", "jinja", "json"])
def test_chat_template_is_read_where_transformers_reads_it(tmp_path, files, expected) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    assert has_chat_template(tmp_path) is expected


def test_an_openai_body_is_the_routes_own() -> None:
    chat = generate_body("hi", 4, protocol="openai", model="m")
    assert chat["messages"] == [{"role": "user", "content": "hi"}] and "prompt" not in chat
    completions = generate_body("hi", 4, protocol="openai", model="m", chat=False, stream=True)
    assert completions == {"model": "m", "prompt": "hi", "max_tokens": 4, "stream": True}
