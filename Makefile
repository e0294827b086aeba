# iolens: the two commands of the README, and a few more.
#   make demo   set up (apt, headers, venv) then record the bundled demo workload and analyse it
#   make test   set up then run every test tier, the real-BPF one included (as root)
VENV ?= .venv
PY := $(VENV)/bin/python
IOLENS := $(VENV)/bin/iolens
DEMO_DIR ?= /tmp/iolens-demo-$(shell date +%Y%m%d-%H%M%S)

.PHONY: setup demo test test-fast bench evaluate clean

setup:
	IOLENS_EXTRAS=test,scenarios,spark bash .ci/setup.sh $(VENV)

demo: setup
	$(IOLENS) record -o $(DEMO_DIR) --demo
	$(IOLENS) analyze $(DEMO_DIR)

test: setup
	IOLENS_REQUIRE_BPF=1 $(PY) -m pytest -q -ra tests

test-fast:
	$(PY) -m pytest -q -m "not bpf and not slow" tests

bench: setup
	$(PY) benchmarks/run_all.py

# Regenerate every table and figure of docs/evaluation.md (~25 min, as root): set-up with the
# extras the benchmarks use, then every benchmark, then the document and figures.
evaluate:
	$(MAKE) setup
	$(PY) benchmarks/evaluate.py

clean:
	rm -rf $(VENV) .pytest_cache
