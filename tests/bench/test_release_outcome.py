"""A release's benchmark outcome: an endpoint that answers no request, or goes silent, fails the stage (with
what was measured kept), instead of a release that ends Completed on a table of errors."""

from __future__ import annotations

import pytest

from tests.standins.openai_server import OpenAIStandIn
from trtllm_oci.bench.errors import BenchmarkFailedError
from trtllm_oci.bench.runner import BenchmarkConfig, run_benchmark
from trtllm_oci.release.bench import outcome_from


def _measure(server: OpenAIStandIn, **options):
    config = BenchmarkConfig(url=server.url, transport="openai", concurrencies=[2], io_pairs=[(4, 4)],
                             num_requests=4, warmup=0, **options)
    return run_benchmark(config)


def test_an_endpoint_that_answers_every_request_with_an_error_fails_with_the_first_error(tmp_path):
    with OpenAIStandIn(fault_all="error_object") as server:
        result = _measure(server)
    assert len(result.requests) == 4 and not result.requests["ok"].any()
    out = tmp_path / "bench"
    with pytest.raises(BenchmarkFailedError, match=r"none of the 4 requests got an answer; the first error: .+") as err:
        outcome_from(result, out)
    assert str(out) in str(err.value) and "benchmark.api" in str(err.value)
    assert (out / "requests.csv").is_file() and (out / "summary.csv").is_file()  # what was measured is kept


def test_an_endpoint_that_goes_silent_fails_the_stage(tmp_path):
    with OpenAIStandIn(fault_all="hang") as server:
        result = _measure(server, request_timeout_s=0.5)
    with pytest.raises(BenchmarkFailedError, match=r"the server stopped answering during load point concurrency 2"):
        outcome_from(result, tmp_path / "bench")


def test_an_answered_benchmark_is_an_outcome(tmp_path):
    with OpenAIStandIn(first_token_delay_ms=1, inter_token_delay_ms=1) as server:
        result = _measure(server)
    outcome = outcome_from(result, tmp_path / "bench")
    assert outcome.headline["n_err_total"] == 0 and outcome.headline["concurrency"] == 2
