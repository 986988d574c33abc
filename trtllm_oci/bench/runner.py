"""Drive load against an endpoint: warm-up, closed-loop concurrency, open-loop rate with a cap."""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from trtllm_oci.bench import openai_api
from trtllm_oci.bench.errors import BenchInputError
from trtllm_oci.bench.metrics import CostInputs, Slo, summarize_point
from trtllm_oci.bench.payload import ModelCapabilities
from trtllm_oci.bench.prompts import fixed_length_requests, sharegpt_requests
from trtllm_oci.bench.records import RequestRecord, RequestSpec
from trtllm_oci.bench.schedule import arrival_offsets_s
from trtllm_oci.bench.transports import (
    GrpcStreamTransport,
    HttpTransport,
    OciModelDeploymentTransport,
    OpenAITransport,
    Transport,
)
from trtllm_oci.bench.wire import OpenAIWire

TRANSPORTS = ("http", "http-generate", "grpc", "oci", "openai")
TRITON_MODEL = "ensemble"
# A server that stops answering makes every in-flight request wait out its timeout; after this many
# timeouts in a row (at least the concurrency: one full round), the benchmark stops instead of
# waiting out every remaining request.
MIN_TIMEOUTS_TO_STOP = 3


@dataclass(frozen=True)
class LoadPoint:
    """Closed loop at `concurrency`, or open loop at `request_rate` req/s (gamma gaps) with an optional cap."""

    concurrency: int | None = None
    request_rate: float | None = None
    burstiness: float = 1.0
    max_concurrency: int | None = None

    def __post_init__(self) -> None:
        if (self.concurrency is None) == (self.request_rate is None):
            raise BenchInputError("a load point has either a concurrency or a request rate, not both or neither")
        if self.concurrency is not None and self.concurrency < 1:
            raise BenchInputError(f"concurrency {self.concurrency} must be >= 1")
        if self.request_rate is not None and not self.request_rate > 0:
            raise BenchInputError(f"request rate {self.request_rate} must be > 0 req/s (inf sends all at once)")
        if self.max_concurrency is not None and self.max_concurrency < 1:
            raise BenchInputError(f"max concurrency {self.max_concurrency} must be >= 1")
        if not self.burstiness > 0:
            raise BenchInputError(f"burstiness {self.burstiness} must be > 0")

    @property
    def mode(self) -> str:
        if self.concurrency is not None:
            return "concurrency"
        return "poisson" if self.burstiness == 1.0 else "gamma"


class StallGuard:
    """Trips after `limit` requests in a row ended by their timeout: the server stopped answering."""

    def __init__(self, limit: int = MIN_TIMEOUTS_TO_STOP) -> None:
        self.limit = max(1, limit)
        self.streak = 0
        self.tripped = False

    def observe(self, record: RequestRecord) -> None:
        self.streak = self.streak + 1 if record.timed_out else 0
        if self.streak >= self.limit:
            self.tripped = True


async def _send(
    transport: Transport, record: RequestRecord, gate: asyncio.Semaphore | None, guard: StallGuard
) -> RequestRecord:
    if gate is None:
        await transport.send(record)
    else:
        async with gate:
            if guard.tripped:
                return record
            await transport.send(record)
    guard.observe(record)
    return record


async def run_load_point(
    transport: Transport,
    specs: Sequence[RequestSpec],
    point: LoadPoint,
    seed: int = 0,
    guard: StallGuard | None = None,
) -> list[RequestRecord]:
    """Send every spec once under `point`; returns the sent records in spec order.

    Once `guard` trips (the server stopped answering), no further request is sent; the records
    returned are those that were.
    """
    if guard is None:
        guard = StallGuard(max(MIN_TIMEOUTS_TO_STOP, point.concurrency or point.max_concurrency or 0))
    records = [RequestRecord(index=i, spec=s) for i, s in enumerate(specs)]
    if point.concurrency is not None:
        pending = iter(records)

        async def worker() -> None:
            for record in pending:
                if guard.tripped:
                    return
                record.scheduled_ns = time.perf_counter_ns()
                await transport.send(record)
                guard.observe(record)

        await asyncio.gather(*(worker() for _ in range(min(point.concurrency, len(records)))))
        return [r for r in records if r.send_ns]

    assert point.request_rate is not None
    offsets = arrival_offsets_s(len(records), point.request_rate, point.burstiness, seed)
    gate = asyncio.Semaphore(point.max_concurrency) if point.max_concurrency else None
    tasks = []
    start = time.perf_counter_ns()
    for record, offset in zip(records, offsets, strict=True):
        record.scheduled_ns = start + int(offset * 1e9)
        delay = (record.scheduled_ns - time.perf_counter_ns()) / 1e9
        if delay > 0:
            await asyncio.sleep(delay)
        if guard.tripped:
            break
        tasks.append(asyncio.create_task(_send(transport, record, gate, guard)))
    await asyncio.gather(*tasks)
    return [r for r in records if r.send_ns]


@dataclass
class BenchmarkConfig:
    """One benchmark invocation. `model`: the Triton model (default `ensemble`) or, for OpenAI
    bodies, the served model name (the openai transport takes the only one /v1/models lists).
    `api` (chat or completions) selects OpenAI bodies: always for `openai`, on the OCI route for
    a deployment that runs trtllm-serve; None keeps the ensemble's generate bodies."""

    url: str
    model: str | None = None
    transport: str = "http"
    concurrencies: Sequence[int] = (1,)
    request_rates: Sequence[float] = ()
    burstiness: float = 1.0
    max_concurrency: int | None = None
    io_pairs: Sequence[tuple[int, int]] = ((128, 128),)
    num_requests: int | None = None
    warmup: int | None = None
    repeats: int = 1
    seed: int = 0
    tokenizer: Any | None = None
    dataset: str = "random"
    dataset_path: str | None = None
    slo: Slo = field(default_factory=Slo)
    cost: CostInputs = field(default_factory=CostInputs)
    shape: str = ""
    extra_inputs: dict[str, Any] = field(default_factory=dict)
    request_timeout_s: float | None = 600.0
    signer: Any | None = None
    caps: ModelCapabilities | None = None
    api: str | None = None
    streaming: bool = True
    openai_length_fields: tuple[str, ...] = openai_api.DEFAULT_LENGTH_FIELDS
    routes: Any | None = None  # oci transport: the deployment's routes (trtllm_oci.cloud.routes.ServingRoutes)

    def __post_init__(self) -> None:
        if self.transport not in TRANSPORTS:
            raise BenchInputError(f"transport {self.transport!r}: choose one of {TRANSPORTS}")
        if self.transport == "openai" and self.api is None:
            self.api = "chat"
        if self.api is not None:
            openai_api.check_api(self.api)
            openai_api.check_length_fields(self.openai_length_fields)
            if self.transport not in ("openai", "oci"):
                raise BenchInputError(
                    f"--api {self.api} sends OpenAI bodies: use it with --transport openai (or oci for a "
                    f"deployment running trtllm-serve), not {self.transport}"
                )
            if self.transport == "oci" and not self.model:
                raise BenchInputError("--transport oci --api needs --model: the served model name the OpenAI body carries")
        elif self.model is None:
            self.model = TRITON_MODEL
        # A non-streaming OCI release is measured on /predict (its stream endpoint answers 409 there).
        if not self.streaming and self.transport not in ("openai", "oci"):
            raise BenchInputError(
                f"--no-stream is for --transport openai; for Triton's non-streaming /generate use "
                f"--transport http-generate (not {self.transport})"
            )
        if self.request_timeout_s is not None and not self.request_timeout_s > 0:
            raise BenchInputError(f"--request-timeout-s {self.request_timeout_s} must be > 0 seconds")
        if not self.concurrencies and not self.request_rates:
            raise BenchInputError("nothing to run: give --concurrency and/or --request-rate")
        if self.repeats < 1:
            raise BenchInputError(f"repeats={self.repeats} must be >= 1")
        if self.num_requests is not None and self.num_requests < 1:
            raise BenchInputError(f"num_requests={self.num_requests} must be >= 1")
        if self.warmup is not None and self.warmup < 0:
            raise BenchInputError(f"warmup={self.warmup} must be >= 0")
        if self.dataset not in ("random", "sharegpt"):
            raise BenchInputError(f"dataset {self.dataset!r}: use 'random' or 'sharegpt FILE'")
        if self.dataset == "sharegpt" and not self.dataset_path:
            raise BenchInputError("--dataset sharegpt needs the file: --dataset sharegpt PATH.json")
        if self.transport == "oci" and self.signer is None:
            raise BenchInputError(
                "the oci transport needs a signer (--oci-config/--oci-profile or an oci.signer.Signer)"
            )

    def load_points(self) -> list[LoadPoint]:
        points = [LoadPoint(concurrency=c) for c in self.concurrencies]
        points += [
            LoadPoint(request_rate=r, burstiness=self.burstiness, max_concurrency=self.max_concurrency)
            for r in self.request_rates
        ]
        return points

    def requests_for(self, point: LoadPoint) -> int:
        if self.num_requests is not None:
            return self.num_requests
        return max(100, 10 * point.concurrency) if point.concurrency else 200

    def make_transport(self) -> Transport:
        max_conn = max([*self.concurrencies, self.max_concurrency or 0, 256])
        if self.transport == "openai":
            return OpenAITransport(
                self.url,
                self.model,
                api=self.api or "chat",
                streaming=self.streaming,
                length_fields=self.openai_length_fields,
                max_connections=max_conn,
                request_timeout_s=self.request_timeout_s,
            )
        if self.transport in ("http", "http-generate"):
            return HttpTransport(
                self.url,
                self.model or TRITON_MODEL,
                streaming=self.transport == "http",
                caps=self.caps,
                max_connections=max_conn,
                request_timeout_s=self.request_timeout_s,
            )
        if self.transport == "grpc":
            return GrpcStreamTransport(
                self.url, self.model or TRITON_MODEL, caps=self.caps, request_timeout_s=self.request_timeout_s
            )
        wire = OpenAIWire(self.model or "", self.api, self.openai_length_fields) if self.api else None
        return OciModelDeploymentTransport(
            self.url,
            self.signer,
            caps=self.caps,
            routes=self.routes,
            streaming=self.streaming,
            max_connections=max_conn,
            request_timeout_s=self.request_timeout_s,
            wire=wire,
        )


@dataclass
class BenchmarkResult:
    """The tables; `stopped` says why the run ended early (the server stopped answering), else None."""

    summary: pd.DataFrame
    requests: pd.DataFrame
    stopped: str | None = None


def _tables(summary_rows: list[dict[str, Any]], request_rows: list[dict[str, Any]], stopped: str | None = None):
    from trtllm_oci.bench.columns import order_columns

    return BenchmarkResult(
        summary=order_columns(pd.DataFrame(summary_rows)), requests=pd.DataFrame(request_rows), stopped=stopped
    )


def _stop_message(where: str, guard: StallGuard, timeout_s: float | None) -> str:
    return (
        f"the server stopped answering during {where}: {guard.streak} requests in a row got no complete answer "
        f"within --request-timeout-s {timeout_s:g} s; the benchmark stopped there (check the server's log; "
        "a shorter --request-timeout-s finds this sooner)"
    )


def _specs(config: BenchmarkConfig, io_pair: tuple[int, int] | None, n: int, seed: int) -> list[RequestSpec]:
    if config.dataset == "sharegpt":
        output_len = io_pair[1] if io_pair else None
        specs = sharegpt_requests(config.dataset_path, config.tokenizer, n, seed, output_len=output_len)  # type: ignore[arg-type]
    else:
        assert io_pair is not None
        specs = fixed_length_requests(config.tokenizer, io_pair[0], io_pair[1], n, seed)
    if config.extra_inputs:
        specs = [
            RequestSpec(s.prompt, s.output_len, s.input_len, s.fixed_output_len, dict(config.extra_inputs))
            for s in specs
        ]
    return specs


async def run_benchmark_async(
    config: BenchmarkConfig,
    progress: Callable[[dict[str, Any]], None] | None = None,
    on_point: Callable[[BenchmarkResult], object] | None = None,
) -> BenchmarkResult:
    """Every (I/O pair x load point x repeat). After each load point, `progress` gets its summary
    row and `on_point` the tables so far (to write them: a later failure then loses nothing)."""
    run_id = uuid.uuid4().hex[:12]
    ts = datetime.now(UTC).isoformat(timespec="seconds")
    summary_rows: list[dict[str, Any]] = []
    request_rows: list[dict[str, Any]] = []
    io_pairs: list[tuple[int, int] | None] = list(config.io_pairs) if config.io_pairs else [None]
    async with config.make_transport() as transport:
        if transport.caps is None:
            await transport.probe()
        model = getattr(transport, "model", None) or config.model
        for io_pair in io_pairs:
            points = config.load_points()
            widest = max(p.concurrency or p.max_concurrency or 1 for p in points)
            warm_n = config.warmup if config.warmup is not None else widest
            if warm_n:
                guard = StallGuard(max(MIN_TIMEOUTS_TO_STOP, widest))
                warm_specs = _specs(config, io_pair, warm_n, config.seed + 10_000)
                await run_load_point(transport, warm_specs, LoadPoint(concurrency=widest), guard=guard)
                if guard.tripped:
                    return _tables(summary_rows, request_rows, _stop_message("warm-up", guard, config.request_timeout_s))
            for point in points:
                for repeat in range(config.repeats):
                    seed = config.seed + repeat
                    guard = StallGuard(max(MIN_TIMEOUTS_TO_STOP, point.concurrency or point.max_concurrency or 0))
                    specs = _specs(config, io_pair, config.requests_for(point), seed)
                    records = await run_load_point(transport, specs, point, seed=seed, guard=guard)
                    summary, rows = summarize_point(
                        records, config.tokenizer, config.slo, config.cost, point.request_rate
                    )
                    identity = {
                        "run_id": run_id,
                        "ts": ts,
                        "transport": transport.label,
                        "model": model,
                        "shape": config.shape,
                        "dataset": config.dataset,
                        "isl_requested": io_pair[0] if io_pair and config.dataset == "random" else math.nan,
                        "osl_requested": io_pair[1] if io_pair else math.nan,
                        "load_mode": point.mode,
                        "concurrency": point.concurrency if point.concurrency is not None else math.nan,
                        "burstiness": point.burstiness if point.request_rate is not None else math.nan,
                        "max_concurrency": point.max_concurrency
                        if point.max_concurrency is not None
                        else math.nan,
                        "repeat": repeat,
                        "seed": seed,
                        "warmup": warm_n,
                    }
                    summary_rows.append({**identity, **summary})
                    first_send = min(r.send_ns for r in records)
                    for row in rows:
                        row["send_offset_s"] = (row.pop("send_ns") - first_send) / 1e9
                        row.pop("end_ns")
                        request_rows.append(
                            {
                                "run_id": run_id,
                                "load_point": len(summary_rows) - 1,
                                "transport": transport.label,
                                "load_mode": point.mode,
                                "concurrency": identity["concurrency"],
                                "target_rps": summary["target_rps"],
                                "repeat": repeat,
                                **row,
                            }
                        )
                    where = (
                        f"load point {point.mode} "
                        f"{point.concurrency if point.concurrency is not None else point.request_rate:g}"
                    )
                    stopped = _stop_message(where, guard, config.request_timeout_s) if guard.tripped else None
                    if on_point is not None:
                        on_point(_tables(summary_rows, request_rows, stopped))
                    if progress is not None:
                        progress(summary_rows[-1])
                    if stopped:
                        return _tables(summary_rows, request_rows, stopped)
    return _tables(summary_rows, request_rows)


def run_benchmark(
    config: BenchmarkConfig,
    progress: Callable[[dict[str, Any]], None] | None = None,
    on_point: Callable[[BenchmarkResult], object] | None = None,
) -> BenchmarkResult:
    """Run every (I/O pair x load point x repeat); one summary row each plus every request."""
    return asyncio.run(run_benchmark_async(config, progress, on_point))
