# The two README commands: `make demo` and `make test`. Each installs what it
# needs on a fresh Debian machine (apt packages, then .venv with pip).

VENV        := .venv
PYTHON      ?= python3
APT_PACKAGES := mosquitto mosquitto-clients libpcap0.8 sqlite3 python3 python3-venv \
                chromium chromium-driver fonts-wqy-microhei \
                dnsmasq-base nftables iproute2 busybox curl util-linux systemd openssl \
                zbar-tools shellcheck
SUDO        := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEMO_ARGS   ?=
PYTEST_ARGS ?=

.PHONY: demo test bench faults load system-deps venv clean

demo: venv
	$(VENV)/bin/rounds-hub demo $(DEMO_ARGS)

test: venv
	$(VENV)/bin/pytest $(PYTEST_ARGS)

bench: venv
	$(VENV)/bin/python bench/run_all.py

# The fault and load suites at full size (make test runs them reduced); each
# writes its counts to reliability/<suite>.json for the README.
faults: venv
	ROUNDS_SCALE=full $(VENV)/bin/pytest -q -s tests/faults

load: venv
	ROUNDS_SCALE=full $(VENV)/bin/pytest -q -s tests/load

system-deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

venv: system-deps $(VENV)/.installed

$(VENV)/.installed: setup.py
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $@

clean:
	rm -rf $(VENV) demo-data *.egg-info .pytest_cache
