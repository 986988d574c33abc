"""What a server must return for the harness's log-likelihood tasks, checked with one request first.

lm-eval's `local-completions` scores a continuation by sending prompt+continuation with `echo: true,
logprobs: 1, max_tokens: 1` and summing `choices[0].logprobs.token_logprobs[ctxlen:-1]` (lm_eval
models/openai_completions.py `parse_logprobs`): the server must give one logprob per prompt token, as OpenAI's
legacy completions do (the first one null). A server that echoes the prompt's text but returns logprobs for
the generated token only (trtllm-serve: tensorrt_llm/serve/postprocess_handlers.py
`completion_response_post_processor`) makes every such sum 0, a silent wrong score; this check refuses it.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from trtllm_oci.errors import InputError, ProcessError

PROBE_PROMPT = "The quick brown fox jumps over the lazy dog."


class PromptLogprobsMissingError(InputError):
    """The endpoint does not return the prompt's token logprobs with echo."""


def check_prompt_logprobs(completions_url: str, model: str, tasks: list[str], server: str,
                          timeout_s: float = 120) -> None:
    body = {"model": model, "prompt": PROBE_PROMPT, "max_tokens": 1, "temperature": 0, "echo": True, "logprobs": 1}
    request = urllib.request.Request(completions_url, data=json.dumps(body).encode("utf-8"),
                                     headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            payload = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", errors="replace")[:300]
        raise PromptLogprobsMissingError(
            f"{server} at {completions_url} refuses echo with logprobs ({exc.code}: {detail}); the log-likelihood "
            f"tasks {tasks} cannot be scored through it: keep generate_until tasks only for this server") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ProcessError(f"{server} at {completions_url} did not answer the logprobs check: {exc}") from None
    choice = (payload.get("choices") or [{}])[0]
    logprobs = choice.get("logprobs") or {}
    token_logprobs = logprobs.get("token_logprobs") or []
    prompt_tokens = int((payload.get("usage") or {}).get("prompt_tokens", 0))
    completion_tokens = int((payload.get("usage") or {}).get("completion_tokens", 1))
    if len(token_logprobs) != prompt_tokens + completion_tokens or not token_logprobs or token_logprobs[0] is not None:
        raise PromptLogprobsMissingError(
            f"{server} at {completions_url} answered echo+logprobs with {len(token_logprobs)} token logprob(s) for a "
            f"{prompt_tokens}-token prompt and {completion_tokens} generated token(s): it does not return the prompt's "
            f"log-probabilities (OpenAI's echo does, the first one null), so the log-likelihood tasks {tasks} would "
            "score 0 for every choice. Keep generate_until tasks only for this server, or evaluate on a server "
            "that returns prompt logprobs")
