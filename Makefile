# Everything a fresh machine needs: `make serve` runs the server on :8080,
# `make test` runs the whole test suite. Both create .venv and install first
# (txpulse with every extra: .[test] includes .[all]).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8080
# `make serve HOST=127.0.0.1` listens on loopback only; by default, on every
# interface (the demo mounts are open: no authentication).
HOST ?=
LISTEN = tcp:$(PORT)$(if $(HOST),:interface=$(HOST))

.PHONY: install serve test test-twisted-oldest test-twisted-compat lint docs bench-deps bench bench-smoke soak clean

$(VENV)/.deps-stamp: pyproject.toml setup.cfg
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q ".[test]"
	touch $@

# Non-editable install: twistd finds the dropin in site-packages/twisted/plugins
# (an editable install does not put it there: see docs/install.md).
install: $(VENV)/.deps-stamp
	$(PY) -m pip install -q --no-deps --force-reinstall --no-build-isolation .

serve: install
	$(VENV)/bin/twistd --pidfile= -n txpulse --listen $(LISTEN)

test: install
	scripts/install-browser.sh
	scripts/install-redis.sh
	scripts/install-nginx.sh
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

# Twisted's own tests of twisted.web.websocket (issue 18), from the installed
# Twisted, against txpulse's WebSocketResource and WebSocketClientEndpoint
# (swapped in at run time): each test's outcome, then N of M passed; fails on
# anything but the deliberate differences the README lists. Also on the
# oldest Twisted when its venv exists. `make test` covers the same
# (tests/compat, with Twisted's WebSocket how-to examples) on both versions.
test-twisted-compat: $(VENV)/.deps-stamp
	PYTHONPATH=src $(PY) -m tests.compat.twistedsuite
	@if [ -x $(OLDEST)/bin/python ]; then echo; PYTHONPATH=src $(OLDEST)/bin/python -m tests.compat.twistedsuite; fi

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

# The documentation site (Sphinx + pydoctor's API reference) in docs/_build/html;
# any warning fails the build.
$(VENV)/.docs-stamp: pyproject.toml setup.cfg | $(VENV)/.deps-stamp
	$(PY) -m pip install -q ".[docs]"
	touch $@

docs: install $(VENV)/.docs-stamp
	$(VENV)/bin/sphinx-build -W --keep-going -q -b html docs docs/_build/html
	@echo "docs: file://$(CURDIR)/docs/_build/html/index.html"

lint: install
	$(VENV)/bin/ruff check src tests twisted examples
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) $(OLDEST) build dist src/*.egg-info docs/_build
