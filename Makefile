# Two commands for a fresh machine with Python 3.10+ and make:
#   make lab   create .venv if absent, install, open JupyterLab on notebooks/
#   make test  create .venv if absent, install, run every test and notebook
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Jupyter refuses to run as root (containers, cloud machines, CI) unless told to.
LAB_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)
LAB_ARGS ?=

.PHONY: lab test test-all test-blas install notebooks exercises clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

lab: $(STAMP)
	$(BIN)/jupyter lab $(LAB_ROOT) $(LAB_ARGS) notebooks/

test: test-all test-blas

# the library tests and every notebook (nbval)
test-all: $(STAMP)
	$(BIN)/python -m pytest

# the library tests once more under a second OpenBLAS kernel (tools/blas_kernel.py):
# a test that relies on one kernel's rounding fails here, not on the next machine
test-blas: $(STAMP)
	@kernel=$$($(BIN)/python tools/blas_kernel.py); \
	if [ -z "$$kernel" ]; then echo "test-blas: no second OpenBLAS kernel for this machine, skipped"; \
	else echo "library tests again with OPENBLAS_CORETYPE=$$kernel"; \
	OPENBLAS_CORETYPE=$$kernel $(BIN)/python -m pytest -q -o addopts=-ra -p no:nbval --doctest-modules tests turboquant_lab; fi

# maintainer targets
notebooks: $(STAMP)
	$(BIN)/python tools/execute_notebooks.py

exercises: $(STAMP)
	$(BIN)/python tools/make_exercises.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
