"""Engine cache locations: the URI forms a spec accepts, and the errors for the ones it does not."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from trtllm_oci.cache_location import (
    EngineCacheUriError,
    LocalCacheLocation,
    ObjectStorageCacheLocation,
    parse_engine_cache_uri,
)
from trtllm_oci.spec import SpecError, parse_spec


@pytest.mark.parametrize(("uri", "expected"), [
    ("oci://engines@axnamespace/trtllm/prod", ObjectStorageCacheLocation("engines", "axnamespace", "trtllm/prod")),
    ("oci://engines@axnamespace/trtllm/", ObjectStorageCacheLocation("engines", "axnamespace", "trtllm")),
    ("oci://my.bucket_1@axnamespace", ObjectStorageCacheLocation("my.bucket_1", "axnamespace", "")),
    ("/srv/engines", LocalCacheLocation(Path("/srv/engines"))),
    ("file:///srv/engines", LocalCacheLocation(Path("/srv/engines"))),
])
def test_accepted_forms(uri: str, expected: object) -> None:
    assert parse_engine_cache_uri(uri) == expected


def test_home_is_expanded() -> None:
    assert parse_engine_cache_uri("~/engines") == LocalCacheLocation(Path.home() / "engines")


@pytest.mark.parametrize(("uri", "says"), [
    ("s3://bucket/prefix", "has scheme 's3'"),
    ("oci://engines/prefix", "bucket (letters, digits"),
    ("oci://@ns/prefix", "bucket (letters, digits"),
    ("oci://engines@/prefix", "tenancy namespace"),
    ("oci://engines@ns/a//b", "empty path segment"),
    ("file://relative/dir", "absolute file:///path"),
    ("engines", "relative path"),
    ("  ", "is empty"),
])
def test_rejected_forms_say_why(uri: str, says: str) -> None:
    with pytest.raises(EngineCacheUriError, match=re.escape(says)):
        parse_engine_cache_uri(uri)


def test_a_spec_with_a_bad_engine_cache_fails_at_load_naming_the_field() -> None:
    with pytest.raises(SpecError) as err:
        parse_spec({"model": {"hf_repo": "meta-llama/Llama-2-7b-hf"}, "engine_cache": {"uri": "gs://b/p"}})
    assert "engine_cache.uri" in str(err.value) and "gs://b/p" in str(err.value)
    with pytest.raises(SpecError, match="engine_cache.region"):
        parse_spec({"model": {"hf_repo": "meta-llama/Llama-2-7b-hf"},
                    "engine_cache": {"uri": "oci://b@ns", "region": "ashburn"}})
