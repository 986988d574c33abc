"""TensorRT-LLM's LLM API (PyTorch backend): per-version facts, the typed options, trtllm-serve, llmapi Triton."""
