# Two entry points for a fresh clone:
#   make reproduce   set up (.venv) and run the main job (the paper's experiment)
#   make test        set up (.venv) and run the test suite
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
OUT    ?= results
# OpenBLAS's threads slowed small and mid-size LAPACK calls several-fold on the
# project's 2-core machines (see docs/benchmarks.md): one BLAS thread by default.
export OPENBLAS_NUM_THREADS ?= 1

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e ".[gan,test,bench]"
	touch $(STAMP)

.PHONY: setup reproduce test test-slow bench lint
setup: $(STAMP)

reproduce: $(STAMP)
	$(VENV)/bin/rmtgan reproduce --out $(OUT)

test: $(STAMP)
	$(PY) -m pytest -q

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

bench: $(STAMP)
	$(PY) -m pytest benchmarks -q -m "slow or not slow" --benchmark-enable --benchmark-columns=min,median,mean,rounds

lint: $(STAMP)
	$(VENV)/bin/ruff check rmtgan tests benchmarks examples
