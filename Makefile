# Two entry points (README): `make demo` runs the whole release on this machine with the embedded
# defaults (tiny model, CPU reference backend, local Triton); `make test` runs the test suite.
VENV ?= .venv
PY := $(VENV)/bin/python
APT_PACKAGES := docker.io docker-registry apache2-utils busybox-static

.PHONY: demo test lint system-deps venv bench-smoke

$(VENV)/.installed: pyproject.toml setup.py constraints.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# The CPU build of torch first, so nothing below resolves a CUDA build (several GB) instead.
	$(PY) -m pip install -q torch==2.13.0
	# constraints.txt pins the set the test suite last passed with (pip freeze); pyproject keeps ranges.
	$(PY) -m pip install -q -c constraints.txt -e ".[dev]"
	touch $@

venv: $(VENV)/.installed

# The real Docker engine and registry the tests start (root needed, as in CI).
system-deps:
	@if ! command -v dockerd >/dev/null || ! command -v docker-registry >/dev/null || ! command -v htpasswd >/dev/null \
	   || ! test -x /bin/busybox; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES) >/dev/null; \
	fi

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

test: system-deps venv lint
	$(PY) -m pytest

# OUT=DIR puts the results elsewhere than out/demo; BACKEND=tensorrt runs the engine path's Triton ensemble.
demo: venv
	$(VENV)/bin/trtllm-oci demo $(if $(OUT),--out $(OUT)) $(if $(BACKEND),--backend $(BACKEND))

# Benchmarks at smoke sizes: they print figures and ratios; nothing is asserted against wall-clock targets.
bench-smoke: venv
	$(PY) benchmarks/bench_cli_startup.py --runs 5
	$(PY) benchmarks/bench_engine_cache.py --size-gb 0.5 --sample-gb 0.1
	$(PY) benchmarks/bench_package_zip.py --size-mb 8
	$(PY) benchmarks/bench_oci_release.py --artifact-gib 0.02 --direct-limit-mib 1
	# The independent client lives in its own venv: its pins must not touch the project's.
	@test -x .bench-venv/aiperf/bin/aiperf || { python3 -m venv .bench-venv/aiperf \
	  && .bench-venv/aiperf/bin/pip install -q aiperf; } \
	  || echo "bench-smoke: aiperf did not install; the client-overhead table compares with ab only"
	$(PY) benchmarks/bench_client_overhead.py --concurrency 4 --requests 200 --latency-requests 50 \
	  --aiperf .bench-venv/aiperf/bin/aiperf
	# Our openai transport beside AIPerf (and vllm bench serve, when .bench-venv/vllm has it: it pulls a
	# CUDA torch, so it is not installed here) on the OpenAI stand-in, rounds in rotating order.
	$(PY) benchmarks/bench_openai_clients.py --concurrency 4 --requests 60 --rounds 2 \
	  --aiperf .bench-venv/aiperf/bin/aiperf --vllm .bench-venv/vllm/bin/vllm
