# One place for the commands the README gives. Everything installs into ./.venv.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint bench clean-venv

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip setuptools wheel

# Runtime dependencies only: what the app needs.
$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

# Export + test tooling. sam2 is installed without its declared deps (torchvision would pull a
# second, CUDA torch) and without build isolation (its build needs the torch we already have).
$(VENV)/.dev: pyproject.toml $(VENV)/.runtime
	$(BIN)/pip install -q -e ".[export,dev]"
	SAM2_BUILD_CUDA=0 $(BIN)/pip install -q --no-deps --no-build-isolation sam2==1.1.0
	touch $@

run: $(VENV)/.runtime
	$(BIN)/sam2-annotator $(ARGS)

test: $(VENV)/.dev
	QT_QPA_PLATFORM=$${QT_QPA_PLATFORM:-offscreen} $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.dev
	$(BIN)/ruff check sam2_annotator tests
	$(BIN)/ruff format --check sam2_annotator tests

clean-venv:
	rm -rf $(VENV)
