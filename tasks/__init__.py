"""Prefect tasks: thin wrappers over the plain functions in trtllm_oci, one module per stage."""
