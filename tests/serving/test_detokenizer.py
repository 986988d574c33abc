"""The postprocessing model's detokenizers, imported from the shipped model file with the real
triton_python_backend_utils of the installed Triton python backend."""

from pathlib import Path

import pytest

from tests.serving.conftest import load_model_module

MODELS = Path(__file__).resolve().parents[2] / "trtllm_oci/serving/models"
MODEL_FILE = MODELS / "postprocessing/model.py"
DETOKENIZER_FILE = MODELS / "tensorrt_llm_bls/incremental_detokenizer.py"


@pytest.fixture(scope="module")
def post():
    # The stub's sys.path also holds the model's version dir, where the shared modules land.
    return load_model_module(MODEL_FILE, "postprocessing_model", MODELS)


@pytest.fixture(scope="module")
def incremental():
    return load_model_module(DETOKENIZER_FILE, "incremental_detokenizer")


TEXT = "Héllo wörld 日本語 🚀 done. Straße über 👍🏽!"


def test_incremental_deltas_rebuild_the_text_token_by_token(incremental, tiny_tokenizer):
    ids = tiny_tokenizer.encode(TEXT, add_special_tokens=False)
    # The test is only meaningful if some character really is split across tokens.
    assert any("\ufffd" in tiny_tokenizer.decode([i]) for i in ids)
    detok = incremental.IncrementalDetokenizer(lambda t: tiny_tokenizer.decode(t, skip_special_tokens=True))
    deltas = [detok.push([i]) for i in ids]
    deltas.append(detok.finish())
    assert all("\ufffd" not in d for d in deltas)
    assert "".join(deltas) == TEXT
    assert sum(1 for d in deltas if d) > 5


def test_incremental_flushes_a_truly_incomplete_tail_on_finish(incremental, tiny_tokenizer):
    ids = tiny_tokenizer.encode("ab 🚀", add_special_tokens=False)
    detok = incremental.IncrementalDetokenizer(lambda t: tiny_tokenizer.decode(t))
    head = detok.push(ids[:-1])
    assert "\ufffd" not in head and head.startswith("ab")
    assert detok.finish() == tiny_tokenizer.decode(ids[:-1])[len(head):]


def test_chunk_decoder_keeps_spaces_between_chunks(post, tiny_tokenizer):
    decoder = post.ChunkDecoder(tiny_tokenizer, skip_special_tokens=True)
    ids = tiny_tokenizer.encode("the quick brown fox jumps", add_special_tokens=False)
    assert "".join(decoder.decode([i]) for i in ids) == "the quick brown fox jumps"
    assert decoder.decode([]) == ""


def test_chunk_decoder_skips_special_tokens(post, tiny_tokenizer):
    decoder = post.ChunkDecoder(tiny_tokenizer, skip_special_tokens=True)
    ids = tiny_tokenizer.encode("What is ML?") + [tiny_tokenizer.eos_token_id]
    assert decoder.decode(ids) == "What is ML?"
