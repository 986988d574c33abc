"""tensorrt_llm_bls: preprocessing → tensorrt_llm → detokenization in one decoupled Python model.

Tensor interface of tensorrtllm_backend's tensorrt_llm_bls since 0.14, whose outputs include
``sequence_index`` (NVIDIA/TensorRT-LLM:triton_backend/all_models/inflight_batcher_llm/
tensorrt_llm_bls/config.pbtxt; triton-inference-server/tensorrtllm_backend:all_models/
inflight_batcher_llm/tensorrt_llm_bls/config.pbtxt@v0.19.0). The project's own implementation:
upstream's lib/decode.py and lib/triton_decoder.py are the reference for the tensor routing.

Per request it calls ``preprocessing``, then ``tensorrt_llm`` (``exec(decoupled=True)`` when this
model is decoupled, ``streaming`` from ``stream``), then turns tokens into text. Unlike upstream,
which sends each streamed chunk's tokens alone to ``postprocessing``, the text of a sequence comes
from ``postprocessing`` called with the sequence's whole token history and diffed by
``IncrementalDetokenizer``. So every streamed ``text_output`` is whole UTF-8 characters (a
character whose bytes are split across tokens waits for its last byte), no space is lost between
chunks, and the concatenation of the stream equals the non-streamed ``text_output``. Each step
decodes the whole history (as upstream's ``accumulate_tokens`` does): cost grows with the square of
the output length. When decoupled, each request runs on its own thread, so one instance serves
concurrent streams.

``accumulate_tokens=true``: each streamed ``text_output`` is the whole text so far (upstream's
meaning: the client replaces instead of appending). Parameters read: ``accumulate_tokens``,
``tensorrt_llm_model_name`` (default ``tensorrt_llm``); ``tensorrt_llm_draft_model_name`` and
``multimodal_encoders_name`` must be unset. One text_input per request; no speculative decoding,
no multimodal inputs; ``beam_width`` > 1 only without streaming. Text-level stop-word trimming is
left to ``tensorrt_llm``'s ``stop_words_list``.
"""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import triton_python_backend_utils as pb_utils
from incremental_detokenizer import IncrementalDetokenizer
from model_config_params import bool_parameter, string_parameter

INTERFACE_VERSION = "tensorrtllm_backend >= 0.14 / TensorRT-LLM triton_backend 1.x (text inputs)"
PREPROCESSING_MODEL = "preprocessing"
POSTPROCESSING_MODEL = "postprocessing"
DEFAULT_LLM_MODEL = "tensorrt_llm"
TEXT_OUTPUT = "text_output"
FINALIZE_GRACE_S = 30.0

# Routing of the ensemble's steps (NVIDIA/TensorRT-LLM:triton_backend/all_models/inflight_batcher_llm/
# ensemble/config.pbtxt), as upstream's triton_decoder.py does it.
BLS_TO_PREPROCESSING = {
    "text_input": "QUERY",
    "decoder_text_input": "DECODER_QUERY",
    "max_tokens": "REQUEST_OUTPUT_LEN",
    "bad_words": "BAD_WORDS_DICT",
    "stop_words": "STOP_WORDS_DICT",
    "embedding_bias_words": "EMBEDDING_BIAS_WORDS",
    "embedding_bias_weights": "EMBEDDING_BIAS_WEIGHTS",
    "end_id": "END_ID",
    "pad_id": "PAD_ID",
    "prompt_table_extra_id": "PROMPT_TABLE_EXTRA_ID",
}
PREPROCESSING_TO_LLM = {
    "INPUT_ID": "input_ids",
    "REQUEST_INPUT_LEN": "input_lengths",
    "REQUEST_OUTPUT_LEN": "request_output_len",
    "DECODER_INPUT_ID": "decoder_input_ids",
    "REQUEST_DECODER_INPUT_LEN": "decoder_input_lengths",
    "BAD_WORDS_IDS": "bad_words_list",
    "STOP_WORDS_IDS": "stop_words_list",
    "EMBEDDING_BIAS": "embedding_bias",
    "OUT_END_ID": "end_id",
    "OUT_PAD_ID": "pad_id",
}
BLS_TO_LLM = {
    "beam_width": "beam_width",
    "top_k": "runtime_top_k",
    "top_p": "runtime_top_p",
    "temperature": "temperature",
    "length_penalty": "len_penalty",
    "repetition_penalty": "repetition_penalty",
    "min_tokens": "min_tokens",
    "min_length": "min_length",  # <= 0.19 name
    "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
    "seed": "seed",
    "random_seed": "random_seed",  # <= 0.19 name
    "return_log_probs": "return_log_probs",
    "return_context_logits": "return_context_logits",
    "return_generation_logits": "return_generation_logits",
    "num_return_sequences": "num_return_sequences",
    "exclude_input_in_output": "exclude_input_in_output",
    "stream": "streaming",
    "prompt_embedding_table": "prompt_embedding_table",
    "prompt_vocab_size": "prompt_vocab_size",
    "lora_task_id": "lora_task_id",
    "lora_weights": "lora_weights",
    "lora_config": "lora_config",
    "return_perf_metrics": "return_perf_metrics",
    "return_num_input_tokens": "return_num_input_tokens",
    "return_num_output_tokens": "return_num_output_tokens",
    "guided_decoding_guide_type": "guided_decoding_guide_type",
    "guided_decoding_guide": "guided_decoding_guide",
}
MULTIMODAL_INPUTS = ("image_input", "image_bytes_input", "image_url_input", "video_bytes_input")


class BlsRequestError(ValueError):
    """The request cannot be served by this model; the message names the input and the fix."""


class TritonPythonModel:
    def initialize(self, args):
        self.model_config = json.loads(args["model_config"])
        self.decoupled = pb_utils.using_decoupled_model_transaction_policy(self.model_config)
        self.accumulate_tokens = bool_parameter(self.model_config, "accumulate_tokens", False)
        self.llm_model = string_parameter(self.model_config, "tensorrt_llm_model_name") or DEFAULT_LLM_MODEL
        for key in ("tensorrt_llm_draft_model_name", "multimodal_encoders_name"):
            value = string_parameter(self.model_config, key)
            if value is not None:
                raise pb_utils.TritonModelException(
                    f"tensorrt_llm_bls: parameter {key}={value!r} asks for speculative "
                    f"decoding or multimodal encoders, which this BLS does not implement; leave {key} unset"
                )
        outputs = {o["name"]: o for o in self.model_config.get("output", [])}
        if "sequence_index" not in outputs:
            raise pb_utils.TritonModelException(
                "tensorrt_llm_bls: this config has no 'sequence_index' output, so it is a tensorrtllm_backend "
                f"interface older than 0.14; this BLS implements {INTERFACE_VERSION}. Serve the ensemble, or "
                "assemble the repository for TRT-LLM >= 0.14"
            )
        self.text_dtype = pb_utils.triton_string_to_numpy(outputs[TEXT_OUTPUT]["data_type"])
        self.passthrough_outputs = {
            name: (pb_utils.triton_string_to_numpy(o["data_type"]), [int(d) for d in o.get("dims", [])])
            for name, o in outputs.items()
            if name != TEXT_OUTPUT
        }
        # Inputs the config reshapes to [] arrive without their [1] dim; tensorrt_llm wants it back.
        self.input_dims = {
            i["name"]: [int(d) for d in i.get("dims", [])]
            for i in self.model_config.get("input", [])
            if "reshape" in i
        }
        self.inflight: set[threading.Thread] = set()
        self.inflight_lock = threading.Lock()
        pb_utils.Logger.log_info(
            f"tensorrt_llm_bls: decoupled={self.decoupled}, accumulate_tokens={self.accumulate_tokens}, "
            f"llm={self.llm_model} (interface {INTERFACE_VERSION})"
        )

    def execute(self, requests):
        if self.decoupled:
            # Each request streams from its own thread and execute returns at once, so one instance serves
            # concurrent streams (upstream's BLS serves one request at a time per instance and asks for
            # bls_instance_count = the engine's max batch size instead).
            for request in requests:
                thread = threading.Thread(target=self._serve_decoupled, args=(request,), daemon=True)
                with self.inflight_lock:
                    self.inflight.add(thread)
                thread.start()
            return None
        responses = []
        for request in requests:
            collected: list = []
            try:
                self._serve(
                    request, lambda response, final, kept=collected: kept.append(response), lambda: False
                )
                responses.append(collected[-1])
            except Exception as error:  # noqa: BLE001 - reported to the client as its response
                responses.append(
                    pb_utils.InferenceResponse(error=pb_utils.TritonError(f"tensorrt_llm_bls: {error}"))
                )
        return responses

    def _serve_decoupled(self, request):
        sender = request.get_response_sender()

        def send(response, final):
            flags = pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL if final else 0
            if response is None:
                sender.send(flags=flags)
            else:
                sender.send(response, flags=flags)

        try:
            self._serve(request, send, is_cancelled=getattr(sender, "is_cancelled", lambda: False))
        except Exception as error:  # noqa: BLE001 - reported to the client as its response
            try:
                sender.send(
                    pb_utils.InferenceResponse(error=pb_utils.TritonError(f"tensorrt_llm_bls: {error}")),
                    flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL,
                )
            except Exception as send_error:  # noqa: BLE001 - e.g. the final flag was already sent
                pb_utils.Logger.log_error(f"tensorrt_llm_bls: could not report {error!r}: {send_error}")
        finally:
            with self.inflight_lock:
                self.inflight.discard(threading.current_thread())

    # -- one request ---------------------------------------------------------------------------------

    def _serve(self, request, send, is_cancelled):
        inputs = self._inputs(request)
        stream = bool(_scalar(inputs.get("stream"), False))
        if stream and not self.decoupled:
            # Same wording as the TensorRT-LLM backend (tensorrtllm_backend#626).
            raise BlsRequestError("Streaming is only supported if model is deployed using decoupled mode.")
        if stream and int(_scalar(inputs.get("beam_width"), 1)) > 1:
            raise BlsRequestError(
                f"beam_width={_scalar(inputs.get('beam_width'), 1)} with stream=true: beams are re-ranked while "
                "they grow, so their text cannot be streamed as appended chunks; set stream=false or beam_width=1"
            )
        llm_outputs = self._generate(inputs, self._preprocess(inputs))
        if not stream:
            pending = None
            for outputs in llm_outputs:
                if pending is not None:
                    send(pending, False)
                pending = self._response(self._texts(outputs), outputs)
            if pending is None:
                raise RuntimeError(f"{self.llm_model} ended the request without a response")
            send(pending, True)
            return
        detokenizers: dict[int, IncrementalDetokenizer] = {}
        for outputs in llm_outputs:
            if is_cancelled():
                # The client is gone: stop reading; nothing more can be delivered.
                break
            send(self._response([self._stream_text(outputs, detokenizers)], outputs), False)
        # A generation that ends inside a multi-byte character (max_tokens reached) still has bytes held
        # back; the non-streamed text has U+FFFD there, so the stream sends it too.
        for index in sorted(detokenizers):
            tail = detokenizers[index].finish()
            if tail:
                text = detokenizers[index].text if self.accumulate_tokens else tail
                send(self._response([text], {"sequence_index": np.array([[index]], np.int32)}), False)
        send(None, True)

    def _inputs(self, request) -> dict[str, np.ndarray]:
        inputs = {}
        for spec in self.model_config.get("input", []):
            tensor = pb_utils.get_input_tensor_by_name(request, spec["name"])
            if tensor is not None:
                inputs[spec["name"]] = tensor.as_numpy()
        for name in MULTIMODAL_INPUTS:
            if name in inputs:
                raise BlsRequestError(
                    f"input '{name}' (multimodal) is not supported by this BLS; send text_input only"
                )
        if int(_scalar(inputs.get("num_draft_tokens"), 0)) > 0 or bool(
            _scalar(inputs.get("use_draft_logits"), False)
        ):
            raise BlsRequestError(
                "num_draft_tokens/use_draft_logits ask for speculative decoding, which this BLS does not "
                "implement; leave them unset"
            )
        text = inputs.get("text_input")
        if text is None or text.size == 0:
            raise BlsRequestError("input 'text_input' is required")
        if text.shape[0] != 1:
            raise BlsRequestError(
                f"text_input has batch size {text.shape[0]}; send one text_input per request "
                "(the in-flight batcher batches requests)"
            )
        if "max_tokens" not in inputs or int(_scalar(inputs["max_tokens"], 0)) < 1:
            raise BlsRequestError("input 'max_tokens' must be a single value >= 1")
        return inputs

    def _preprocess(self, inputs) -> dict[str, np.ndarray]:
        tensors = [
            pb_utils.Tensor(pre, inputs[bls]) for bls, pre in BLS_TO_PREPROCESSING.items() if bls in inputs
        ]
        requested = list(PREPROCESSING_TO_LLM)
        if "prompt_table_extra_id" in inputs:
            requested.append("OUT_PROMPT_TABLE_EXTRA_IDS")
        response = pb_utils.InferenceRequest(
            model_name=PREPROCESSING_MODEL, inputs=tensors, requested_output_names=requested
        ).exec()
        if response.has_error():
            raise RuntimeError(f"{PREPROCESSING_MODEL}: {response.error().message()}")
        return {t.name(): t.as_numpy() for t in response.output_tensors()}

    def _generate(self, inputs, preprocessed):
        tensors = [
            pb_utils.Tensor(llm, preprocessed[pre])
            for pre, llm in PREPROCESSING_TO_LLM.items()
            if pre in preprocessed
        ]
        if "OUT_PROMPT_TABLE_EXTRA_IDS" in preprocessed:
            tensors.append(
                pb_utils.Tensor("prompt_table_extra_ids", preprocessed["OUT_PROMPT_TABLE_EXTRA_IDS"])
            )
        for bls, llm in BLS_TO_LLM.items():
            if bls in inputs:
                array = inputs[bls]
                if bls in self.input_dims and all(d > 0 for d in self.input_dims[bls]):
                    array = array.reshape([array.shape[0], *self.input_dims[bls]])
                tensors.append(pb_utils.Tensor(llm, array))
        requested = ["output_ids", "sequence_length", *self.passthrough_outputs]
        llm_request = pb_utils.InferenceRequest(
            model_name=self.llm_model, inputs=tensors, requested_output_names=requested
        )
        responses = llm_request.exec(decoupled=True) if self.decoupled else [llm_request.exec()]
        for response in responses:
            if response.has_error():
                raise RuntimeError(f"{self.llm_model}: {response.error().message()}")
            outputs = {t.name(): t.as_numpy() for t in response.output_tensors()}
            if "output_ids" in outputs:  # the decoupled stream ends with an empty, final-flag response
                yield outputs

    # -- text --------------------------------------------------------------------------------------

    def _detokenize(self, tokens: np.ndarray, lengths: np.ndarray) -> list[str]:
        """postprocessing on [1, beams, T] tokens and [1, beams] lengths: one text per beam."""
        response = pb_utils.InferenceRequest(
            model_name=POSTPROCESSING_MODEL,
            inputs=[
                pb_utils.Tensor("TOKENS_BATCH", tokens.astype(np.int32)),
                pb_utils.Tensor("SEQUENCE_LENGTH", lengths.astype(np.int32)),
            ],
            requested_output_names=["OUTPUT"],
        ).exec()
        if response.has_error():
            raise RuntimeError(f"{POSTPROCESSING_MODEL}: {response.error().message()}")
        texts = pb_utils.get_output_tensor_by_name(response, "OUTPUT").as_numpy().reshape(-1)
        return [t.decode("utf-8") if isinstance(t, bytes) else str(t) for t in texts]

    def _decode_history(self, tokens: list[int]) -> str:
        return self._detokenize(np.array([[tokens]], np.int32), np.array([[len(tokens)]], np.int32))[0]

    def _texts(self, outputs) -> list[str]:
        tokens = outputs["output_ids"]
        lengths = outputs["sequence_length"].reshape(1, -1)
        return self._detokenize(tokens.reshape(1, lengths.shape[1], -1), lengths)

    def _stream_text(self, outputs, detokenizers: dict[int, IncrementalDetokenizer]) -> str:
        index = int(_scalar(outputs.get("sequence_index"), 0))
        tokens = outputs["output_ids"].reshape(-1)
        # Streamed responses carry the new tokens of one beam; clip in case sequence_length counts more.
        count = min(int(_scalar(outputs["sequence_length"], tokens.size)), tokens.size)
        detokenizer = detokenizers.setdefault(index, IncrementalDetokenizer(self._decode_history))
        delta = detokenizer.push(tokens[:count].tolist())
        return detokenizer.text if self.accumulate_tokens else delta

    def _response(self, texts: list[str], outputs: dict[str, np.ndarray]):
        # text_output is postprocessing's OUTPUT as it comes, one string per beam (upstream lib/triton_decoder.py
        # _get_response); the other outputs are tensorrt_llm's, and one it did not return is left out, as
        # upstream's create_triton_tensors skips a None value.
        text = np.array([t.encode("utf-8") for t in texts], dtype=self.text_dtype)
        tensors = [pb_utils.Tensor(TEXT_OUTPUT, text)]
        for name, (dtype, _dims) in self.passthrough_outputs.items():
            array = outputs.get(name)
            if array is not None:
                tensors.append(pb_utils.Tensor(name, array.astype(dtype)))
        return pb_utils.InferenceResponse(output_tensors=tensors)

    def finalize(self):
        # Streams still running get a bounded grace period to finish sending before the stub exits.
        deadline = time.monotonic() + FINALIZE_GRACE_S
        with self.inflight_lock:
            threads = list(self.inflight)
        for thread in threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))


def _scalar(array, default):
    if array is None or array.size == 0:
        return default
    return array.reshape(-1)[0].item()
