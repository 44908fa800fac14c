# The two commands of the README:
#   make demo   set everything up and run the demo (simulated fleet, scan, dashboard)
#   make test   set everything up and run the whole test suite (SQLite and PostgreSQL)
# Both install Debian packages (root, or sudo) and a virtual environment in .venv; demo only the runtime part.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Debian packages the application needs (RTSP server: GStreamer + its Python bindings for /usr/bin/python3;
# ffmpeg to encode the simulator's clips; iproute2 for namespace fleets), and those only the tests need
# (Chromium for the browser tests, a Thai font for them, PostgreSQL client tools). `make demo` installs only
# the first set and the runtime requirements, so a fresh machine gets to the dashboard sooner.
DEB_RUNTIME := ffmpeg gir1.2-gst-rtsp-server-1.0 gstreamer1.0-tools gstreamer1.0-plugins-base \
	gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly gstreamer1.0-plugins-bad gstreamer1.0-libav \
	gstreamer1.0-rtsp python3-gi iproute2
DEB_TEST := chromium fonts-thai-tlwg postgresql-client socat
PYTEST_ARGS ?=

.PHONY: demo test install install-runtime system-deps venv services clean

demo: install-runtime
	$(VENV)/bin/cctv-monitor demo

test: install services
	$(PY) -m pytest $(PYTEST_ARGS)

install-runtime:
	@$(MAKE) --no-print-directory system-deps PACKAGES="$(DEB_RUNTIME)"
	@$(MAKE) --no-print-directory $(VENV)/.runtime

install:
	@$(MAKE) --no-print-directory system-deps PACKAGES="$(DEB_RUNTIME) $(DEB_TEST)"
	@$(MAKE) --no-print-directory $(VENV)/.dev

system-deps:
	@missing=$$(for p in $(PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q "install ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "Installing Debian packages: $$missing"; \
		SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	else echo "Debian packages present."; fi

venv: $(VENV)/.dev

$(VENV)/.runtime: requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

# PostgreSQL, Redis and RabbitMQ are started by the machine; start PostgreSQL if it has stopped.
services:
	@pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null || { \
		command -v pg_ctlcluster >/dev/null && pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql | head -1) main start || true; }

clean:
	rm -rf $(VENV) build *.egg-info benchmarks/.venv-baseline
