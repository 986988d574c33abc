"""Task sets the quality-gate tests write: lm-eval task YAMLs plus their JSONL data (TEST CODE).

The perplexity task is lm-eval's wikitext pattern (`output_type: loglikelihood_rolling`, the text as the
target, word/byte perplexity and bits per byte: lm_eval/tasks/wikitext/wikitext.yaml) on fixed sentences.
The exact-match task is `generate_until` with greedy decoding; its answers are what the source model itself
says (the tiny model has random weights, so no external answer key means anything for it): the source scores
1.0 by construction, and a quantization keeps exact match exactly as far as it keeps the source's answers.
"""

from __future__ import annotations

import json
from pathlib import Path

PPL_TEXTS = (
    "The quick brown fox jumps over the lazy dog.",
    "Machine learning is the study of algorithms that improve through experience.",
    "Large language models generate text one token at a time, streaming each token to the client.",
    "Triton Inference Server serves models over HTTP and gRPC.",
)
QA_PROMPTS = ("The quick brown", "Machine learning is", "Large language models", "Triton Inference Server",
              "def generate(", "A model maps", "What is ML?", "Emoji:")
ANSWER_TOKENS = 3
STOP = "\n"

PPL_YAML = """\
task: tiny_ppl
dataset_path: json
dataset_kwargs:
  data_files:
    test: ppl.jsonl
test_split: test
output_type: loglikelihood_rolling
doc_to_text: ""
doc_to_target: "{{text}}"
metric_list:
  - metric: word_perplexity
  - metric: byte_perplexity
  - metric: bits_per_byte
"""

QA_YAML = f"""\
task: tiny_qa
dataset_path: json
dataset_kwargs:
  data_files:
    test: qa.jsonl
test_split: test
output_type: generate_until
doc_to_text: "{{{{prompt}}}}"
doc_to_target: "{{{{answer}}}}"
generation_kwargs:
  until: [{json.dumps(STOP)}]
  max_gen_toks: {ANSWER_TOKENS}
  do_sample: false
  temperature: 0.0
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
"""


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")


def write_task_set(root: Path, answers: dict[str, str] | None = None) -> Path:
    """The two tasks in `root`; `answers` maps each QA prompt to its expected text (placeholders if None)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "tiny_ppl.yaml").write_text(PPL_YAML, encoding="utf-8")
    (root / "tiny_qa.yaml").write_text(QA_YAML, encoding="utf-8")
    write_jsonl(root / "ppl.jsonl", [{"text": t} for t in PPL_TEXTS])
    answers = answers or {p: "?" for p in QA_PROMPTS}
    write_jsonl(root / "qa.jsonl", [{"prompt": p, "answer": answers[p]} for p in QA_PROMPTS])
    return root


def greedy_answers(base_url: str, model: str, tokenizer_dir: Path) -> dict[str, str]:
    """Each QA prompt's answer as the served model gives it to lm-eval's local-completions: the prompt's token
    ids without BOS (TemplateAPI.tok_encode, add_special_tokens=False), greedy, `until` and EOS as stops."""
    import httpx
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    answers = {}
    for prompt in QA_PROMPTS:
        ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        body = {"model": model, "prompt": [ids], "max_tokens": ANSWER_TOKENS, "temperature": 0,
                "stop": [STOP, tokenizer.eos_token], "seed": 1234}
        response = httpx.post(f"{base_url}/v1/completions", json=body, timeout=120)
        response.raise_for_status()
        answers[prompt] = response.json()["choices"][0]["text"]
    return answers
