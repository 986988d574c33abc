"""OCI side of trtllm-oci: auth, model catalog, BYOC model deployment, OCIR API calls.

Plain Python on top of the official `oci` SDK; no Prefect imports here.
"""
