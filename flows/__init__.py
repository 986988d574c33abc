"""Prefect flows: composition only. Each stage is a flow of its own so other pipelines can call one piece."""
