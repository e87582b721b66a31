# civicscore: the front door. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml clients/python/pyproject.toml constraints.txt 2>/dev/null | sha1sum | cut -c1-12)
BUF := tools/buf/node_modules/.bin/buf
BUF_STAMP := tools/buf/node_modules/.installed-$(shell sha1sum tools/buf/package-lock.json 2>/dev/null | cut -c1-12)
NODE_STAMP := clients/node/node_modules/.installed-$(shell sha1sum clients/node/package-lock.json 2>/dev/null | cut -c1-12)
# axe-core, which the console's browser tests load into Chromium from this machine (no CDN)
AXE_STAMP := tests/browser/node_modules/.installed-$(shell sha1sum tests/browser/package-lock.json 2>/dev/null | cut -c1-12)
CONSOLE ?= 127.0.0.1:8080
CONTRACT := contract/civicscore-v1.binpb
ADDR ?= 127.0.0.1:50051
DB ?= var/civicscore.db
# pytest-xdist processes for make test (whole files per process: a file's servers and clusters stay together).
# Two suit the 2-core machines CI uses; each cluster test holds a few dozen PostgreSQL connections.
# Files go out longest first, in the order tests/conftest.py gives them (tests/durations.json), not by test count.
PYTEST_WORKERS ?= 2
PYTEST_XDIST := $(if $(filter-out 0 1,$(PYTEST_WORKERS)),-n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder,-p no:xdist)

.PHONY: pdf-deps cluster-deps cluster help venv run test gen check-gen lint lint-proto release-contract bench clean test-node fuzz

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP):
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ./clients/python -e '.[dev]'
	touch $@

venv: $(STAMP) ## Create the virtual environment in .venv (from scratch when dependencies change)

run: $(STAMP) ## Start the server on $(ADDR) and the committee's console on http://$(CONSOLE), SQLite at $(DB), default rules, demo data on an empty database
	mkdir -p var/rules-candidates
	$(PY) -m civicscore --listen $(ADDR) --database sqlite:///$(DB) --rules rules --demo-data \
		--bootstrap-admin-token-file var/admin.token \
		--console-listen $(CONSOLE) --bootstrap-admin-password-file var/admin.password \
		--console-candidates var/rules-candidates

test: $(STAMP) $(NODE_STAMP) $(AXE_STAMP) check-gen lint lint-proto ## Generated code, lint, buf lint and breaking-change check, then all tests: Python, then the Node.js client's against the real server, even when Python's fail (PostgreSQL tests need CIVICSCORE_TEST_POSTGRES_URL)
	@# Both suites always run, so that a Python failure does not hide the Node.js results; the target fails if either does.
	@# Bytecode first: the tests start a few hundred server processes, and where PYTHONDONTWRITEBYTECODE is set
	@# (as on our machines) each would otherwise compile every module it imports from source again.
	@$(PY) -m compileall -q -j 0 server clients/python/civicscore_client tests bench >/dev/null
	@python=0; node=0; \
	echo "$(PY) -m pytest -ra $(PYTEST_XDIST) $(PYTEST_ARGS)"; \
	$(PY) -m pytest -ra $(PYTEST_XDIST) $(PYTEST_ARGS) || python=$$?; \
	echo "$(NODE_TESTS)"; \
	( $(NODE_TESTS) ) || node=$$?; \
	if [ $$python -ne 0 ] || [ $$node -ne 0 ]; then \
		echo "make test FAILED: the Python tests exited with $$python, the Node.js tests with $$node" >&2; \
		exit 1; \
	fi

fuzz: $(STAMP) ## Randomised fuzz run of every RPC against the real server, longer than make test's (CIVICSCORE_FUZZ_CALLS=200000 calls by default; CIVICSCORE_FUZZ_SEED=n repeats a run)
	CIVICSCORE_FUZZ_CALLS=$${CIVICSCORE_FUZZ_CALLS:-200000} CIVICSCORE_FUZZ_RANDOM=1 \
		$(PY) -m pytest -ra -o timeout=0 tests/test_fuzz.py $(PYTEST_ARGS)

gen: $(STAMP) ## Regenerate Python code and typed stubs from protos/
	$(PY) scripts/gen_protos.py

check-gen: $(STAMP) ## Fail if generated code differs from what protos/ produce
	$(PY) scripts/gen_protos.py --check

lint: $(STAMP) ## ruff and mypy over hand-written code
	$(VENV)/bin/ruff check server clients/python/civicscore_client tests bench scripts
	$(VENV)/bin/mypy server/civicscore clients/python/civicscore_client

$(BUF_STAMP): tools/buf/package.json tools/buf/package-lock.json
	@command -v npm >/dev/null || { echo "npm (Node.js 20) is needed for buf, the protos' lint and breaking-change checks" >&2; exit 1; }
	cd tools/buf && npm ci --no-audit --no-fund --loglevel=error
	touch $@

lint-proto: $(BUF_STAMP) ## buf lint (STANDARD) and buf breaking against the last released contract ($(CONTRACT))
	cd protos && ../$(BUF) lint
	$(BUF) breaking protos --against $(CONTRACT)

$(AXE_STAMP): tests/browser/package.json tests/browser/package-lock.json
	@command -v npm >/dev/null || { echo "npm (Node.js 20) is needed for axe-core, the console's accessibility checks" >&2; exit 1; }
	cd tests/browser && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(NODE_STAMP): clients/node/package.json clients/node/package-lock.json
	@command -v npm >/dev/null || { echo "npm (Node.js 20 or later) is needed to build and test the Node.js client in clients/node" >&2; exit 1; }
	cd clients/node && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The Node.js client's build and tests against the real server, for test-node and test (not a sub-make:
# `make -n test` must not run the Python tests, as a recipe line naming $(MAKE) would).
NODE_TESTS = cd clients/node && CIVICSCORE_PYTHON=$(abspath $(PY)) npm run build && CIVICSCORE_PYTHON=$(abspath $(PY)) npm test

test-node: $(STAMP) $(NODE_STAMP) ## Build the Node.js client (clients/node) and run its tests against the real server
	$(NODE_TESTS)

release-contract: $(BUF_STAMP) ## Make the current protos the released contract that later changes must not break
	$(BUF) build protos -o $(CONTRACT)

# The database of `make cluster` (created if missing on a running PostgreSQL).
CIVICSCORE_CLUSTER_DATABASE ?= postgresql+psycopg://postgres@127.0.0.1:5432/civicscore

cluster: $(STAMP) ## Three replicas on one PostgreSQL database (CIVICSCORE_CLUSTER_DATABASE, created if missing) behind nginx on $(ADDR), demo data loaded once; Ctrl-C stops all (needs make cluster-deps)
	$(PY) -m civicscore.cluster --database '$(CIVICSCORE_CLUSTER_DATABASE)' --listen $(ADDR) --replicas 3 \
		--workdir var/cluster --rules rules

# Debian keeps nginx in /usr/sbin, which is not on a non-root user's PATH.
NGINX_PATH := $(PATH):/usr/sbin:/sbin

cluster-deps: ## Install Debian's nginx (HTTP/2 and gRPC proxying), for make cluster and the cluster tests (root or sudo)
	@if PATH="$(NGINX_PATH)" command -v nginx >/dev/null; then echo "nginx is installed"; \
	else SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	$$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends nginx; fi
	@# grpc_pass needs HTTP/2 towards clients (http_v2) and the gRPC proxy module (built in unless disabled).
	@PATH="$(NGINX_PATH)" nginx -V 2>&1 | grep -q -- '--with-http_v2_module' \
		|| { echo "this nginx has no HTTP/2 module (nginx -V lacks --with-http_v2_module): install Debian's nginx" >&2; exit 1; }
	@! PATH="$(NGINX_PATH)" nginx -V 2>&1 | grep -q -- '--without-http_grpc_module' \
		|| { echo "this nginx was built without the gRPC proxy module: install Debian's nginx" >&2; exit 1; }
	@PATH="$(NGINX_PATH)" nginx -v

pdf-deps: ## Install Debian's Chromium, pdftotext and Noto fonts, for the report's PDF and its browser tests (root or sudo)
	@if command -v chromium >/dev/null && command -v pdftotext >/dev/null; then echo "chromium and pdftotext are installed"; \
	else SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); export DEBIAN_FRONTEND=noninteractive; \
	$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends chromium poppler-utils fonts-noto-core; fi

bench: $(STAMP) ## Run the benchmarks and print the figures (writes bench/out/)
	$(PY) -m bench

clean: ## Remove the virtual environment and local data
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache clients/node/node_modules clients/node/dist clients/node/src/gen
