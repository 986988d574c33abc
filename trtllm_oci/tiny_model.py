"""A tiny Llama-architecture Hugging Face model for smoke tests without GPUs or network.

The weights are random (seeded) and the byte-level BPE tokenizer is trained locally on an
embedded multilingual text, so every UTF-8 string round-trips through encode/decode and the
output of the model exercises multi-byte characters and spaces in detokenization.
"""

from __future__ import annotations

import json
from pathlib import Path

from trtllm_oci.errors import InputError

TINY_TRAINING_TEXT = """\
The quick brown fox jumps over the lazy dog. Machine learning is the study of algorithms
that improve through experience. What is ML? A model maps inputs to outputs.
Triton Inference Server serves models over HTTP and gRPC. TensorRT-LLM builds engines.
Large language models generate text one token at a time, streaming each token to the client.
Café, naïve, résumé, jalapeño, Straße, über, façade, smörgåsbord.
日本語のテキストも含まれています。東京は日本の首都です。
中文文本：机器学习是人工智能的一个分支。
Русский текст: машинное обучение — это интересно.
Ελληνικά: η μηχανική μάθηση. עברית: למידת מכונה. العربية: تعلم الآلة.
Emoji: 🚀 🤖 ✨ 👍🏽 🇯🇵 — and symbols: €, £, ¥, ©, ®, ™, ±, ∞, √, ≈.
def generate(prompt: str, max_tokens: int = 16) -> str:
    return model(prompt)[:max_tokens]
1234567890 0.5 3.14159 2026-11-21 {"key": "value"} [1, 2, 3] <tag>text</tag>
"""

BOS_TOKEN = "<s>"
EOS_TOKEN = "</s>"
PAD_TOKEN = "<pad>"
UNK_TOKEN = "<unk>"

# A minimal chat template for OpenAI-style chat smoke tests: one "role: content" line per message after BOS,
# then "assistant:" when a reply is wanted. Not any real model's format.
TINY_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}"
)


def make_tiny_llama(
    out_dir: Path,
    seed: int = 0,
    vocab_size: int = 512,
    hidden: int = 64,
    layers: int = 2,
    heads: int = 4,
    kv_heads: int = 2,
    intermediate: int = 128,
    max_position_embeddings: int = 512,
    chat_template: str | None = None,
) -> Path:
    """Write a tiny random-weight LlamaForCausalLM plus a locally trained fast tokenizer.

    The directory is loadable by ``AutoTokenizer.from_pretrained(out_dir)`` and
    ``AutoModelForCausalLM.from_pretrained(out_dir)``. Same arguments give the same files.
    ``chat_template`` (e.g. ``TINY_CHAT_TEMPLATE``) is saved with the tokenizer; without it the
    tokenizer has none, as base models often do. Returns ``out_dir``.
    """
    if vocab_size < 300:
        raise InputError(
            f"vocab_size={vocab_size} is too small: a byte-level BPE needs 256 byte tokens plus "
            "4 special tokens and some merges; use vocab_size >= 300"
        )
    if hidden % heads != 0 or heads % kv_heads != 0:
        raise InputError(
            f"hidden={hidden}, heads={heads}, kv_heads={kv_heads}: hidden must be divisible by "
            "heads and heads by kv_heads"
        )
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = _train_tokenizer(vocab_size)
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    tokenizer.save_pretrained(out_dir)

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=max_position_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
        dtype="float32",
    )
    model = LlamaForCausalLM(config)
    model.eval()
    model.save_pretrained(out_dir, safe_serialization=True)
    return out_dir


def _train_tokenizer(vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = [UNK_TOKEN, BOS_TOKEN, EOS_TOKEN, PAD_TOKEN]
    backend = Tokenizer(models.BPE(unk_token=None, byte_fallback=False))
    # Byte-level pre-tokenization with an initial alphabet of all 256 bytes makes every UTF-8
    # string encodable, and splits multi-byte characters across tokens as real LLM vocabularies do.
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(TINY_TRAINING_TEXT.splitlines(), trainer=trainer)
    bos_id = backend.token_to_id(BOS_TOKEN)
    backend.post_processor = processors.TemplateProcessing(
        single=f"{BOS_TOKEN} $A",
        pair=f"{BOS_TOKEN} $A {BOS_TOKEN} $B",
        special_tokens=[(BOS_TOKEN, bos_id)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        unk_token=UNK_TOKEN,
        clean_up_tokenization_spaces=False,
    )


def describe(model_dir: Path) -> dict:
    """Return the few facts of a tiny model a test needs (vocab size, special token ids)."""
    config = json.loads((Path(model_dir) / "config.json").read_text())
    return {
        "vocab_size": config["vocab_size"],
        "bos_token_id": config["bos_token_id"],
        "eos_token_id": config["eos_token_id"],
        "pad_token_id": config["pad_token_id"],
    }
