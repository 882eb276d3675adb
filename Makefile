# rnnbench: `make bench` runs the suite on the default profile and publishes html/; `make test` tests.
# Both create the project's environment (.venv) first. Variables: PROFILE (small|seed), STACKS (names from
# env_matrix/stacks.json; default: every stack of the profile), MACHINE.

PYTHON311 ?= $(firstword $(wildcard /root/.pyenv/versions/3.11.*/bin/python3.11) $(shell command -v python3.11))
PYTHON37 ?= $(firstword $(wildcard /root/.pyenv/versions/3.7.*/bin/python3.7) $(shell command -v python3.7))
PYTHON312 ?= $(firstword $(wildcard /root/.pyenv/versions/3.12.*/bin/python3.12) $(shell command -v python3.12))
VENV := .venv
# asv-spyglass (tools/compare.py) needs Python >= 3.12: its own environment.
COMPARE_VENV := .venv-compare
PY := $(VENV)/bin/python
ASV := $(VENV)/bin/asv
PROFILE ?= small
STACKS ?=
# The profile is in every environment's name; it goes into the machine's name too, because asv's
# dashboard hides a selector with a single value but always shows the machine.
MACHINE ?= $(shell $(PYTHON311) tools/machine_name.py)-$(PROFILE)
ASV_RUN_ARGS ?=
# make compare A=<stack> B=<stack> [FACTOR=1.1] [SPLIT=1] [COMMIT=sha]
A ?=
B ?=
FACTOR ?= 1.1

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

.PHONY: bench run matrix compare publish preview test chromium clean harness-check speed-check
bench: run publish

$(VENV)/.installed: requirements-dev.txt
	@test -n "$(PYTHON311)" || { echo "make: no python3.11 found; set PYTHON311=/path/to/python3.11" >&2; exit 1; }
	$(PYTHON311) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

$(COMPARE_VENV)/.installed: requirements-compare.txt
	@test -n "$(PYTHON312)" || { echo "make: no python3.12 found (asv-spyglass needs it); set PYTHON312=/path/to/python3.12" >&2; exit 1; }
	$(PYTHON312) -m venv $(COMPARE_VENV)
	$(COMPARE_VENV)/bin/python -m pip install --quiet -r requirements-compare.txt
	touch $@

run: $(VENV)/.installed
	$(PY) tools/machine_name.py --register $(MACHINE)
	envs=$$($(PY) tools/asv_envs.py --profile $(PROFILE) $(foreach s,$(STACKS),--stack $(s))) && \
	$(ASV) run --machine $(MACHINE) --show-stderr --record-samples $$(printf -- '-E %s ' $$envs) $(ASV_RUN_ARGS)

# The whole matrix on a small disk: entry by entry, each environment deleted after its run; run it again to
# resume (asv's --skip-existing skips what already has results at this commit). KEEP_ENVS=1 keeps them.
# The machine's speed is checked first (SPEED_CHECK=0: not at all); SPEED_WAIT=MINUTES waits out a slow spell;
# SPEED_RETRIES=N runs an entry again (up to N times) when the machine slowed down during it. STACKS=torch-2.13
# STEADY_REFERENCE=1: a machine whose reference rests on fewer than 3 runs files the control stack when the
# checks before and after it agree (tools/matrix_run.py says when).
matrix: $(VENV)/.installed
	$(PY) tools/machine_name.py --register $(MACHINE)
	$(PY) tools/matrix_run.py --machine $(MACHINE) --profile $(PROFILE) $(foreach s,$(STACKS),--stack $(s)) \
		$(if $(KEEP_ENVS),--keep-envs) $(if $(filter 0,$(SPEED_CHECK)),,--speed-check $(if $(SPEED_WAIT),--wait-for-speed $(SPEED_WAIT)) $(if $(SPEED_RETRIES),--retries $(SPEED_RETRIES)) $(if $(STEADY_REFERENCE),--steady-reference)) \
		-- $(ASV_RUN_ARGS)

# Two stacks (framework releases) measured at one suite commit, side by side with asv's significance test.
compare: $(COMPARE_VENV)/.installed
	@test -n "$(A)" && test -n "$(B)" || { echo "make compare: name two stacks, e.g. make compare A=torch-1.0 B=torch-1.4-warpctc" >&2; exit 2; }
	$(COMPARE_VENV)/bin/python tools/compare.py $(A) $(B) --machine $(MACHINE) --profile $(PROFILE) --factor $(FACTOR) \
		$(if $(SPLIT),--split) $(if $(COMMIT),--commit $(COMMIT))

publish: $(VENV)/.installed
	$(ASV) publish
	$(PY) tools/offline_dashboard.py
	$(PY) tools/charts.py

# Is this machine at its usual speed? A few control cells against what results/$(MACHINE) says it does;
# run it (on an idle machine) before and after a session's `make matrix`, whose times join older ones.
speed-check: $(VENV)/.installed
	$(PY) tools/speed_check.py --machine $(MACHINE) --profile $(PROFILE)

# tools/harness_check.py on a PyTorch and a TensorFlow cell (asv's median against a tight loop and the study's
# method). It times: run it on a quiet machine, after `make run` has built the two stacks' environments.
harness-check: $(VENV)/.installed
	$(PY) tools/harness_check.py --stack torch-2.13 pytorch nn.LSTM 1x320/CE-short
	$(PY) tools/harness_check.py --stack tensorflow-1.15 tensorflow LSTMBlockFusedCell 1x320/CE-short

# Browsers refuse to let a file:// page read its own JSON: serve html/ on localhost instead.
preview: $(VENV)/.installed
	$(ASV) preview

# The project's tests, and each CI stack's tests inside an environment with that stack's exact pins
# (.venv-stacks/NAME, built by tools/env_matrix.py from env_matrix/stacks.json): TEST_JOBS of them at once
# (tools/run_tests.py), each one's log printed whole when it ends, then a summary.
TEST_JOBS ?= 2
test: $(VENV)/.installed $(COMPARE_VENV)/.installed chromium
	$(PY) tools/env_matrix.py check
	$(PY) tools/run_tests.py --jobs $(TEST_JOBS)

# Debian's Chromium, for tests/test_dashboard.py (headless, over html/ on localhost); installed where missing.
chromium:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq chromium >/dev/null; } || echo "make: could not install chromium; tests/test_dashboard.py will skip" >&2

clean:
	rm -rf .asv $(VENV) $(COMPARE_VENV) .venv-stacks
