# Two entry points (see README): `make demo` and `make test`. Both create or reuse the virtual
# environment in .venv and install what they need; nothing has to be installed by hand.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test venv system-packages clean

# The venv, plus the condor profile linked into ~/.config/snakemake so that
# `snakemake --profile condor` resolves, and the kernels compiled ahead of time so that
# gridding processes start without numba (s5p_lockdown.aot); both cheap and idempotent when
# done: they run every time.
venv: $(STAMP)
	@./workflow/scripts/install-profiles
	@$(BIN)/s5p-lockdown compile || echo "(continuing: numba's JIT is used instead)" >&2

# Reinstall when the dependency declaration changes. uv (from PyPI, into the venv) installs the
# same packages as pip from the same index, in ~10 s instead of ~45 s.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet 'uv>=0.5,<1'
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -e '.[test]'
	@touch $@

# Debian packages the test suite needs (browser for dashboard tests, debootstrap for the
# local HTCondor pool); installed only when missing.
system-packages:
	@./workflow/scripts/ensure-system-packages

# The main job on generated demo data: the Snakemake workflow with config/config.yaml
# (the workflow profile profiles/default is picked up automatically).
demo: venv
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/snakemake
	$(BIN)/s5p-lockdown summary results

# system packages first: the venv's kernel compilation needs gcc and g++
test: system-packages venv
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .snakemake results/*
