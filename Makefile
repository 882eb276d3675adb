# rnnbench: `make bench` runs the suite on the default profile and publishes html/; `make test` tests.
# Both create the project's environment (.venv) first. Variables: PROFILE (small|seed), STACKS (names from
# env_matrix/stacks.json; default: every stack of the profile), MACHINE.

PYTHON311 ?= $(firstword $(wildcard /root/.pyenv/versions/3.11.*/bin/python3.11) $(shell command -v python3.11))
PYTHON37 ?= $(firstword $(wildcard /root/.pyenv/versions/3.7.*/bin/python3.7) $(shell command -v python3.7))
VENV := .venv
PY := $(VENV)/bin/python
ASV := $(VENV)/bin/asv
PROFILE ?= small
STACKS ?=
# The profile is in every environment's name; it goes into the machine's name too, because asv's
# dashboard hides a selector with a single value but always shows the machine.
MACHINE ?= $(shell $(PYTHON311) tools/machine_name.py)-$(PROFILE)
ASV_RUN_ARGS ?=

# asv looks for `pythonX.Y` on PATH to build its environments (pyenv's shims fail there).
export PATH := $(dir $(PYTHON311)):$(dir $(PYTHON37)):$(PATH)
# The seed packages of every virtualenv (asv's and .venv-stacks'): pip 24.0 is the last pip for Python 3.7,
# and virtualenv's periodic update would otherwise fetch a newer one (outside pip) that breaks 3.7 venvs.
export VIRTUALENV_PIP ?= 24.0
export VIRTUALENV_SETUPTOOLS ?= 68.0.0
export VIRTUALENV_WHEEL ?= 0.42.0
export VIRTUALENV_NO_PERIODIC_UPDATE ?= 1
# Framework caches stay out of the repository.
export TORCHINDUCTOR_CACHE_DIR ?= $(HOME)/.cache/rnnbench/torchinductor

.PHONY: bench run publish preview test clean harness-check
bench: run publish

$(VENV)/.installed: requirements-dev.txt
	@test -n "$(PYTHON311)" || { echo "make: no python3.11 found; set PYTHON311=/path/to/python3.11" >&2; exit 1; }
	$(PYTHON311) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

run: $(VENV)/.installed
	$(PY) tools/machine_name.py --register $(MACHINE)
	envs=$$($(PY) tools/asv_envs.py --profile $(PROFILE) $(foreach s,$(STACKS),--stack $(s))) && \
	$(ASV) run --machine $(MACHINE) --show-stderr $$(printf -- '-E %s ' $$envs) $(ASV_RUN_ARGS)

publish: $(VENV)/.installed
	$(ASV) publish
	$(PY) tools/offline_dashboard.py

# tools/harness_check.py on a PyTorch and a TensorFlow cell (asv's median against a tight loop and the study's
# method). It times: run it on a quiet machine, after `make run` has built the two stacks' environments.
harness-check: $(VENV)/.installed
	$(PY) tools/harness_check.py --stack torch-2.13 pytorch nn.LSTM 1x320/CE-short
	$(PY) tools/harness_check.py --stack tensorflow-1.15 tensorflow LSTMBlockFusedCell 1x320/CE-short

# Browsers refuse to let a file:// page read its own JSON: serve html/ on localhost instead.
preview: $(VENV)/.installed
	$(ASV) preview

# The project's tests, then each CI stack's tests inside an environment with that stack's exact pins
# (.venv-stacks/NAME, built by tools/env_matrix.py from env_matrix/stacks.json).
test: $(VENV)/.installed
	$(PY) tools/env_matrix.py check
	$(PY) -m pytest -p no:cacheprovider tests
	@for stack in $$($(PY) tools/env_matrix.py list --ci); do \
		$(PY) tools/env_matrix.py test $$stack || exit 1; \
	done

clean:
	rm -rf .asv $(VENV) .venv-stacks
