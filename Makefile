# medcell — the commands a newcomer types. See README.md.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: run test test-fast lint format bench venv engine images lock lock-upgrade browser nginx prometheus fonts axe clean lab lab-down

## Python environment: created on first use, refreshed when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

## Docker Engine: use the running one, or install and start it (needs root).
engine:
	bash deploy/docker-engine.sh

## Images: offline base, facility and gateway; rebuilt only when their inputs change.
images: venv engine
	PYTHON=$(abspath $(BIN)/python) bash deploy/build-images.sh

## Lock files (deploy/locks/IMAGE.txt): what each image installs, pinned with hashes. `lock` after a
## dependency was added or removed (keeps the other pins); `lock-upgrade` takes the newest releases
## pyproject.toml's ranges allow (security updates). Both need the package index.
lock: venv
	UV=$(abspath $(BIN)/uv) PYTHON=$(abspath $(BIN)/python) bash deploy/lock.sh

lock-upgrade: venv
	UV=$(abspath $(BIN)/uv) PYTHON=$(abspath $(BIN)/python) bash deploy/lock.sh --upgrade

## Chromium for the browser tests (Debian's package; Playwright's own download cannot work offline).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  test "$$(id -u)" = 0 || { echo "Error: chromium missing; install it: apt-get install -y chromium" >&2; exit 1; }; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

## nginx for the gateway tests (Debian's package, the one in the gateway image). Not started:
## the tests run it themselves on loopback with their own configuration.
nginx:
	@command -v nginx >/dev/null 2>&1 || test -x /usr/sbin/nginx || { \
	  test "$$(id -u)" = 0 || { echo "Error: nginx missing; install it: apt-get install -y nginx" >&2; exit 1; }; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null; }

## Prometheus and promtool for the metrics tests (Debian's package; the tests start their own).
prometheus:
	@command -v promtool >/dev/null 2>&1 || test -x /usr/bin/promtool || { \
	  test "$$(id -u)" = 0 || { echo "Error: prometheus missing; install it: apt-get install -y prometheus" >&2; exit 1; }; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }

## DejaVu fonts for the PDF export tests (Debian's package, the one in the facility image).
fonts:
	@test -f /usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf || { \
	  test "$$(id -u)" = 0 || { echo "Error: DejaVu fonts missing; install them: apt-get install -y fonts-dejavu-core" >&2; exit 1; }; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-dejavu-core >/dev/null; }

## axe-core for the browser tests' accessibility audit: the version tests/web/axe/package-lock.json
## pins (with its hash), installed once; with it in place nothing is fetched (offline-safe).
AXE := tests/web/axe/node_modules/axe-core/axe.min.js
axe: $(AXE)

$(AXE): tests/web/axe/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "Error: npm missing; install it: apt-get install -y npm" >&2; exit 1; }
	npm ci --prefix tests/web/axe --no-audit --no-fund --ignore-scripts
	touch $@

run: images
	$(BIN)/medcell up
	$(BIN)/python -m provisioner.cli.demo

test: images browser nginx prometheus fonts axe
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/pytest --docker --browser --install --lab --durations=25 $(PYTEST_ARGS)

## In-process tests only: no Docker, no browser, no process or server started (-m "not process").
test-fast: venv
	$(BIN)/pytest -m "not process" $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## A 3-node cluster on this machine (root): node1..node3, each with its own Docker Engine in its own
## network namespace; see deploy/lab.sh for exec, cut, heal. `make lab-down` removes all of it.
lab: images
	bash deploy/lab.sh up

lab-down:
	bash deploy/lab.sh down

bench: images
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) deploy/.build
