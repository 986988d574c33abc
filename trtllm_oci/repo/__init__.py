"""Triton `inflight_batcher_llm` model repository: interface data, assembly, pre-start checks, packaging."""
