# anklume — the primary interface. `make` alone prints help.
# Targets are thin: logic lives in scripts/ (TypeScript on Bun) and roles/.

SHELL := /bin/bash
.DEFAULT_GOAL := help

BUN ?= bun
# Ansible lives in a virtualenv that bootstrap.sh creates (PyPI's ansible).
ANKLUME_VENV ?= /opt/anklume/venv
ifneq ($(wildcard $(ANKLUME_VENV)/bin/ansible-playbook),)
export PATH := $(ANKLUME_VENV)/bin:$(PATH)
endif

# Input: the infra/ directory when infra/base.yml exists, else infra.yml (as v1).
INFRA_SRC := $(if $(wildcard infra/base.yml),infra,infra.yml)
GEN := $(BUN) scripts/generate.ts

.PHONY: help sync sync-dry sync-clean test test-unit test-integration typecheck lint fmt \
        deno-check bench-sync ci

help: ## Show this help, grouped by topic
	@awk 'BEGIN {FS = ":.*## "} \
	  /^# ==== / {sub(/^# ==== /, ""); sub(/ =+$$/, ""); printf "\n\033[1m%s\033[0m\n", $$0; next} \
	  /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-20s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST) \
	  | { if [ -t 1 ] && [ -z "$$NO_COLOR" ]; then cat; else sed 's/\x1b\[[0-9;]*m//g'; fi }
	@echo

# ==== Generator (infra.yml -> Ansible files) ====

infra.yml:
	@cp infra.example.yml infra.yml
	@echo "No infra.yml here: copied infra.example.yml to infra.yml (edit it, then run make sync again)." >&2

sync: $(INFRA_SRC) ## Generate inventory/, group_vars/, host_vars/ from infra.yml (or infra/)
	@$(GEN) $(INFRA_SRC)

sync-dry: $(INFRA_SRC) ## Show what sync would write, write nothing
	@$(GEN) $(INFRA_SRC) --dry-run

sync-clean: $(INFRA_SRC) ## Sync, then delete orphan files (asks first on a terminal; YES=1 skips)
	@$(GEN) $(INFRA_SRC) --clean-orphans $(if $(YES),--yes)

# ==== Development and tests ====

test: ## Run every test (unit, property, CLI, integration on a real Incus)
	$(BUN) test

test-unit: ## Run the tests that need no Incus daemon
	$(BUN) test lib scripts

typecheck: ## Type-check with tsc (strict)
	$(BUN) x tsc --noEmit

lint: ## Biome lint and format check
	$(BUN) x biome check .

fmt: ## Format and fix with Biome
	$(BUN) x biome check --write .

deno-check: ## Run every script's --help under Deno
	@set -e; for s in scripts/*.ts; do \
	  ./node_modules/.bin/deno run -A "$$s" --help >/dev/null || { echo "deno: $$s --help failed" >&2; exit 1; }; \
	  echo "deno ok: $$s"; done

bench-sync: ## Benchmark sync on 1,000 machines against a plain-write baseline
	$(BUN) bench/sync.ts

# ==== Apply (Incus reconciliation) ====

# safe_apply_wrap(target, command, limit): snapshots before and cleanup after
# (defined in the Snapshots section). Until then it only runs the command.
define safe_apply_wrap
	$(2)
endef

# ==== Snapshots and rollback ====

# ==== Network guard ====

# ==== Host setup ====
