"""CPU reference backend (not TensorRT-LLM; for smoke tests without NVIDIA GPUs).

A Triton Python-backend model with the tensor interface of the ``tensorrt_llm`` model of
tensorrtllm_backend (NVIDIA/TensorRT-LLM:triton_backend/all_models/inflight_batcher_llm/
tensorrt_llm/config.pbtxt; v0.19.0 names ``min_length``/``random_seed`` are accepted too) that
runs a Hugging Face causal LM from the ``model_dir`` parameter with PyTorch on CPU. It lets the
whole ensemble (preprocessing → tensorrt_llm → postprocessing) and its HTTP/gRPC clients run
on a machine without GPUs. It is never a performance reference.

Behaviour mirrors the TensorRT-LLM executor where the ensemble can observe it:
* greedy decoding unless ``runtime_top_k`` > 1 or 0 < ``runtime_top_p`` < 1 (then sampling with
  ``temperature``, ``seed``); ``min_tokens`` suppresses ``end_id``; ``end_id`` ends the sequence
  and is not counted in ``sequence_length``; ``stop_words_list`` ends it after a stop sequence
  (kept in the output); ``bad_words_list`` bans the token completing a bad sequence;
* ``output_ids`` is [1, beams=1, tokens] per response; ``exclude_input_in_output``
  (request input, else the model parameter, default false) drops the prompt;
* decoupled mode with ``streaming`` true sends one response per generated token carrying only
  that token, then an empty final flag; without ``streaming`` one response with all tokens;
  ``streaming`` in a non-decoupled model is the same error TensorRT-LLM gives.

Model parameters read: ``model_dir`` (HF directory, required), ``exclude_input_in_output``,
``reference_backend`` (informational label), ``max_seq_len`` (optional cap, default the HF
config's max_position_embeddings).
"""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import triton_python_backend_utils as pb_utils
from model_config_params import bool_parameter, string_parameter

LABEL = "CPU reference backend (not TensorRT-LLM; for smoke tests without NVIDIA GPUs)"

# Input names accepted per concept: newest name first, older (v0.19.0) name second.
_MIN_TOKENS_INPUTS = ("min_tokens", "min_length")
_SEED_INPUTS = ("seed", "random_seed")
# Inputs whose presence asks for a feature this backend does not implement: refusing them is
# clearer than silently ignoring a LoRA or draft model.
_UNSUPPORTED_INPUTS = (
    "draft_input_ids", "draft_logits", "encoder_input_features", "prompt_embedding_table",
    "lora_weights", "lora_config", "lora_task_id", "guided_decoding_guide", "context_phase_params",
)


def _scalar(request, name: str, default=None):
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    if tensor is None:
        return default
    array = tensor.as_numpy()
    if array.size == 0:
        return default
    return array.reshape(-1)[0].item()


def _first_scalar(request, names, default=None):
    for name in names:
        value = _scalar(request, name)
        if value is not None:
            return value
    return default


def _word_list(request, name: str) -> list[list[int]]:
    """Decode the [2, L] INT32 word-list form: row 0 flat ids, row 1 cumulative end offsets
    padded with -1 (upstream preprocessing `_to_word_list_format`)."""
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    if tensor is None:
        return []
    array = tensor.as_numpy()
    if array.size == 0:
        return []
    array = array.reshape(-1, 2, array.shape[-1])[0]
    flat, offsets = array[0].tolist(), array[1].tolist()
    words, start = [], 0
    for end in offsets:
        if end < 0:
            break
        if end > start:
            words.append(flat[start:end])
        start = end
    return words


class TritonPythonModel:
    def initialize(self, args):
        import torch
        from transformers import AutoModelForCausalLM

        self.torch = torch
        self.model_config = json.loads(args["model_config"])
        self.model_name = args.get("model_name", "tensorrt_llm")
        model_dir = string_parameter(self.model_config, "model_dir")
        if model_dir is None:
            raise pb_utils.TritonModelException(
                f"{LABEL}: parameter 'model_dir' is not set; point it at a Hugging Face model directory"
            )
        self.decoupled = pb_utils.using_decoupled_model_transaction_policy(self.model_config)
        self.default_exclude_input = bool_parameter(self.model_config, "exclude_input_in_output", False)
        self.declared_outputs = {o["name"]: o for o in self.model_config.get("output", [])}
        torch.set_num_threads(max(1, min(4, torch.get_num_threads())))
        self.model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32)
        self.model.eval()
        config = self.model.config
        self.max_seq_len = int(string_parameter(self.model_config, "max_seq_len") or getattr(config, "max_position_embeddings", 2048))
        self.default_end_id = config.eos_token_id if isinstance(config.eos_token_id, int) else None
        self.lock = threading.Lock()
        pb_utils.Logger.log_info(
            f"[{self.model_name}] {LABEL}: serving {model_dir} "
            f"({type(self.model).__name__}, decoupled={self.decoupled})"
        )
        print(f"[{self.model_name}] {LABEL}: loaded {model_dir}", flush=True)

    def execute(self, requests):
        responses = []
        for request in requests:
            if self.decoupled:
                sender = request.get_response_sender()
                try:
                    self._generate(request, sender)
                except Exception as error:  # noqa: BLE001 - reported to the client as its response
                    sender.send(
                        pb_utils.InferenceResponse(error=pb_utils.TritonError(f"{LABEL}: {error}")),
                        flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL,
                    )
            else:
                try:
                    responses.append(self._generate(request, None))
                except Exception as error:  # noqa: BLE001
                    responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(f"{LABEL}: {error}")))
        return None if self.decoupled else responses

    def _generate(self, request, sender):
        torch = self.torch
        arrival_ns = time.time_ns()
        for name in _UNSUPPORTED_INPUTS:
            if pb_utils.get_input_tensor_by_name(request, name) is not None:
                raise ValueError(f"input '{name}' is not supported by the reference backend")
        streaming = bool(_scalar(request, "streaming", False))
        if streaming and not self.decoupled:
            # Same condition and wording as the TensorRT-LLM backend (tensorrtllm_backend#626).
            raise ValueError("Streaming is only supported if model is deployed using decoupled mode.")
        beam_width = int(_scalar(request, "beam_width", 1) or 1)
        num_return = int(_scalar(request, "num_return_sequences", 1) or 1)
        if beam_width != 1 or num_return != 1:
            raise ValueError(f"beam_width={beam_width}, num_return_sequences={num_return}: only 1 is supported")

        ids_tensor = pb_utils.get_input_tensor_by_name(request, "input_ids")
        if ids_tensor is None:
            raise ValueError("input 'input_ids' is required")
        input_ids = ids_tensor.as_numpy().reshape(-1).astype(np.int64)
        input_length = int(_scalar(request, "input_lengths", input_ids.size))
        input_ids = input_ids[:input_length]
        if input_ids.size == 0:
            raise ValueError("input_ids is empty")
        max_new = int(_scalar(request, "request_output_len", 16))
        if max_new < 1:
            raise ValueError(f"request_output_len={max_new} must be >= 1")
        if input_ids.size + max_new > self.max_seq_len:
            raise ValueError(
                f"Prompt length ({input_ids.size}) + request_output_len ({max_new}) exceeds maximum "
                f"sequence length ({self.max_seq_len})"
            )
        end_id = _scalar(request, "end_id", self.default_end_id)
        end_id = None if end_id is None or end_id < 0 else int(end_id)
        pad_id = _scalar(request, "pad_id", end_id if end_id is not None else 0)
        min_tokens = int(_first_scalar(request, _MIN_TOKENS_INPUTS, 0) or 0)
        top_k = int(_scalar(request, "runtime_top_k", 0) or 0)
        top_p = float(_scalar(request, "runtime_top_p", 0.0) or 0.0)
        temperature = float(_scalar(request, "temperature", 1.0) or 1.0)
        repetition_penalty = float(_scalar(request, "repetition_penalty", 1.0) or 1.0)
        presence_penalty = float(_scalar(request, "presence_penalty", 0.0) or 0.0)
        frequency_penalty = float(_scalar(request, "frequency_penalty", 0.0) or 0.0)
        seed = _first_scalar(request, _SEED_INPUTS, None)
        exclude_input = _scalar(request, "exclude_input_in_output", None)
        exclude_input = self.default_exclude_input if exclude_input is None else bool(exclude_input)
        want_log_probs = bool(_scalar(request, "return_log_probs", False))
        want_context_logits = bool(_scalar(request, "return_context_logits", False))
        want_generation_logits = bool(_scalar(request, "return_generation_logits", False))
        want_perf = bool(_scalar(request, "return_perf_metrics", False))
        stop_words = _word_list(request, "stop_words_list")
        bad_words = _word_list(request, "bad_words_list")
        embedding_bias = pb_utils.get_input_tensor_by_name(request, "embedding_bias")
        bias = None
        if embedding_bias is not None and embedding_bias.as_numpy().size:
            bias = torch.from_numpy(embedding_bias.as_numpy().reshape(-1).astype(np.float32))

        sampling = top_k > 1 or 0.0 < top_p < 1.0
        generator = None
        if sampling:
            generator = torch.Generator().manual_seed(int(seed) if seed is not None else 0)

        generated: list[int] = []
        log_probs: list[float] = []
        generation_logits = []
        context_logits = None
        first_token_ns = None
        past = None
        next_input = torch.from_numpy(input_ids).unsqueeze(0)
        finished_by_end = False
        with self.lock, torch.inference_mode():
            for step in range(max_new):
                out = self.model(input_ids=next_input, past_key_values=past, use_cache=True)
                past = out.past_key_values
                if step == 0 and want_context_logits:
                    context_logits = out.logits[0].float().numpy()
                logits = out.logits[0, -1].float().clone()
                if want_generation_logits:
                    generation_logits.append(logits.numpy().copy())
                if bias is not None and bias.numel() == logits.numel():
                    logits += bias
                history = input_ids.tolist() + generated
                logits = self._penalize(logits, history, generated, repetition_penalty, presence_penalty, frequency_penalty)
                if end_id is not None and len(generated) < min_tokens:
                    logits[end_id] = -float("inf")
                for word in bad_words:
                    if len(word) == 1 or generated[-(len(word) - 1):] == word[:-1]:
                        logits[word[-1]] = -float("inf")
                if sampling:
                    token, logprob = self._sample(logits, top_k, top_p, temperature, generator)
                else:
                    token = int(torch.argmax(logits))
                    logprob = float(torch.log_softmax(logits, dim=-1)[token])
                if first_token_ns is None:
                    first_token_ns = time.time_ns()
                if end_id is not None and token == end_id:
                    finished_by_end = True
                    break
                generated.append(token)
                log_probs.append(logprob)
                if streaming:
                    sender.send(self._response([token], input_ids, False, [logprob], want_log_probs, None, None, None))
                if any(len(w) <= len(generated) and generated[-len(w):] == w for w in stop_words):
                    break
                next_input = torch.tensor([[token]])
        del finished_by_end, pad_id
        perf = None
        if want_perf:
            perf = {"arrival_time_ns": arrival_ns, "first_scheduled_time_ns": arrival_ns,
                    "first_token_time_ns": first_token_ns or arrival_ns, "last_token_time_ns": time.time_ns()}
        if streaming:
            sender.send(flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
            return None
        response = self._response(
            generated, input_ids, not exclude_input, log_probs, want_log_probs,
            context_logits, np.stack(generation_logits) if generation_logits else None, perf,
        )
        if sender is not None:
            sender.send(response, flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
            return None
        return response

    def _penalize(self, logits, history, generated, repetition, presence, frequency):
        torch = self.torch
        if repetition != 1.0 and history:
            index = torch.tensor(sorted(set(history)))
            values = logits[index]
            logits[index] = torch.where(values > 0, values / repetition, values * repetition)
        if (presence or frequency) and generated:
            ids, counts = np.unique(np.array(generated), return_counts=True)
            index = torch.from_numpy(ids)
            logits[index] -= presence + frequency * torch.from_numpy(counts.astype(np.float32))
        return logits

    def _sample(self, logits, top_k, top_p, temperature, generator):
        torch = self.torch
        logits = logits / max(temperature, 1e-5)
        if top_k > 0:
            kth = torch.topk(logits, min(top_k, logits.numel())).values[-1]
            logits = torch.where(logits < kth, torch.full_like(logits, -float("inf")), logits)
        if 0.0 < top_p < 1.0:
            sorted_logits, order = torch.sort(logits, descending=True)
            cumulative = torch.cumsum(torch.softmax(sorted_logits, dim=-1), dim=-1)
            drop = cumulative - torch.softmax(sorted_logits, dim=-1) > top_p
            sorted_logits[drop] = -float("inf")
            logits = torch.full_like(logits, -float("inf")).scatter(0, order, sorted_logits)
        probs = torch.softmax(logits, dim=-1)
        token = int(torch.multinomial(probs, 1, generator=generator))
        return token, float(torch.log(probs[token]))

    def _response(self, tokens, input_ids, include_input, log_probs, want_log_probs,
                  context_logits, generation_logits, perf):
        sequence = (input_ids.tolist() if include_input else []) + list(tokens)
        # [1, beams, tokens] and [1, beams], as the C++ backend fills them (fillTritonResponse in
        # inflight_batcher_llm/src/model_instance_state.cc); 0.5 declares no sequence_length, and an output the
        # config does not declare fails a decoupled response ("unexpected inference output").
        tensors = [pb_utils.Tensor("output_ids", np.array([[sequence]], dtype=np.int32))]
        if "sequence_length" in self.declared_outputs:
            tensors.append(pb_utils.Tensor("sequence_length", np.array([[len(sequence)]], dtype=np.int32)))
        optional = {}
        # TensorRT-LLM answers zeros when log probs were not asked for (responses in
        # tensorrtllm_backend:docs/llama.md@v0.19.0 show "cum_log_probs":0.0 and lists of 0.0).
        if not want_log_probs:
            log_probs = [0.0] * len(tokens)
        optional["cum_log_probs"] = np.array([[sum(log_probs)]], dtype=np.float32)
        optional["output_log_probs"] = np.array([[log_probs]], dtype=np.float32)
        if context_logits is not None:
            optional["context_logits"] = context_logits[np.newaxis].astype(np.float32)
        if generation_logits is not None:
            optional["generation_logits"] = generation_logits[np.newaxis, np.newaxis].astype(np.float32)
        if perf is not None:
            for key, value in perf.items():
                optional[key] = np.array([[value]], dtype=np.int64)
        # Counts of this response, like output_ids (per-step deltas when streaming); TRT-LLM >= 1.0 returns them
        # when return_num_input_tokens / return_num_output_tokens are set (triton_backend tensorrt_llm config).
        optional["num_input_tokens"] = np.array([[input_ids.size]], dtype=np.int32)
        optional["num_output_tokens"] = np.array([[len(tokens)]], dtype=np.int32)
        optional["batch_index"] = np.array([[0]], dtype=np.int32)
        optional["sequence_index"] = np.array([[0]], dtype=np.int32)
        for name, config in self.declared_outputs.items():
            if name in ("output_ids", "sequence_length"):
                continue
            array = optional.get(name)
            if array is None:
                # Every declared output is produced in every response: an ensemble whose mapped
                # output is missing answers /generate with "expects exactly 1 response".
                dims = [1] + [1 if d < 0 else int(d) for d in config.get("dims", [])]
                array = np.zeros(dims, dtype=pb_utils.triton_string_to_numpy(config["data_type"]))
            tensors.append(pb_utils.Tensor(name, array.astype(pb_utils.triton_string_to_numpy(config["data_type"]))))
        return pb_utils.InferenceResponse(output_tensors=tensors)

    def finalize(self):
        self.model = None
