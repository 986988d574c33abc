"""Credentials inside URLs (HF_ENDPOINT, `bench --url`) never reach a message or a log line: the error root
redacts what it carries, and the logging filter redacts a record's message, its arguments and its traceback."""

from __future__ import annotations

import io
import logging
import pickle
import sys
import traceback

import pytest

from trtllm_oci.errors import InputError, ServiceError, TrtllmOciError, WaitTimeoutError
from trtllm_oci.hub.errors import HubTransferError
from trtllm_oci.log_redaction import RedactCredentialsFilter, install_redaction

SECRETS = ("hubuser", "s3cr3t-pw", "tok-s3cr3t")
HUB_URL = "https://hubuser:s3cr3t-pw@hub.example/api/models/acme/tiny"
BENCH_URL = "http://10.0.0.5:8000/v2/models/ensemble/generate?token=tok-s3cr3t"


def assert_redacted(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, (secret, text)


def _raise_chained() -> None:
    try:
        raise ConnectionError(f"GET {HUB_URL} refused")
    except ConnectionError as exc:
        raise RuntimeError(f"benchmark against {BENCH_URL} failed") from exc


def test_the_filter_redacts_message_arguments_and_traceback() -> None:
    try:
        _raise_chained()
    except RuntimeError:
        exc_info = sys.exc_info()
    record = logging.LogRecord("trtllm_oci.hub.retry", logging.WARNING, __file__, 1, "%s failed (%s); attempt %d",
                               ("Resolving acme/tiny@main", f"HfHubHTTPError: 503 for url '{HUB_URL}'", 1), exc_info)

    assert RedactCredentialsFilter().filter(record) is True
    text = logging.Formatter().format(record)

    assert_redacted(text)
    assert "for url 'https://***@hub.example/api/models/acme/tiny'); attempt 1" in text
    # Both exceptions of the chain are still shown, each with its URL redacted.
    assert "ConnectionError: GET https://***@hub.example/api/models/acme/tiny refused" in text
    assert "RuntimeError: benchmark against http://10.0.0.5:8000/v2/models/ensemble/generate?token=*** failed" in text
    # A formatter that renders the exception itself (Prefect's JsonFormatter reads exc_info) has nothing raw left.
    assert record.exc_info is None and record.args is None


def test_a_traceback_a_handler_already_formatted_is_redacted_too() -> None:
    try:
        _raise_chained()
    except RuntimeError:
        record = logging.LogRecord("trtllm_oci", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    record.exc_text = logging.Formatter().formatException(record.exc_info)  # type: ignore[arg-type]

    RedactCredentialsFilter().filter(record)

    assert_redacted(logging.Formatter().format(record))
    assert "https://***@hub.example" in (record.exc_text or "")


def test_a_record_whose_arguments_do_not_fit_its_format_keeps_them_out_of_the_error_report() -> None:
    record = logging.LogRecord("trtllm_oci", logging.WARNING, __file__, 1, "%s and %s", (HUB_URL,), None)

    RedactCredentialsFilter().filter(record)

    assert_redacted(f"{record.msg} {record.args}")
    assert "https://***@hub.example" in record.getMessage()


def test_installed_redaction_covers_child_loggers_on_their_way_to_the_root_handlers() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    child = logging.getLogger("trtllm_oci.cache.object_storage_store")
    try:
        install_redaction()
        child.warning("mirror %s answered 503", HUB_URL)
        child.error("bench against %s failed", BENCH_URL, exc_info=ValueError(f"bad {BENCH_URL}"))
    finally:
        root.removeHandler(handler)
    assert_redacted(stream.getvalue())
    assert "mirror https://***@hub.example/api/models/acme/tiny answered 503" in stream.getvalue()
    assert "ValueError: bad http://10.0.0.5:8000/v2/models/ensemble/generate?token=***" in stream.getvalue()
    # With no handler configured at all (the CLI without Prefect), records go to logging.lastResort.
    assert any(isinstance(f, RedactCredentialsFilter) for f in logging.lastResort.filters)  # type: ignore[union-attr]


def test_installing_twice_adds_one_filter() -> None:
    install_redaction()
    install_redaction()
    domain = logging.getLogger("trtllm_oci")
    assert sum(isinstance(f, RedactCredentialsFilter) for f in domain.filters) == 1


@pytest.mark.parametrize("kind", [TrtllmOciError, InputError, ServiceError, WaitTimeoutError, HubTransferError])
def test_an_error_built_from_a_url_with_credentials_never_shows_them(kind: type[TrtllmOciError]) -> None:
    error = kind(f"cannot reach {HUB_URL} nor {BENCH_URL}")

    shown = [str(error), repr(error), *map(str, error.args), "".join(traceback.format_exception(error)),
             str(pickle.loads(pickle.dumps(error)))]  # Prefect persists a failed task's exception by pickling it

    for text in shown:
        assert_redacted(text)
    assert str(error) == ("cannot reach https://***@hub.example/api/models/acme/tiny nor "
                          "http://10.0.0.5:8000/v2/models/ensemble/generate?token=***")


def test_an_error_whose_message_is_set_after_it_was_built_still_shows_no_credentials() -> None:
    error = ServiceError("placeholder")
    error.args = (f"mirror {HUB_URL} down",)

    assert_redacted(str(error))
    assert_redacted(repr(error))


def test_an_object_storage_uri_keeps_its_bucket() -> None:
    # oci://bucket@namespace/prefix puts the bucket where a URL's userinfo goes; cache and artifact-bucket
    # messages must still name it, while a credential before @ in any other scheme is hidden.
    from trtllm_oci.errors import redact_credentials

    text = "not in this cache (oci://engines@ns/trtllm/cache); mirror https://u:pw@hub.example/x"
    assert redact_credentials(text) == "not in this cache (oci://engines@ns/trtllm/cache); mirror https://***@hub.example/x"
