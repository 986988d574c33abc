"""Postprocessing (detokenization) for the TensorRT-LLM ensemble: the project's own implementation.

Tensor interface of INTERFACE_VERSION: TOKENS_BATCH INT32 [-1,-1] and SEQUENCE_LENGTH INT32 [-1]
in, OUTPUT STRING [-1] out (NVIDIA/TensorRT-LLM:triton_backend/all_models/inflight_batcher_llm/
postprocessing/config.pbtxt, unchanged since tensorrtllm_backend v0.7).
Parameters read: ``tokenizer_dir`` (required), ``skip_special_tokens`` (default true).

Streaming. In the ensemble every streamed tensorrt_llm response becomes a separate, anonymous
postprocessing request carrying only that step's new tokens: the HTTP generate endpoints pass no
request id to composing models, and with several instances consecutive chunks land in different
processes. So this model stays stateless, like upstream, and decodes each chunk *in context*:
``decode(anchor + chunk) - decode(anchor)`` with a fixed anchor token, which keeps the leading
space that SentencePiece-style decoders strip from a chunk decoded alone (the upstream model
drops those spaces between chunks). What no stateless decoder can do is join a multi-byte
character whose bytes are split across two chunks (byte-level BPE); such a fragment is emitted as
U+FFFD. Exact streaming text needs the whole token history, which only a component that sees the
whole stream has: the tensorrt_llm_bls model calls this model with a sequence's whole history and
diffs the texts (``IncrementalDetokenizer`` in tensorrt_llm_bls/incremental_detokenizer.py).
"""

from __future__ import annotations

import json

import numpy as np
import triton_python_backend_utils as pb_utils
from model_config_params import bool_parameter, load_tokenizer

INTERFACE_VERSION = "tensorrtllm_backend v0.19.0 / TensorRT-LLM triton_backend 1.x"


class ChunkDecoder:
    """Stateless decoding of one chunk of tokens in the context of a fixed anchor token."""

    def __init__(self, tokenizer, skip_special_tokens: bool):
        self.tokenizer = tokenizer
        self.skip_special_tokens = skip_special_tokens
        self.anchor = self._pick_anchor()
        self.anchor_text = self._decode([self.anchor]) if self.anchor is not None else ""

    def _decode(self, tokens) -> str:
        return self.tokenizer.decode(tokens, skip_special_tokens=self.skip_special_tokens)

    def _pick_anchor(self):
        # A plain, non-special token whose decoded text is stable; "a" exists in every vocabulary
        # this project serves (Llama, Mistral, Qwen, GPT-style byte-level BPE).
        ids = self.tokenizer.encode("a", add_special_tokens=False)
        return ids[-1] if ids else None

    def decode(self, tokens) -> str:
        tokens = [int(t) for t in tokens]
        if not tokens:
            return ""
        if self.anchor is None:
            return self._decode(tokens)
        text = self._decode([self.anchor] + tokens)
        if text.startswith(self.anchor_text):
            return text[len(self.anchor_text):]
        return self._decode(tokens)


class TritonPythonModel:
    def initialize(self, args):
        model_config = json.loads(args["model_config"])
        tokenizer_dir, tokenizer = load_tokenizer(model_config)
        skip = bool_parameter(model_config, "skip_special_tokens", True)
        self.decoder = ChunkDecoder(tokenizer, skip)
        output = pb_utils.get_output_config_by_name(model_config, "OUTPUT")
        self.output_dtype = pb_utils.triton_string_to_numpy(output["data_type"]) if output else np.object_
        pb_utils.Logger.log_info(f"postprocessing: tokenizer {tokenizer_dir} (interface {INTERFACE_VERSION})")

    def execute(self, requests):
        responses = []
        for request in requests:
            try:
                tokens = pb_utils.get_input_tensor_by_name(request, "TOKENS_BATCH").as_numpy()
                lengths = pb_utils.get_input_tensor_by_name(request, "SEQUENCE_LENGTH").as_numpy()
                # TOKENS_BATCH is [batch, beams, tokens] and SEQUENCE_LENGTH [batch, beams].
                batch = lengths.shape[0]
                lengths = lengths.reshape(batch, -1)
                tokens = tokens.reshape(batch, lengths.shape[1], tokens.shape[-1])
                texts = []
                for batch_tokens, batch_lengths in zip(tokens, lengths, strict=False):
                    for beam_tokens, length in zip(batch_tokens, batch_lengths, strict=False):
                        texts.append(self.decoder.decode(beam_tokens[: int(length)]).encode("utf-8"))
                output = np.array(texts, dtype=self.output_dtype).reshape(batch, -1)
                responses.append(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("OUTPUT", output)]))
            except Exception as error:  # noqa: BLE001
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(f"postprocessing: {error}")))
        return responses

    def finalize(self):
        self.decoder = None
