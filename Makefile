# Everything a fresh machine needs: `make serve` runs the server on :8080,
# `make test` runs the whole test suite. Both create .venv and install first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8080

.PHONY: install serve test lint bench-deps bench bench-smoke soak clean

$(VENV)/.deps-stamp: pyproject.toml setup.cfg
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q ".[test]"
	touch $@

# Non-editable install: twistd finds the dropin in site-packages/twisted/plugins.
install: $(VENV)/.deps-stamp
	$(PY) -m pip install -q --no-deps --force-reinstall --no-build-isolation .

serve: install
	$(VENV)/bin/twistd --pidfile= -n txpulse --listen tcp:$(PORT)

test: install
	scripts/install-browser.sh
	scripts/install-redis.sh
	$(VENV)/bin/ruff check src tests twisted examples
	$(VENV)/bin/mypy
	$(PY) -m pytest -q

# The benchmark suite (issue 7): txpulse and its peers side by side, ~10 minutes.
# bench-smoke is the short version CI runs (no thresholds: that it works);
# soak holds 19,000 idle connections for 5 minutes (not in CI).
bench-deps: install
	scripts/install-bench-deps.sh
	$(PY) -m pip install -q -r bench/requirements.txt

bench: bench-deps
	$(PY) bench/run.py
	$(PY) bench/coreprofile.py

bench-smoke: bench-deps
	$(PY) bench/run.py --quick --servers txpulse,twisted
	$(PY) bench/coreprofile.py --quick

soak: bench-deps
	$(PY) bench/soak.py

lint: install
	$(VENV)/bin/ruff check src tests twisted examples
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) build dist src/*.egg-info
