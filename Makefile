# Two commands do all the set-up on a fresh Debian machine (as root):
#   make lab   - install, then bring up a 4-node route-reflector fabric
#   make test  - install, then lint, type-check and run the whole suite
# While working: make test-fast - lint, type-check and the unit tier, in parallel.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: test test-fast lab install system-deps kube-bins lint typecheck pytest clean

test: install lint typecheck pytest

# tests/unit only (marker `unit`): no root, no daemons, no VMs; two workers.
test-fast: install lint typecheck
	$(BIN)/pytest -n 2 -q tests/unit $(PYTEST_ARGS)

system-deps:
	./scripts/install-system-deps

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

install: system-deps $(STAMP) kube-bins

# Kubernetes' own programs (kube-apiserver, kubelet, ...) of one pinned release,
# built from the Go module proxy into /var/cache/gingham/kubernetes once; the
# Kubernetes tests and `gingham lab up --kubernetes` run them.
kube-bins: system-deps
	./scripts/build-kubernetes >/dev/null

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck:
	$(BIN)/mypy

pytest:
	$(BIN)/pytest $(PYTEST_ARGS)

# A 4-node route-reflector fabric in network namespaces (LAB_ARGS adds options,
# e.g. LAB_ARGS="--topology racks --nodes 6 --encap vxlan"); it prints how to
# look around and how to tear it down (.venv/bin/gingham lab down).
LAB_ARGS ?=
lab: install
	$(BIN)/gingham lab up --topology rr --nodes 4 $(LAB_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
