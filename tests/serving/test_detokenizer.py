"""The postprocessing model's detokenizers, imported from the shipped model file with the real
triton_python_backend_utils of the installed Triton python backend."""

import importlib.util
import sys
from pathlib import Path

import pytest

from trtllm_oci.serving.triton_install import find_triton

MODELS = Path(__file__).resolve().parents[2] / "trtllm_oci/serving/models"
MODEL_FILE = MODELS / "postprocessing/model.py"
DETOKENIZER_FILE = MODELS / "tensorrt_llm_bls/incremental_detokenizer.py"


@pytest.fixture(scope="module")
def post():
    backend_python = find_triton(search_order=("wheel",)).backend_dir / "python"
    # The stub's sys.path: the backend's utils, and the model's version dir, which holds the shared modules.
    paths = [str(backend_python), str(MODELS)]
    sys.path[:0] = paths
    try:
        spec = importlib.util.spec_from_file_location("postprocessing_model", MODEL_FILE)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        for path in paths:
            sys.path.remove(path)


@pytest.fixture(scope="module")
def incremental():
    spec = importlib.util.spec_from_file_location("incremental_detokenizer", DETOKENIZER_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
