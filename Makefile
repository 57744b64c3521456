# dyadflow: two commands do all the set-up on a fresh Debian machine with Python 3.11.
#   make demo   create .venv, install, run the whole pipeline on the bundled demo study
#   make test   create or update .venv, run make lint, then the whole test suite
#   make lint   ruff format/check, snakefmt, snakemake --lint, duplicate code, mkdocs build --strict
#   make report Snakemake's HTML report of the demo build (validation tables, cohort charts)
#   make test-cluster   the SLURM path on a real one-node cluster (root; tests/cluster/run.sh)
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
CORES ?= 2
# the stamp changes when the dependency pins change, so `make` reinstalls then
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt 2>/dev/null | sha256sum | cut -c1-16)
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: report demo test test-cluster lint system-deps venv clean demo-data catalogues bench

demo: venv
	$(BIN)/snakemake --cores $(CORES) --configfile config/config.yaml
	@$(BIN)/dyadflow outputs --results results

# Snakemake's HTML report of the demo build: validation tables and cohort charts
report: demo
	$(BIN)/snakemake --configfile config/config.yaml --report results/report.html
	@echo "wrote results/report.html"

# two pytest workers (pytest-xdist), one test file per worker at a time (module fixtures are
# made once), the slowest files first; the demo is built once for the session (tests/conftest.py;
# docs/contributing.md, "Tests": the figures)
test: venv lint
	$(BIN)/python -m pytest -n $(CORES) --dist loadfile --no-loadscope-reorder

# A real one-node SLURM on 127.0.0.1 (installs slurm-wlm and munge if missing), the demo
# study run through it with --profile profiles/slurm, outputs compared with a local run.
test-cluster: venv
	tests/cluster/run.sh

# issue 18's quick benchmarks (10,000 dyads; 6 M dial rows): one table of ratios and targets
# (a few minutes; the full sizes are commands in bench/RESULTS.md)
bench: venv
	PYTHONPATH=. $(BIN)/python bench/run_all.py

# formatting and lint (settings in pyproject.toml), no block of 6+ lines repeated inside the
# package, and the documentation site builds without a warning (docs/contributing.md)
lint: venv
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/snakemake --lint --configfile config/config.yaml
	$(BIN)/pylint --disable=all --enable=duplicate-code --min-similarity-lines=6 dyadflow
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

venv: system-deps $(STAMP)

system-deps:
	@scripts/system-deps.sh

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "dyadflow needs Python 3.11, found " + sys.version.split()[0])'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $@

# regenerate the bundled demo study (it is deterministic: the bytes do not change)
demo-data: venv
	$(BIN)/dyadflow demo-data --out data/demo
	$(BIN)/dyadflow demo-dial --out data/demo/dial

# the clinician copy's message catalogues: extract dyadflow/report/locale/dyadflow.pot with Babel
# (babel.cfg) and merge it into the committed sv and nb .po files (compiled in memory at
# run time by dyadflow/report/i18n.py; no .mo file is written or committed)
catalogues: venv
	$(BIN)/pybabel extract -F babel.cfg -k N_ --no-location --sort-output --omit-header -o dyadflow/report/locale/dyadflow.pot .
	$(BIN)/pybabel update -i dyadflow/report/locale/dyadflow.pot -d dyadflow/report/locale -D dyadflow --no-location --no-fuzzy-matching -w 100

clean:
	rm -rf results logs .snakemake
