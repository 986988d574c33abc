"""Arrival times for open-loop load: Poisson (burstiness 1) or gamma-distributed gaps.

Gamma gaps with shape k = burstiness and mean 1/rate have coefficient of variation 1/sqrt(k):
k < 1 is burstier than Poisson, k -> inf is a constant rate (vllm/benchmarks/serve.py,
get_request). Seeded so a repeat sends the same schedule.
"""

from __future__ import annotations

import math

import numpy as np

from trtllm_oci.bench.errors import BenchInputError


def arrival_offsets_s(
    num_requests: int, request_rate: float, burstiness: float = 1.0, seed: int = 0
) -> np.ndarray:
    """Send times in seconds from the first request (which is at 0)."""
    if num_requests < 1:
        raise BenchInputError(f"num_requests={num_requests} must be >= 1")
    if not request_rate > 0:
        raise BenchInputError(f"request rate {request_rate} must be > 0 requests/s (or inf for all at once)")
    if not burstiness > 0:
        raise BenchInputError(f"burstiness {burstiness} must be > 0 (1 = Poisson, <1 burstier, inf = constant)")
    if math.isinf(request_rate):
        return np.zeros(num_requests)
    if math.isinf(burstiness):
        gaps = np.full(num_requests - 1, 1.0 / request_rate)
    else:
        rng = np.random.default_rng(seed)
        gaps = rng.gamma(shape=burstiness, scale=1.0 / (request_rate * burstiness), size=num_requests - 1)
    return np.concatenate([[0.0], np.cumsum(gaps)])
