# Everything a fresh machine needs: `make serve` runs the server on :8080,
# `make test` runs the whole test suite. Both create .venv and install first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8080

.PHONY: install serve test test-twisted-oldest lint bench-deps bench bench-smoke soak clean

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
	@$(PY) -c 'import twisted; print("pytest on Twisted", twisted.__version__)'
	$(PY) -m pytest -q

# The same suite on the oldest Twisted pyproject.toml accepts, in its own venv
# (`make test` runs on whatever pip resolves: the newest release on a fresh
# checkout, which is what CI has). Uses the browser and Redis `make test`
# installed. About 2 minutes once the venv exists.
TWISTED_OLDEST := 26.4.0
OLDEST := .venv-oldest

$(OLDEST)/.deps-stamp: pyproject.toml setup.cfg Makefile
	$(PYTHON) -m venv $(OLDEST)
	$(OLDEST)/bin/python -m pip install -q --upgrade pip setuptools wheel
	$(OLDEST)/bin/python -m pip install -q ".[test]" "twisted[websocket,tls]==$(TWISTED_OLDEST)"
	touch $@

test-twisted-oldest: $(OLDEST)/.deps-stamp
	$(OLDEST)/bin/python -m pip install -q --no-deps --force-reinstall --no-build-isolation .
	$(OLDEST)/bin/python -c 'import twisted, sys; v = twisted.__version__; print("pytest on Twisted", v); sys.exit(v != "$(TWISTED_OLDEST)")'
	$(OLDEST)/bin/python -m pytest -q

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
	rm -rf $(VENV) $(OLDEST) build dist src/*.egg-info
