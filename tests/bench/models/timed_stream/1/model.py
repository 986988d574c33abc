"""Decoupled Triton Python model that streams words on a known schedule.

Each request sleeps `first_token_delay_ms` before its first token and `inter_token_delay_ms`
between tokens (defaults from the model parameters below), emits exactly `max_tokens` tokens
(` w0`, ` w1`, ...), and with `error_after_tokens=k` sends an error response after k tokens.
Defaults can be overridden by config `parameters`. Every request runs in its own thread so concurrent requests do not serialise behind the sleeps.
num_output_tokens is cumulative per response, num_input_tokens is the whitespace word count.
With `return_server_timing=true` each response carries `server_elapsed_ms`: milliseconds from the
model reading the request to just before that response is sent, on the model's own clock, so tests
compare client timings with what the server really did (its sleeps overshoot on a busy machine).
"""

import json
import threading
import time

import numpy as np
import triton_python_backend_utils as pb_utils

DEFAULT_FIRST_TOKEN_DELAY_MS = 50.0
DEFAULT_INTER_TOKEN_DELAY_MS = 10.0


def _scalar(request, name, default):
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    if tensor is None:
        return default
    return tensor.as_numpy().reshape(-1)[0]


def _read_params(request):
    start = time.perf_counter()
    prompt = _scalar(request, "text_input", b"")
    prompt = prompt.decode() if isinstance(prompt, bytes) else str(prompt)
    return {
        "start": start,
        "n_in": len(prompt.split()),
        "max_tokens": int(_scalar(request, "max_tokens", 16)),
        "stream": bool(_scalar(request, "stream", False)),
        "first_ms": float(_scalar(request, "first_token_delay_ms", DEFAULT_FIRST_TOKEN_DELAY_MS)),
        "gap_ms": float(_scalar(request, "inter_token_delay_ms", DEFAULT_INTER_TOKEN_DELAY_MS)),
        "error_after": int(_scalar(request, "error_after_tokens", -1)),
        "want_in": bool(_scalar(request, "return_num_input_tokens", False)),
        "want_out": bool(_scalar(request, "return_num_output_tokens", False)),
        "want_timing": bool(_scalar(request, "return_server_timing", False)),
    }


def _response(text, n_in, n_out, params):
    tensors = [pb_utils.Tensor("text_output", np.array([[text.encode()]], dtype=np.object_))]
    if params["want_in"]:
        tensors.append(pb_utils.Tensor("num_input_tokens", np.array([[n_in]], dtype=np.int32)))
    if params["want_out"]:
        tensors.append(pb_utils.Tensor("num_output_tokens", np.array([[n_out]], dtype=np.int32)))
    if params["want_timing"]:
        elapsed_ms = (time.perf_counter() - params["start"]) * 1000.0
        tensors.append(pb_utils.Tensor("server_elapsed_ms", np.array([[elapsed_ms]], dtype=np.float32)))
    return pb_utils.InferenceResponse(output_tensors=tensors)


class TritonPythonModel:
    def initialize(self, args):
        global DEFAULT_FIRST_TOKEN_DELAY_MS, DEFAULT_INTER_TOKEN_DELAY_MS
        self._threads = []
        # config.pbtxt `parameters` may override the default delays (the client-overhead benchmark
        # sets both to 0 so that a client that cannot send extra inputs gets instant answers).
        params = json.loads(args["model_config"]).get("parameters", {})
        if "first_token_delay_ms" in params:
            DEFAULT_FIRST_TOKEN_DELAY_MS = float(params["first_token_delay_ms"]["string_value"])
        if "inter_token_delay_ms" in params:
            DEFAULT_INTER_TOKEN_DELAY_MS = float(params["inter_token_delay_ms"]["string_value"])

    def execute(self, requests):
        for request in requests:
            # Inputs are read here: their buffers are released once execute() returns.
            sender = request.get_response_sender()
            try:
                params = _read_params(request)
            except Exception as exc:  # noqa: BLE001 - a bad input must end this request only
                sender.send(
                    pb_utils.InferenceResponse(error=pb_utils.TritonError(f"timed_stream: {exc}")),
                    flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL,
                )
                continue
            thread = threading.Thread(target=self._serve, args=(sender, params), daemon=True)
            thread.start()
            self._threads.append(thread)
        self._threads = [t for t in self._threads if t.is_alive()]
        return None

    def _serve(self, sender, params):
        start = params["start"]
        try:
            max_tokens = params["max_tokens"]
            stream = params["stream"]
            first_ms = params["first_ms"]
            gap_ms = params["gap_ms"]
            error_after = params["error_after"]
            n_in = params["n_in"]
            words = []
            # Absolute deadlines so that scheduling jitter does not accumulate over the stream.
            for i in range(max_tokens):
                deadline = start + (first_ms + i * gap_ms) / 1000.0
                delay = deadline - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                if i == error_after:
                    sender.send(
                        pb_utils.InferenceResponse(
                            error=pb_utils.TritonError(f"injected error after {i} tokens")
                        ),
                        flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL,
                    )
                    return
                words.append(f" w{i}")
                if stream:
                    sender.send(_response(words[-1], n_in, i + 1, params))
            if stream:
                sender.send(flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
            else:
                sender.send(
                    _response("".join(words), n_in, len(words), params),
                    flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL,
                )
        except Exception as exc:  # noqa: BLE001 - any failure must end the stream for the client
            sender.send(
                pb_utils.InferenceResponse(error=pb_utils.TritonError(f"timed_stream: {exc}")),
                flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL,
            )
