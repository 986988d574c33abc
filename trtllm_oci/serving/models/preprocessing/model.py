"""Preprocessing (tokenization) for the TensorRT-LLM ensemble: the project's own implementation.

Implements the text-only tensor interface of tensorrtllm_backend's preprocessing model as of
INTERFACE_VERSION (NVIDIA/TensorRT-LLM:triton_backend/all_models/inflight_batcher_llm/
preprocessing/config.pbtxt; the same names as triton-inference-server/tensorrtllm_backend:
all_models/inflight_batcher_llm/preprocessing/config.pbtxt@v0.19.0). Multimodal inputs are
refused with a clear error.

Parameters read: ``tokenizer_dir`` (HF directory, required), ``add_special_tokens``
(default true). Unfilled ``${...}`` placeholders count as unset.
"""

from __future__ import annotations

import json

import numpy as np
import triton_python_backend_utils as pb_utils
from model_config_params import bool_parameter, load_tokenizer

INTERFACE_VERSION = "tensorrtllm_backend v0.19.0 / TensorRT-LLM triton_backend 1.x (text inputs)"
_MULTIMODAL_INPUTS = ("IMAGE_BYTES", "IMAGE_URL", "VIDEO_BYTES", "IMAGES")
_OUTPUTS = (
    "INPUT_ID", "REQUEST_INPUT_LEN", "DECODER_INPUT_ID", "REQUEST_DECODER_INPUT_LEN",
    "BAD_WORDS_IDS", "STOP_WORDS_IDS", "EMBEDDING_BIAS", "REQUEST_OUTPUT_LEN",
    "OUT_END_ID", "OUT_PAD_ID", "OUT_PROMPT_TABLE_EXTRA_IDS",
)


def to_word_list_format(word_lists, encode) -> np.ndarray:
    """Words per batch item → the backend's [batch, 2, L] INT32 form.

    Row 0 holds the concatenated token ids of all words (padded with 0), row 1 the cumulative
    end offset of each word (padded with -1); an empty list gives [batch, 2, 1] of (0, -1).
    Same layout as ``_to_word_list_format`` of upstream preprocessing/1/model.py@v0.19.0.
    """
    flat_ids, offsets = [], []
    for words in word_lists:
        item_ids: list[int] = []
        item_offsets: list[int] = []
        for word in words:
            if isinstance(word, bytes):
                word = word.decode("utf-8")
            if not word:
                continue
            ids = encode(word)
            if not ids:
                continue
            item_ids += ids
            item_offsets.append(len(item_ids))
        flat_ids.append(item_ids)
        offsets.append(item_offsets)
    pad_to = max([1] + [len(ids) for ids in flat_ids])
    result = np.zeros((len(flat_ids), 2, pad_to), dtype=np.int32)
    result[:, 1, :] = -1
    for i, (ids, offs) in enumerate(zip(flat_ids, offsets, strict=False)):
        result[i, 0, : len(ids)] = ids
        result[i, 1, : len(offs)] = offs
    return result


class TritonPythonModel:
    def initialize(self, args):
        model_config = json.loads(args["model_config"])
        tokenizer_dir, self.tokenizer = load_tokenizer(model_config)
        self.add_special_tokens = bool_parameter(model_config, "add_special_tokens", True)
        if self.tokenizer.eos_token_id is None:
            raise pb_utils.TritonModelException(
                f"tokenizer in {tokenizer_dir} has no eos token; set eos_token in its tokenizer_config.json"
            )
        self.end_id = int(self.tokenizer.eos_token_id)
        # Upstream falls back to eos when the tokenizer has no pad token (preprocessing/1/model.py@v0.19.0).
        self.pad_id = int(self.tokenizer.pad_token_id) if self.tokenizer.pad_token_id is not None else self.end_id
        # Each output in the dtype its config declares (0.5 declares REQUEST_OUTPUT_LEN UINT32, later INT32), as
        # upstream's model casts to the dtypes it reads from the config (preprocessing/1/model.py@v0.5.0).
        self.declared_outputs = {
            o["name"]: pb_utils.triton_string_to_numpy(o["data_type"]) for o in model_config.get("output", [])
        }
        self.embedding_bias_dtype = np.float32
        for config in model_config.get("input", []):
            if config["name"] == "EMBEDDING_BIAS_WEIGHTS":
                self.embedding_bias_dtype = pb_utils.triton_string_to_numpy(config["data_type"])
        pb_utils.Logger.log_info(
            f"preprocessing: tokenizer {tokenizer_dir} (end_id={self.end_id}, pad_id={self.pad_id}, "
            f"interface {INTERFACE_VERSION})"
        )

    def _encode_words(self, word: str) -> list[int]:
        return self.tokenizer.encode(word, add_special_tokens=False)

    def execute(self, requests):
        responses = []
        for request in requests:
            try:
                responses.append(pb_utils.InferenceResponse(output_tensors=self._process(request)))
            except Exception as error:  # noqa: BLE001 - returned to the client as the response error
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(f"preprocessing: {error}")))
        return responses

    def _input(self, request, name):
        tensor = pb_utils.get_input_tensor_by_name(request, name)
        return None if tensor is None else tensor.as_numpy()

    def _process(self, request):
        for name in _MULTIMODAL_INPUTS:
            if pb_utils.get_input_tensor_by_name(request, name) is not None:
                raise ValueError(f"input {name} (multimodal) is not supported by this preprocessing model")
        query = self._input(request, "QUERY")
        batch = query.shape[0]
        texts = [_text(row) for row in query.reshape(batch, -1)[:, 0]]
        encoded = [self.tokenizer.encode(t, add_special_tokens=self.add_special_tokens) for t in texts]
        if any(len(ids) == 0 for ids in encoded):
            raise ValueError("QUERY encodes to zero tokens; send a non-empty text_input")
        max_len = max(len(ids) for ids in encoded)
        input_id = np.full((batch, max_len), self.pad_id, dtype=np.int32)
        for i, ids in enumerate(encoded):
            input_id[i, : len(ids)] = ids
        input_len = np.array([[len(ids)] for ids in encoded], dtype=np.int32)

        decoder_query = self._input(request, "DECODER_QUERY")
        request_output_len = self._input(request, "REQUEST_OUTPUT_LEN").astype(np.int32).reshape(batch, -1)
        end_id = self._input(request, "END_ID")
        pad_id = self._input(request, "PAD_ID")
        end_id = np.full((batch, 1), self.end_id, np.int32) if end_id is None else end_id.astype(np.int32).reshape(batch, 1)
        pad_id = np.full((batch, 1), self.pad_id, np.int32) if pad_id is None else pad_id.astype(np.int32).reshape(batch, 1)
        if decoder_query is not None:
            dec = [self.tokenizer.encode(_text(r), add_special_tokens=self.add_special_tokens)
                   for r in decoder_query.reshape(batch, -1)[:, 0]]
            dec_len = max(1, max(len(d) for d in dec))
            decoder_input_id = np.full((batch, dec_len), self.pad_id, np.int32)
            for i, ids in enumerate(dec):
                decoder_input_id[i, : len(ids)] = ids
            decoder_input_len = np.array([[len(d)] for d in dec], np.int32)
        else:
            decoder_input_id = pad_id * np.ones((batch, 1), np.int32)
            decoder_input_len = np.ones((batch, 1), np.int32)

        bad_words = self._input(request, "BAD_WORDS_DICT")
        stop_words = self._input(request, "STOP_WORDS_DICT")
        # Absent inputs give [batch, 2, 0], as upstream does; present-but-empty give (0, -1) columns.
        bad = _word_list_tensor(bad_words, batch, self._encode_words)
        stop = _word_list_tensor(stop_words, batch, self._encode_words)
        bias = self._embedding_bias(
            self._input(request, "EMBEDDING_BIAS_WORDS"), self._input(request, "EMBEDDING_BIAS_WEIGHTS"), batch
        )
        outputs = {
            "INPUT_ID": input_id,
            "REQUEST_INPUT_LEN": input_len,
            "DECODER_INPUT_ID": decoder_input_id,
            "REQUEST_DECODER_INPUT_LEN": decoder_input_len,
            "BAD_WORDS_IDS": bad,
            "STOP_WORDS_IDS": stop,
            "EMBEDDING_BIAS": bias,
            "REQUEST_OUTPUT_LEN": request_output_len,
            "OUT_END_ID": end_id,
            "OUT_PAD_ID": pad_id,
        }
        extra = self._input(request, "PROMPT_TABLE_EXTRA_ID")
        if extra is not None:
            # Prompt-table extra ids only mark fake-prompt (multimodal) tokens, which text input never has.
            outputs["OUT_PROMPT_TABLE_EXTRA_IDS"] = np.zeros_like(input_id, dtype=np.uint64)
        return [pb_utils.Tensor(name, array.astype(self.declared_outputs[name]))
                for name, array in outputs.items() if name in self.declared_outputs]

    def _embedding_bias(self, words, weights, batch):
        if words is None or weights is None:
            return np.empty([batch, 0], dtype=self.embedding_bias_dtype)
        vocab = len(self.tokenizer)
        result = np.zeros((batch, vocab), dtype=self.embedding_bias_dtype)
        for i, (row_words, row_weights) in enumerate(zip(words.reshape(batch, -1), weights.reshape(batch, -1), strict=False)):
            if len(row_words) != len(row_weights):
                raise ValueError("embedding_bias_words and embedding_bias_weights must have the same length")
            for word, weight in zip(row_words, row_weights, strict=False):
                for token in self._encode_words(_text(word)):
                    result[i, token] += weight
        return result

    def finalize(self):
        self.tokenizer = None


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _word_list_tensor(array, batch, encode):
    if array is None:
        return np.empty((batch, 2, 0), dtype=np.int32)
    return to_word_list_format([[_text(w) for w in row] for row in array.reshape(batch, -1)], encode)
