# Thin aliases. Every target creates .venv and installs the project on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-test
RUNTIME_STAMP := $(VENV)/.installed
ARGS   ?=

.PHONY: run test lint format typecheck pytest bench bench-ci bench-compare load clean openapi soak
RESULTS := bench-results
BENCH_STAMP := $(VENV)/.installed-bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# `make run` installs the runtime dependencies only; the other targets add the test extras.
$(RUNTIME_STAMP): pyproject.toml runtime-requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -c runtime-requirements.txt -e .
	touch $(RUNTIME_STAMP)

$(STAMP): pyproject.toml runtime-requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -c runtime-requirements.txt -e '.[test,redis]'
	touch $(STAMP) $(RUNTIME_STAMP)

# `make bench` also draws the latency-under-load curve (matplotlib) and runs taskiq-redis
# next to the Redis source: the bench extra.
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -c runtime-requirements.txt -e '.[test,redis,bench]'
	touch $(BENCH_STAMP)

# Flags: make run ARGS="--http-port 9090 --workers 8"; or ORCHESTRATOR_HTTP_PORT=9090 make run
run: $(RUNTIME_STAMP)
	$(BIN)/orchestrator run $(ARGS)

test: lint typecheck pytest bench-ci

lint: $(STAMP)
	$(BIN)/ruff format --check src tests benchmarks docs/examples
	$(BIN)/ruff check src tests benchmarks docs/examples

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks docs/examples
	$(BIN)/ruff check --fix src tests benchmarks docs/examples

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest -q

# Machine-readable results go to $(RESULTS)/ (git-ignored; CI may keep it as an artifact).
# Every benchmark runs, the curve is drawn, then make fails if any target or gate was missed.
bench: $(BENCH_STAMP)
	@mkdir -p $(RESULTS); status=0; \
	$(BIN)/pytest -q benchmarks --benchmark-only --benchmark-columns=min,median,mean,max,ops \
		--benchmark-json=$(RESULTS)/pytest-benchmark.json || status=1; \
	$(BIN)/python benchmarks/load.py --check --gates --duration 2 --json $(RESULTS)/load.json \
		|| status=1; \
	$(BIN)/python benchmarks/debug_overhead.py --check --gates || status=1; \
	$(BIN)/python benchmarks/ablation.py --duration 1 --json $(RESULTS)/ablation.json \
		|| status=1; \
	$(BIN)/python benchmarks/refusal.py --check --gates || status=1; \
	$(BIN)/python benchmarks/under_load.py --check --gates --seconds 4 \
		--json $(RESULTS)/under_load.json \
		--ramp-png docs/overload-ramp.png || status=1; \
	$(BIN)/python benchmarks/redis_source.py --check --gates --json $(RESULTS)/redis_source.json \
		|| status=1; \
	$(BIN)/python benchmarks/plot_under_load.py $(RESULTS)/under_load.json \
		docs/performance-under-load.png || status=1; \
	exit $$status

# The CI gates only (benchmarks/gate.py, docs/performance.md "CI gates"): ratios to a
# baseline of the same round, medians of rounds, time without the waits for a CPU.
# `python benchmarks/ci_repeat.py` runs this 20 times with every core kept busy.
# Every gate runs and prints its line, then make fails if any failed.
bench-ci: $(STAMP)
	@mkdir -p $(RESULTS); status=0; \
	$(BIN)/pytest -q benchmarks --benchmark-only --benchmark-columns=median,ops --ci-quick \
		--benchmark-json=$(RESULTS)/pytest-benchmark.json || status=1; \
	$(BIN)/python benchmarks/load.py --quick --gates --json $(RESULTS)/load.json || status=1; \
	$(BIN)/python benchmarks/debug_overhead.py --quick --gates || status=1; \
	$(BIN)/python benchmarks/refusal.py --gates || status=1; \
	$(BIN)/python benchmarks/under_load.py --quick --gates --json $(RESULTS)/under_load.json \
		|| status=1; \
	$(BIN)/python benchmarks/redis_source.py --quick --gates \
		--json $(RESULTS)/redis_source.json || status=1; \
	exit $$status

# make bench-compare BASE=<git ref>: base and head measured alternately in this job.
bench-compare: $(STAMP)
	@test -n "$(BASE)" || { echo "make bench-compare: give the base, e.g. BASE=main" >&2; exit 2; }
	$(BIN)/python benchmarks/compare.py "$(BASE)" --json $(RESULTS)/compare.json

openapi: $(STAMP)
	$(BIN)/python -m orchestrator.http.openapi > docs/openapi.yaml.tmp
	mv docs/openapi.yaml.tmp docs/openapi.yaml

soak: $(STAMP)
	ORCHESTRATOR_SOAK=1 $(BIN)/pytest -q tests/reliability

clean:
	rm -rf $(RESULTS) $(VENV) build *.egg-info src/*.egg-info .pytest_cache .mypy_cache .ruff_cache .benchmarks .hypothesis
