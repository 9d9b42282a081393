# Two entry points (see README): `make demo` and `make test`. Both create or reuse the virtual
# environment in .venv and install what they need; nothing has to be installed by hand.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test venv system-packages clean

venv: $(STAMP)

# Reinstall when the dependency declaration changes.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

# Debian packages the test suite needs (browser for dashboard tests, debootstrap for the
# local HTCondor pool); installed only when missing.
system-packages:
	@./workflow/scripts/ensure-system-packages

demo: venv
	$(BIN)/s5p-lockdown synth results/demo/archive --start 2020-03-16 --end 2020-03-17 --baseline-year 2019
	$(BIN)/s5p-lockdown inspect results/demo/archive/2020/03/16/*.nc

test: venv system-packages
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .snakemake results/*
