"""Where the engine cache lives, written as one URI: a directory, or an OCI Object Storage bucket.

    /srv/engines, ~/engines, file:///srv/engines      a local (or NFS-mounted) directory
    oci://<bucket>@<namespace>[/<prefix>]             objects under <prefix>/ in an Object Storage bucket

The `oci://bucket@namespace/prefix` form is the one the OCI CLI and Data Science docs use for Object
Storage paths. Parsing is kept free of SDK imports so a spec can be validated anywhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from trtllm_oci.errors import SpecError

# Object Storage bucket names: letters, digits, '-', '_', '.', 1..256 chars (docs.oracle.com "Managing Buckets").
_BUCKET_RE = re.compile(r"^[A-Za-z0-9._-]{1,256}$")
# Tenancy namespaces are short lowercase alphanumeric strings (GetNamespace); be lenient on case.
_NAMESPACE_RE = re.compile(r"^[A-Za-z0-9-]{1,64}$")
_FORMS = "a directory (/path, ~/path or file:///path) or oci://<bucket>@<namespace>/<prefix>"


class EngineCacheUriError(SpecError):
    """An engine cache URI is neither a directory nor an Object Storage location."""


@dataclass(frozen=True)
class LocalCacheLocation:
    root: Path

    def __str__(self) -> str:
        return str(self.root)


@dataclass(frozen=True)
class ObjectStorageCacheLocation:
    bucket: str
    namespace: str
    prefix: str

    def __str__(self) -> str:
        return f"oci://{self.bucket}@{self.namespace}" + (f"/{self.prefix}" if self.prefix else "")


CacheLocation = LocalCacheLocation | ObjectStorageCacheLocation


def parse_engine_cache_uri(uri: str) -> CacheLocation:
    """Parse `uri`; raises EngineCacheUriError naming the value and the accepted forms."""
    text = uri.strip()
    if not text:
        raise EngineCacheUriError(f"engine cache location is empty; use {_FORMS}")
    if text.startswith("oci://"):
        rest = text[len("oci://"):]
        head, _, prefix = rest.partition("/")
        bucket, at, namespace = head.partition("@")
        if not at or not _BUCKET_RE.match(bucket) or not _NAMESPACE_RE.match(namespace):
            raise EngineCacheUriError(
                f"engine cache {uri!r} is not oci://<bucket>@<namespace>/<prefix>: the bucket (letters, digits, "
                f"'-', '_', '.') and the tenancy namespace (`oci os ns get`) are both required")
        prefix = prefix.strip("/")
        if "//" in prefix:
            raise EngineCacheUriError(f"engine cache {uri!r} has an empty path segment in its prefix {prefix!r}; "
                                      "remove the doubled '/'")
        return ObjectStorageCacheLocation(bucket=bucket, namespace=namespace, prefix=prefix)
    if "://" in text:
        scheme = text.split("://", 1)[0]
        if scheme != "file":
            raise EngineCacheUriError(f"engine cache {uri!r} has scheme {scheme!r}; use {_FORMS}")
        text = text[len("file://"):]
        if not text.startswith("/"):
            raise EngineCacheUriError(f"engine cache {uri!r} must be an absolute file:///path URI")
    path = Path(text).expanduser()
    if not path.is_absolute():
        raise EngineCacheUriError(
            f"engine cache {uri!r} is a relative path; every host and flow run must resolve it the same way, so "
            f"give an absolute path (e.g. {Path(text).resolve()})")
    return LocalCacheLocation(root=path)
