"""LLM serving benchmark client for Triton's TensorRT-LLM ensemble (HTTP SSE, gRPC, OCI Model Deployment).

Plain asyncio and pandas; no Prefect imports. Entry points: `run_benchmark` (runner),
`summary_markdown` / `summary_table_records` (results), `add_bench_parser` (cli).
"""
