"""Postprocessing (detokenization) for the TensorRT-LLM ensemble: the project's own implementation.

Tensor interface: whatever the assembled config declares, as upstream's model of that version does it
(triton-inference-server/tensorrtllm_backend:all_models/inflight_batcher_llm/postprocessing/1/model.py at
v0.5.0..v0.19.0; NVIDIA/TensorRT-LLM:triton_backend/all_models/inflight_batcher_llm/postprocessing for 1.x):

* ``OUTPUT`` is one string per (batch item, beam), flat and 1-D, like upstream's
  ``np.array(outputs)`` of every version; clients read ``text_output[0].decode()``
  (inflight_batcher_llm/client/end_to_end_grpc_client.py).
* ``SEQUENCE_LENGTH`` (0.6 on) bounds each beam; without it (0.5) every token of TOKENS_BATCH is decoded.
* 0.6–0.13 declare ``OUT_CUM_LOG_PROBS``, ``OUT_OUTPUT_LOG_PROBS``, ``OUT_CONTEXT_LOGITS``,
  ``OUT_GENERATION_LOGITS`` (0.8 on) and ``OUT_BATCH_INDEX`` (0.12 on): each passes its input through, or is
  upstream's zero default (``[[0.0]]``, ``[[[0.0]]]``, ``[[[0.0]]]``, ``[[[[0.0]]]]``, ``[[0]]``) when the
  input is absent.

Parameters read: ``tokenizer_dir`` (required), ``skip_special_tokens`` (default true, as upstream from 0.7;
0.5 and 0.6 have no such key and decode special tokens too, so an absent key means false).

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
        declared = "skip_special_tokens" in model_config.get("parameters", {})
        skip = bool_parameter(model_config, "skip_special_tokens", True) if declared else False
        self.decoder = ChunkDecoder(tokenizer, skip)
        output = pb_utils.get_output_config_by_name(model_config, "OUTPUT")
        self.output_dtype = pb_utils.triton_string_to_numpy(output["data_type"]) if output else np.object_
        self.passthrough = {
            o["name"]: (
                o["name"].removeprefix("OUT_"),
                pb_utils.triton_string_to_numpy(o["data_type"]),
                [1] * (1 + len(o.get("dims", []))),
            )
            for o in model_config.get("output", [])
            if o["name"].startswith("OUT_")
        }
        pb_utils.Logger.log_info(
            f"postprocessing: tokenizer {tokenizer_dir}, skip_special_tokens={skip}, "
            f"pass-through outputs {sorted(self.passthrough)}"
        )

    def execute(self, requests):
        responses = []
        for request in requests:
            try:
                responses.append(pb_utils.InferenceResponse(output_tensors=self._process(request)))
            except Exception as error:  # noqa: BLE001
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(f"postprocessing: {error}")))
        return responses

    def _process(self, request):
        tokens = pb_utils.get_input_tensor_by_name(request, "TOKENS_BATCH").as_numpy()
        lengths_tensor = pb_utils.get_input_tensor_by_name(request, "SEQUENCE_LENGTH")
        # TOKENS_BATCH is [batch, beams, tokens] and SEQUENCE_LENGTH [batch, beams].
        if tokens.ndim == 2:  # one beam without its axis
            tokens = tokens[:, np.newaxis, :]
        if lengths_tensor is None:
            lengths = np.full(tokens.shape[:2], tokens.shape[-1], dtype=np.int32)
        else:
            lengths = lengths_tensor.as_numpy().reshape(tokens.shape[:2])
        texts = [
            self.decoder.decode(beam_tokens[: int(length)]).encode("utf-8")
            for batch_tokens, batch_lengths in zip(tokens, lengths, strict=True)
            for beam_tokens, length in zip(batch_tokens, batch_lengths, strict=True)
        ]
        outputs = [pb_utils.Tensor("OUTPUT", np.array(texts, dtype=self.output_dtype))]
        for name, (source, dtype, default_shape) in self.passthrough.items():
            given = pb_utils.get_input_tensor_by_name(request, source)
            array = given.as_numpy() if given is not None else np.zeros(default_shape, dtype=dtype)
            outputs.append(pb_utils.Tensor(name, array.astype(dtype)))
        return outputs

    def finalize(self):
        self.decoder = None
