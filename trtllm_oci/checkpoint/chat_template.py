"""Whether a checkpoint's tokenizer has a chat template, read from its small files as transformers reads them.

trtllm-serve formats a /v1/chat/completions request with the tokenizer's template (tensorrt_llm/serve/
openai_server.py@0c8de69a `openai_chat` -> `apply_chat_template`); without one transformers raises and the
server answers 400 to every chat request, so a release that serves or benchmarks chat checks this first.
transformers (>= 4.43) takes the template from chat_template.jinja, chat_template.json or tokenizer_config.json's
`chat_template` (tokenization_utils_base.py `PreTrainedTokenizerBase.from_pretrained`).
"""

from __future__ import annotations

import json
from pathlib import Path

TOKENIZER_CONFIG = "tokenizer_config.json"
CHAT_TEMPLATE_JINJA = "chat_template.jinja"
CHAT_TEMPLATE_JSON = "chat_template.json"
CHAT_TEMPLATE_FILES = (CHAT_TEMPLATE_JINJA, CHAT_TEMPLATE_JSON, TOKENIZER_CONFIG)


def _template_in(path: Path) -> bool:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and bool(data.get("chat_template"))


def has_chat_template(directory: Path) -> bool:
    """True when the tokenizer files in `directory` carry a chat template (a non-empty one)."""
    jinja = directory / CHAT_TEMPLATE_JINJA
    if jinja.is_file() and jinja.read_text(encoding="utf-8", errors="replace").strip():
        return True
    return any(_template_in(directory / name) for name in (CHAT_TEMPLATE_JSON, TOKENIZER_CONFIG))
