"""The names of an assembled repository's parts and where OCI mounts it: light enough for the CLI's help."""

from __future__ import annotations

MODEL_REPOSITORY_DIR = "model_repository"
ENGINE_DIR = "engine"
TOKENIZER_DIR = "tokenizer"
REFERENCE_MODEL_DIR = "reference_model"
MANIFEST_NAME = "manifest.json"
OCI_DEPLOY_PREFIX = "/opt/ds/model/deployed_model"  # BYOC artifact mount (oci.md "BYOC contract")


def oci_deploy_root(name: str) -> str:
    """Where an artifact zip whose top folder is `name` is mounted in an OCI Data Science BYOC container."""
    return f"{OCI_DEPLOY_PREFIX}/{name}"
