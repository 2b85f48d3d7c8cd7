# Set-up and entry points. Override TORCH_SPEC for a GPU build, e.g.
#   make test TORCH_SPEC='torch==2.11.*'
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin

.PHONY: venv test report bench bench-smoke bench-compare reference lint clean slurm-start \
	slurm-stop mutate

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[dev,hf]"
	touch $@

venv: $(BIN)/.installed

# the tests in pytest-xdist workers, one per core (TEST_WORKERS=0: in this process); an idle
# worker takes tests from a busy one (worksteal), so the slow SLURM tests end no tail
TEST_WORKERS ?= auto

test: venv
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist worksteal

report: venv
	$(BIN)/charlm report $(REPORT_ARGS)

BENCH_STORAGE := runs/bench/storage

bench: venv
	$(BIN)/python -m pytest bench --benchmark-only --charlm-grid quick \
		--benchmark-autosave --benchmark-storage=$(BENCH_STORAGE)

# every benchmark body once, assertions included, no timing rounds (what CI runs)
bench-smoke: venv
	$(BIN)/python -m pytest bench --benchmark-only --charlm-smoke -q

bench-compare: venv
	$(BIN)/python -m pytest bench --benchmark-only --charlm-grid quick \
		--benchmark-storage=$(BENCH_STORAGE) --benchmark-compare \
		--benchmark-compare-fail=median:25%

reference: venv
	$(BIN)/charlm report --reference --force $(REPORT_ARGS)

# A one-node SLURM cluster on this host (root; installs slurm-wlm and munge with apt-get)
# for the sweep tests and for trying `charlm sweep --executor slurm`.
slurm-start:
	bash scripts/local_slurm.sh start

slurm-stop:
	bash scripts/local_slurm.sh stop

# Mutation testing (scripts/mutate.py; docs/developing.md#mutation-testing) in scratch copies
# under runs/mutate/, one process at a time; MODULES="analysis/timing.py analysis/grids.py"
# selects (default: every module of scripts/mutate_modules.toml). Not run by CI.
MODULES ?=

$(BIN)/.mutate-installed: pyproject.toml $(BIN)/.installed
	$(BIN)/python -m pip install -q -e ".[dev,hf,mutate]"
	touch $@

mutate: venv $(BIN)/.mutate-installed
	$(BIN)/python scripts/mutate.py $(if $(MODULES),--modules $(MODULES))

lint: venv
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .benchmarks
