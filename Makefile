# rnnbench: `make bench` runs the suite on the default profile and publishes html/; `make test` tests.
# Both create the project's environment (.venv) first. Variables: PROFILE (small|seed), MACHINE.

PYTHON311 ?= $(firstword $(wildcard /root/.pyenv/versions/3.11.*/bin/python3.11) $(shell command -v python3.11))
PYTHON37 ?= $(firstword $(wildcard /root/.pyenv/versions/3.7.*/bin/python3.7) $(shell command -v python3.7))
VENV := .venv
VENV37 := .venv-py37
PY := $(VENV)/bin/python
ASV := $(VENV)/bin/asv
PROFILE ?= small
# The profile is in every environment's name; it goes into the machine's name too, because asv's
# dashboard hides a selector with a single value but always shows the machine.
MACHINE ?= $(shell $(PYTHON311) tools/machine_name.py)-$(PROFILE)
ASV_RUN_ARGS ?=

# asv looks for `python3.11` on PATH to build its environments (pyenv's shims fail there).
export PATH := $(dir $(PYTHON311)):$(PATH)
# Framework caches stay out of the repository.
export TORCHINDUCTOR_CACHE_DIR ?= $(HOME)/.cache/rnnbench/torchinductor

.PHONY: bench run publish preview test clean
bench: run publish

$(VENV)/.installed: requirements-dev.txt
	@test -n "$(PYTHON311)" || { echo "make: no python3.11 found; set PYTHON311=/path/to/python3.11" >&2; exit 1; }
	$(PYTHON311) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

run: $(VENV)/.installed
	$(PY) tools/machine_name.py --register $(MACHINE)
	envs=$$($(PY) tools/asv_envs.py --profile $(PROFILE)) && \
	$(ASV) run --machine $(MACHINE) --show-stderr $$(printf -- '-E %s ' $$envs) $(ASV_RUN_ARGS)

publish: $(VENV)/.installed
	$(ASV) publish
	$(PY) tools/offline_dashboard.py

# Browsers refuse to let a file:// page read its own JSON: serve html/ on localhost instead.
preview: $(VENV)/.installed
	$(ASV) preview

$(VENV37)/.installed: tests/requirements-py37.txt
	@test -n "$(PYTHON37)" || { echo "make: no python3.7 found; set PYTHON37=/path/to/python3.7" >&2; exit 1; }
	$(PYTHON37) -m venv $(VENV37)
	$(VENV37)/bin/python -m pip install --quiet -r tests/requirements-py37.txt
	touch $@

test: $(VENV)/.installed $(VENV37)/.installed
	$(VENV37)/bin/python -m pytest -p no:cacheprovider tests/test_scenarios.py tests/test_reference.py
	$(PY) -m pytest tests

clean:
	rm -rf .asv $(VENV) $(VENV37)
