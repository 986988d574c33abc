"""Serialise SDK model objects exactly as the SDK puts them on the wire.

The SDK turns request models into JSON with `BaseClient.sanitize_for_serialization` and then `json.dumps`
(oci/base_client.py@2.189.0, `call_api`). That method needs only `complex_type_mappings` from the client, so
a bare instance carrying the service's type mapping runs the very same code without credentials.
"""

from __future__ import annotations

from typing import Any

from oci.base_client import BaseClient
from oci.data_science.models import data_science_type_mapping


class _WireSerializer(BaseClient):
    def __init__(self, type_mapping: dict[str, type]):  # noqa: D107 - deliberately skips BaseClient.__init__
        self.complex_type_mappings = type_mapping


_DATA_SCIENCE = _WireSerializer(data_science_type_mapping)


def serialize(details: Any) -> dict[str, Any]:
    """The camelCase JSON dict the SDK would send for `details` (a Data Science request model)."""
    return _DATA_SCIENCE.sanitize_for_serialization(details)
