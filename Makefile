# The two README commands: `make demo` and `make test`. Each installs what it
# needs on a fresh Debian machine (apt packages, then .venv with pip).

VENV        := .venv
# Debian's own interpreter (installed below as python3), the one a node runs: not
# whichever python3 comes first on PATH (a pyenv build here ran the portal ~15 %
# slower than Debian's optimised build; bench/README.md, "portal").
PYTHON      ?= /usr/bin/python3
APT_PACKAGES := mosquitto mosquitto-clients libpcap0.8 sqlite3 python3 python3-venv \
                chromium chromium-driver fonts-wqy-microhei \
                dnsmasq-base nftables iproute2 busybox curl util-linux systemd openssl \
                zbar-tools shellcheck postgresql
SUDO        := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEMO_ARGS   ?=
PYTEST_ARGS ?=

.PHONY: demo test test-pg bench faults load system-deps venv lock clean

demo: venv
	$(VENV)/bin/python -m demo $(DEMO_ARGS)

# Every test with the hub on SQLite, then the hub's database tests (those on the
# hub_db/hub_app fixtures) again with the hub on PostgreSQL: in `make test` the
# files of PG_QUICK (every route by role, every form's CSRF, the main areas;
# ~2 min),
# in `make test-pg` all of them. The ingest, store and multi-worker kill tests
# run on both backends in the first pass already.
PG_QUICK    := tests/test_roles.py tests/test_csrf.py tests/test_hub_web.py \
               tests/test_attendance.py tests/test_registration.py tests/test_records.py \
               tests/test_exports.py tests/test_hotspots.py tests/test_contests.py \
               tests/test_assessment.py tests/test_tickets.py tests/test_surveys.py \
               tests/test_open311.py
PG_PASS     := ROUNDS_REQUIRE_PG=1 ROUNDS_TEST_HUB_BACKEND=postgresql $(VENV)/bin/pytest

test: venv
	ROUNDS_REQUIRE_PG=1 $(VENV)/bin/pytest $(PYTEST_ARGS)
	$(PG_PASS) -q $(PG_QUICK)

test-pg: venv
	$(PG_PASS) $(PYTEST_ARGS)

bench: venv
	$(VENV)/bin/python bench/run_all.py

# The fault and load suites at full size (make test runs them reduced); each
# writes its counts to reliability/<suite>.json for the README.
faults: venv
	ROUNDS_SCALE=full $(VENV)/bin/pytest -q -s tests/faults

load: venv
	ROUNDS_SCALE=full $(VENV)/bin/pytest -q -s tests/load

# postgresql: only its server binaries, for the tests' own throwaway clusters
# (tests/pg.py); Debian's default cluster is not created (createcluster.d).
system-deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:$$missing"; \
	  case "$$missing " in *" postgresql "*) \
	    $(SUDO) mkdir -p /etc/postgresql-common/createcluster.d && \
	    echo "create_main_cluster = false" | \
	      $(SUDO) tee /etc/postgresql-common/createcluster.d/rounds.conf >/dev/null;; esac; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

venv: system-deps $(VENV)/.installed

# The venv is exactly the lock: every package at its pinned version, checked
# against its hashes, installed without resolving (--no-deps); then Rounds
# itself, built with the locked setuptools (--no-build-isolation).
$(VENV)/.installed: setup.py requirements/test.lock
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --require-hashes --no-deps -r requirements/test.lock
	$(VENV)/bin/pip install -q --no-deps --no-build-isolation -e .
	$(VENV)/bin/pip check
	touch $@

# Refresh both locks from setup.py's ranges (newest versions that fit), with
# every file's hash. Run it to take a new release on purpose, then make test
# and commit the locks with what changed. runtime.lock is what a node's first
# boot installs; test.lock adds the test extra at the same versions.
PIP_TOOLS   := pip-tools==7.7.0
LOCK_VENV   := build/lock-venv
LOCK_FLAGS  := --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url \
               --no-emit-find-links --upgrade -q
lock:
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install -q $(PIP_TOOLS)
	$(LOCK_VENV)/bin/pip-compile $(LOCK_FLAGS) -o requirements/runtime.lock setup.py
	$(LOCK_VENV)/bin/pip-compile $(LOCK_FLAGS) --extra test -o requirements/test.lock \
	    setup.py requirements/test.in

clean:
	rm -rf $(VENV) demo-data *.egg-info .pytest_cache
