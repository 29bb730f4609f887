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

# The Incus remote every incus call goes to (docs/remote.md): INCUS_REMOTE=
# on the command line or in the environment, else global.incus_remote as
# make sync wrote it in group_vars/all.yml. Exported only when set: the
# incus CLI and every script read it (an empty value is this machine).
ifeq ($(origin INCUS_REMOTE),undefined)
INCUS_REMOTE := $(shell sed -n "s/^incus_remote: *['\"]\{0,1\}\([^'\"]*\)['\"]\{0,1\} *$$/\1/p" group_vars/all.yml 2>/dev/null)
endif
ifneq ($(strip $(INCUS_REMOTE)),)
export INCUS_REMOTE
endif
# The remote as chosen above, for the targets that empty INCUS_REMOTE.
ANKLUME_REMOTE := $(strip $(INCUS_REMOTE))

# Input: the infra/ directory when infra/base.yml exists, else infra.yml (as v1).
INFRA_SRC := $(if $(wildcard infra/base.yml),infra,infra.yml)
GEN := $(BUN) scripts/generate.ts

.PHONY: help sync sync-dry sync-clean test test-unit typecheck lint fmt \
        deno-check bench-sync bench-differential bench-yaml-differential

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

help: ## Show this help, grouped by topic
	@awk 'BEGIN {FS = ":.*## "} \
	  /^# ==== / {sub(/^# ==== /, ""); sub(/ =+$$/, ""); printf "\n\033[1m%s\033[0m\n", $$0; next} \
	  /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-20s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST) \
	  | { if [ -t 1 ] && [ -z "$$NO_COLOR" ]; then cat; else sed 's/\x1b\[[0-9;]*m//g'; fi }
	@echo

test: ## Run every test (unit, property, CLI, integration on a real Incus)
	$(BUN) test --timeout 600000

test-unit: ## Run the unit tests next to the code (lib/)
	$(BUN) test --timeout 600000 lib

typecheck: ## Type-check with tsc (strict)
	$(BUN) x tsc --noEmit

fmt: ## Format and fix with Biome
	$(BUN) x biome check --write .

deno-check: ## Run every script's --help under Deno
	@set -e; for s in $(filter-out %.test.ts,$(wildcard scripts/*.ts)); do \
	  ./node_modules/.bin/deno run -A "$$s" --help >/dev/null || { echo "deno: $$s --help failed" >&2; exit 1; }; \
	  echo "deno ok: $$s"; done

bench-sync: ## Benchmark sync on 1,000 machines against a plain-write baseline
	$(BUN) bench/sync.ts

bench-differential: ## Compare the compiled shape check with valibot on many documents [RUNS=20000 SEED=]
	$(BUN) bench/differential.ts --runs $(or $(RUNS),20000) $(if $(SEED),--seed $(SEED))

bench-yaml-differential: ## Compare the fast YAML path with the exact one on many documents [RUNS=100000 SEED=]
	$(BUN) bench/yaml-differential.ts --runs $(or $(RUNS),100000) $(if $(SEED),--seed $(SEED))

.PHONY: mutation
mutation: ## Mutation score per pure module (Stryker, slow, not in CI) [MODULES=cidr,naming FC_RUNS=20 FORCE=1]
	$(BUN) scripts/mutation.ts $(if $(MODULES),--modules $(MODULES)) $(if $(FC_RUNS),--runs $(FC_RUNS)) $(if $(FORCE),--force)

# ==== Quality (see docs/quality.md) ====

LINT := $(BUN) scripts/lint.ts
.PHONY: lint-ts lint-ansible lint-yaml lint-shell lint-md

lint: ## Run every validator (ts, ansible, yaml, shell, syntax, md); report each; fail if any fails
	@$(LINT)

lint-ts: ## Biome (lint + format check) and the strict type check
	@$(LINT) ts

lint-ansible: ## ansible-lint, production profile, on the roles and playbooks
	@$(LINT) ansible

lint-yaml: ## yamllint (.yamllint.yml) on every YAML file the project owns
	@$(LINT) yaml

lint-shell: ## shellcheck on every shell file and on the Makefile's recipes
	@$(LINT) shell

lint-md: ## markdownlint on every *.md (skipped with a message when not installed)
	@$(LINT) md

syntax: ## ansible-playbook --syntax-check of every playbook
	@$(LINT) syntax

.PHONY: audit audit-json dead-code
audit: ## Code audit: lines per kind, test ratio per module, untested modules, roles by size, dead code
	@$(BUN) scripts/code-audit.ts

audit-json: ## Code audit as JSON in reports/audit.json (format: docs/quality.md)
	@$(BUN) scripts/code-audit.ts --json --output reports/audit.json

dead-code: ## Exports nothing imports, files nothing reaches, unused shell variables
	@$(BUN) scripts/code-audit.ts --dead-code

# The quality scripts by absolute path, so `make -f <repo>/Makefile` works from
# another directory (the tests run it on scratch trees).
QUALITY_SCRIPTS := $(patsubst %/,%,$(dir $(abspath $(firstword $(MAKEFILE_LIST)))))/scripts

.PHONY: matrix-coverage matrix-generate
matrix-coverage: ## Behaviour-matrix coverage per capability and depth; fails below THRESHOLD (percent) [THRESHOLD=0]
	@$(BUN) $(QUALITY_SCRIPTS)/matrix-coverage.ts $(if $(THRESHOLD),--threshold "$(THRESHOLD)")

.PHONY: smoke
smoke: ## Try the toolchain on this host: sync-dry, check, lint, snap-list, incus list; each step can fail [STEPS=1,3-5]
	@$(BUN) $(QUALITY_SCRIPTS)/smoke.ts $(if $(STEPS),--steps "$(STEPS)")

matrix-generate: ## Draft tests for uncovered matrix cells into reports/matrix-drafts/ [AI_MODE=none|ollama|openai AI_URL= AI_MODEL= LIMIT=10 DRY_RUN=1]
	@$(BUN) $(QUALITY_SCRIPTS)/ai-matrix-test.ts $(if $(AI_MODE),--mode "$(AI_MODE)") $(if $(AI_URL),--url "$(AI_URL)") \
	  $(if $(AI_MODEL),--model "$(AI_MODEL)") $(if $(LIMIT),--limit "$(LIMIT)") $(if $(DRY_RUN),--dry-run)

# ==== Apply (Incus reconciliation) ====

# safe_apply_wrap(target, command, limit): owned by the Snapshots section
# (SNAPSHOT_APPLY is defined there). One recipe line per step, so the first
# failure stops make (a skipped step's line says so in the line that starts
# the command: each recipe line is a shell, about 3 ms of a no-op apply):
#  1. unless ANKLUME_SKIP_NETWORK_CHECK is set (any non-empty value): record
#     the host's routes and addresses (scripts/network-check.ts backup)
#  2. unless SKIP_SNAPSHOT is set: pre-apply snapshot of every instance in
#     scope (limit = a group, host or comma list; a failed snapshot only warns)
#  3. the command; beside it, unless ANKLUME_NO_SPECULATION is set, the
#     speculative no-op of play 1 (lib/apply/speculate.ts, docs/apply.md):
#     the last reconcile run again, in check mode, in the background, in a
#     directory named after make's pid that the command's environment names
#     (ANKLUME_SPECULATION); removed after the command
#  4. unless ANKLUME_SKIP_NETWORK_CHECK is set: compare them; any change is
#     printed with the commands that put it back, and make stops (exit 1)
#  5. unless SKIP_SNAPSHOT is set: retention cleanup (KEEP=N, default 3);
#     a cleanup failure is reported but does not fail the apply
define safe_apply_wrap
	$(if $(ANKLUME_SKIP_NETWORK_CHECK),,@$(NETWORK_CHECK) backup)
	$(if $(SKIP_SNAPSHOT),,@$(SNAPSHOT_APPLY) create $(if $(3),--limit "$(strip $(3))"))
	@$(if $(ANKLUME_SKIP_NETWORK_CHECK),echo "Skipping the network safety net (ANKLUME_SKIP_NETWORK_CHECK is set)" >&2; )$(if $(SKIP_SNAPSHOT),echo "Skipping pre-apply snapshot (SKIP_SNAPSHOT is set)" >&2; )echo "==> Running: $(1)" >&2$(if $(ANKLUME_NO_SPECULATION),,$(eval export ANKLUME_SPECULATION := $(SPECULATION_DIR)); mkdir -p "$(SPECULATION_DIR)" && { $(BUN) scripts/reconcile.ts speculate --base-dir "$(CURDIR)" --out "$(SPECULATION_DIR)" >/dev/null 2>&1 & })
	$(2)
	$(if $(ANKLUME_NO_SPECULATION),,@rm -rf "$(SPECULATION_DIR)")
	$(if $(ANKLUME_SKIP_NETWORK_CHECK),,@$(NETWORK_CHECK) verify)
	$(if $(SKIP_SNAPSHOT),,-@$(SNAPSHOT_APPLY) cleanup $(if $(KEEP),--keep "$(KEEP)"))
	@echo "==> $(1) complete" >&2
endef

# Variables passed through to site.yml:
#   G=<domain>         apply-limit: only that domain (or host, or comma list)
#   NAT=false          bridges without NAT (tests, offline hosts)
#   OS_IMAGE=<alias>   replace every machine's image (offline: anklume-busybox)
#   CONTEXT_DIR=<dir>  read this machine's nesting context there (/etc/anklume)
#   ARGS="..."         anything more for ansible-playbook (e.g. -v)
ANSIBLE_PLAYBOOK ?= ansible-playbook
# The speculative no-op's directory: one per make run ($PPID of a $(shell)
# is make itself), computed on first use and kept.
SPECULATION_DIR = $(eval SPECULATION_DIR := $(or $(TMPDIR),/tmp)/anklume-speculation.$(shell echo $$PPID))$(SPECULATION_DIR)
# The network safety net of safe_apply_wrap (docs/lifecycle.md).
NETWORK_CHECK := $(BUN) scripts/network-check.ts
APPLY_VARS = $(if $(NAT),-e "incus_networks_ipv4_nat=$(NAT)") \
  $(if $(OS_IMAGE),-e "anklume_os_image_override=$(OS_IMAGE)") \
  $(if $(CONTEXT_DIR),-e "incus_instances_context_dir=$(CONTEXT_DIR)") $(ARGS)
# Bun leaves a stdout/stderr pipe it shares with us in non-blocking mode, and
# ansible-playbook then refuses to start ("Ansible requires blocking IO"), e.g.
# in `make sync apply-infra | tee log`. The flag lives on the shared pipe, so
# clearing it just before the playbook runs is enough. perl (perl-base is
# Essential on Debian) starts in about 7 ms; `python3`, the fallback where
# there is no perl, in 18 ms, and 180 ms where it is a pyenv shim.
# (Never redirect its stderr: the flag is cleared on the fds it is given.)
BLOCKING_IO := if command -v perl >/dev/null; \
  then perl -MFcntl -e 'for my $$fd (1, 2) { open(my $$h, ">&=", $$fd) or next; my $$f = fcntl($$h, F_GETFL, 0) or next; fcntl($$h, F_SETFL, $$f & ~O_NONBLOCK) }'; \
  else python3 -c "import os; [os.set_blocking(fd, True) for fd in (1, 2)]"; fi
PLAYBOOK := $(BLOCKING_IO) && $(ANSIBLE_PLAYBOOK) site.yml

define require_inventory
	@ls inventory/*.yml >/dev/null 2>&1 || { echo "Cannot apply: no generated inventory in inventory/; run make sync first (it writes inventory/, group_vars/ and host_vars/ from $(INFRA_SRC))" >&2; exit 1; }
endef

.PHONY: apply apply-infra apply-limit apply-provision apply-base apply-images export-images check syntax bench-apply bench-provision
apply: ## Reconcile Incus, provision the instances, write the nftables ruleset [NAT= OS_IMAGE=]
	$(call require_inventory)
	$(call safe_apply_wrap,apply,$(PLAYBOOK) $(APPLY_VARS))

apply-infra: ## Reconcile Incus only: projects, bridges, profiles, images, instances [NAT= OS_IMAGE=]
	$(call require_inventory)
	$(call safe_apply_wrap,apply-infra,$(PLAYBOOK) --tags infra $(APPLY_VARS))

apply-limit: ## Apply to one domain only: make apply-limit G=<domain>
	@test -n "$(G)" || { echo "Cannot apply-limit: no domain given; use make apply-limit G=<domain>" >&2; exit 2; }
	$(call require_inventory)
	$(call safe_apply_wrap,apply-limit,$(PLAYBOOK) --limit "$(G)" $(APPLY_VARS),$(G))

apply-provision: ## Run the provisioning roles only (Phase 2)
	$(call require_inventory)
	$(PLAYBOOK) --tags provision $(APPLY_VARS)

apply-base: ## Run base_system only, on every machine that has roles (--tags base)
	$(call require_inventory)
	$(PLAYBOOK) --tags base $(APPLY_VARS)

apply-images: ## Reconcile the images only: copy them into the projects that use them (--tags images)
	$(call require_inventory)
	$(PLAYBOOK) --tags images $(APPLY_VARS)

# v1's AI tag sets (operations-contract §5.3). site.yml tags each role it
# applies with its name and v1's extra tags (provisioning_role_tags): llm =
# ollama_server + open_webui, stt = stt_server, lobechat, opencode,
# code_sandbox, openclaw. Each goes through safe_apply_wrap, as v1's did.
.PHONY: apply-llm apply-stt apply-ai apply-code-sandbox apply-openclaw agent-runner-setup
# In a variable: a comma written inside $(call ...) would split its arguments.
AI_TAGS := llm,stt,lobechat,opencode
apply-llm: ## Provision the LLM roles only: ollama_server, open_webui (--tags llm) [NAT= OS_IMAGE=]
	$(call require_inventory)
	$(call safe_apply_wrap,apply-llm,$(PLAYBOOK) --tags llm $(APPLY_VARS))

apply-stt: ## Provision speech-to-text only: stt_server (--tags stt)
	$(call require_inventory)
	$(call safe_apply_wrap,apply-stt,$(PLAYBOOK) --tags stt $(APPLY_VARS))

apply-ai: ## Provision the AI roles: LLM, STT, LobeChat, OpenCode (--tags llm,stt,lobechat,opencode)
	$(call require_inventory)
	$(call safe_apply_wrap,apply-ai,$(PLAYBOOK) --tags $(AI_TAGS) $(APPLY_VARS))

apply-code-sandbox: ## Provision the coding sandboxes only: code_sandbox (--tags code_sandbox)
	$(call require_inventory)
	$(call safe_apply_wrap,apply-code-sandbox,$(PLAYBOOK) --tags code_sandbox $(APPLY_VARS))

apply-openclaw: ## Provision the OpenClaw agents only: openclaw_server (--tags openclaw)
	$(call require_inventory)
	$(call safe_apply_wrap,apply-openclaw,$(PLAYBOOK) --tags openclaw $(APPLY_VARS))

# v1's target ran --tags agent-setup, which no role carried; site.yml now tags dev_agent_runner so.
agent-runner-setup: ## Provision the agent runners only: dev_agent_runner (--tags agent-setup)
	$(call require_inventory)
	$(call safe_apply_wrap,agent-runner-setup,$(PLAYBOOK) --tags agent-setup $(APPLY_VARS))

# Where export-images writes; machines with dev_test_runner see it read-only at
# /mnt/host-images (lib/provision/images.ts).
IMAGES_DIR ?= /var/lib/anklume/images
export-images: ## Export the infra's images for nested Incus (dev_test_runner) [IMAGES_DIR= OS_IMAGE=]
	$(call require_inventory)
	$(BUN) scripts/export-images.ts --base-dir . --dir "$(IMAGES_DIR)" $(if $(OS_IMAGE),--image "$(OS_IMAGE)")

check: ## Show what apply would change (check mode with diff); change nothing
	$(call require_inventory)
	$(PLAYBOOK) --check --diff $(APPLY_VARS)

bench-apply: ## Benchmark apply (3x6 containers) against a shell launch floor and an empty-play floor [BENCH_ARGS=]
	$(BUN) bench/apply.ts $(BENCH_ARGS)

bench-provision: ## Benchmark provisioning 3 Debian containers with base_system, first and no-op, beside infra-only
	$(BUN) bench/provision.ts $(BENCH_ARGS)

# ==== Network isolation ====

# NFT_FILE: the ruleset path for both targets (default: the role's
# incus_nftables_output_path, /opt/anklume/nftables-isolation.nft).
# NFT_DEST: where nftables-deploy installs it (default
# /etc/nftables.d/anklume-isolation.nft); NFT_SOURCE: instance to pull it from.
NFT_SCRIPTS := $(patsubst %/,%,$(dir $(abspath $(firstword $(MAKEFILE_LIST)))))/scripts

.PHONY: nftables nftables-deploy ai-switch
nftables: ## Write the inter-bridge isolation ruleset (site.yml --tags nftables) [NFT_FILE=path]
	$(BLOCKING_IO) && $(ANSIBLE_PLAYBOOK) site.yml --tags nftables $(if $(NFT_FILE),-e "incus_nftables_output_path=$(NFT_FILE)")

nftables-deploy: ## Check (nft -c) and load the isolation ruleset on the host [DRY_RUN=1 NFT_FILE= NFT_DEST= NFT_SOURCE=]
	@$(BUN) $(NFT_SCRIPTS)/nftables-deploy.ts $(if $(DRY_RUN),--dry-run) $(if $(NFT_FILE),--file "$(NFT_FILE)") \
	  $(if $(NFT_DEST),--dest "$(NFT_DEST)") $(if $(NFT_SOURCE),--source "$(NFT_SOURCE)")

# D=<domain> (v1: DOMAIN=), NO_FLUSH=1 skips the VRAM flush; see docs/ai.md.
ai-switch: ## Move the exclusive AI access to another domain at runtime: D=<domain> [NO_FLUSH=1 DRY_RUN=1 NFT_FILE= NFT_DEST=]
	@test -n "$(or $(D),$(DOMAIN))" || { echo "make ai-switch needs D=<domain>, e.g. make ai-switch D=perso (the client domain that gets the AI access)" >&2; exit 2; }
	@$(BUN) $(NFT_SCRIPTS)/ai-switch.ts --domain "$(or $(D),$(DOMAIN))" --infra "$(INFRA_SRC)" $(if $(NO_FLUSH),--no-flush) \
	  $(if $(DRY_RUN),--dry-run) $(if $(NFT_FILE),--output "$(NFT_FILE)") $(if $(NFT_DEST),--dest "$(NFT_DEST)")

# ==== Snapshots and rollback ====
# scripts/snap.ts (SPEC-operations 8) and scripts/snapshot-apply.ts (8b); see docs/snapshots.md.
# Variables: I=<instance|self> S=<snapshot> FORCE=1, T=<timestamp>, KEEP=<N>,
# SKIP_SNAPSHOT=1 (any non-empty value) skips the pre-apply snapshot and cleanup.

SNAP := $(BUN) scripts/snap.ts
SNAPSHOT_APPLY := $(BUN) scripts/snapshot-apply.ts


.PHONY: snap snap-restore snap-list snap-delete rollback rollback-list rollback-cleanup bench-snapshots

snap: ## Snapshot one instance: I=<name|self> [S=<snapshot>] (default snap-YYYYMMDD-HHMMSS)
	@test -n "$(I)" || { echo "make snap needs I=<instance|self>, e.g. make snap I=pro-dev S=before-upgrade" >&2; exit 2; }
	@$(SNAP) create "$(I)" $(if $(S),"$(S)")

snap-restore: ## Restore one instance: I=<name|self> S=<snapshot> [FORCE=1 skips the self-restore question]
	@test -n "$(I)" -a -n "$(S)" || { echo "make snap-restore needs I=<instance|self> and S=<snapshot>, e.g. make snap-restore I=pro-dev S=before-upgrade (make snap-list I=pro-dev shows them)" >&2; exit 2; }
	@$(SNAP) restore "$(I)" "$(S)" $(if $(FORCE),--force)

snap-list: ## List snapshots of one instance [I=<name|self>], or of every instance
	@$(SNAP) list $(if $(I),"$(I)")

snap-delete: ## Delete a snapshot: I=<name|self> S=<snapshot>
	@test -n "$(I)" -a -n "$(S)" || { echo "make snap-delete needs I=<instance|self> and S=<snapshot>, e.g. make snap-delete I=pro-dev S=before-upgrade" >&2; exit 2; }
	@$(SNAP) delete "$(I)" "$(S)"

rollback: ## Restore every instance to the latest pre-apply snapshot [T=YYYYMMDD-HHMMSS]
	@$(SNAPSHOT_APPLY) rollback $(if $(T),"$(T)")

rollback-list: ## List the pre-apply snapshots (the latest is marked)
	@$(SNAPSHOT_APPLY) list

rollback-cleanup: ## Delete old pre-apply snapshots, keep the newest [KEEP=3]
	@$(SNAPSHOT_APPLY) cleanup $(if $(KEEP),--keep "$(KEEP)")

bench-snapshots: ## Benchmark pre-apply snapshots of 6 and 18 containers, concurrent vs one at a time
	$(BUN) bench/snapshots.ts

# ==== Lifecycle (see docs/lifecycle.md) ====
# FORCE=true (any value but false/0/no) skips flush's production refusal and its question.
LIFECYCLE_FORCE = $(if $(filter-out false 0 no,$(FORCE)),--force)

.PHONY: flush
flush: ## Destroy what anklume owns (its instances, profiles, projects, bridges, generated files) [FORCE=true DRY_RUN=1]
	@$(BUN) scripts/flush.ts $(LIFECYCLE_FORCE) $(if $(DRY_RUN),--dry-run)

.PHONY: import-infra
import-infra: ## Write infra.yml from the running Incus state (refuses to overwrite infra.yml) [O=<file> INFRA=<id> PROJECTS="p ..."]
	@$(BUN) scripts/import-infra.ts $(if $(O),-o "$(O)") $(if $(INFRA),--infra-id "$(INFRA)") $(foreach p,$(PROJECTS),--project "$(p)")

.PHONY: upgrade update-check
upgrade: ## Update the framework from its upstream: your changes to framework files saved as .bak, your files untouched, then sync [UPSTREAM=<remote/branch> DRY_RUN=1]
	@$(BUN) scripts/upgrade.ts $(if $(UPSTREAM),--upstream "$(UPSTREAM)") $(if $(DRY_RUN),--dry-run)

update-check: ## Say in one line when the upstream has updates (fetches at most hourly, 5 s timeout)
	@$(BUN) scripts/update-check.ts .

# v1's batch snapshots: one name over every instance, or one domain (D=).
SNAP_BATCH := $(BUN) scripts/snapshot-batch.ts

.PHONY: snapshot snapshot-domain restore restore-domain snapshot-delete snapshot-list
snapshot: ## Snapshot every instance [NAME=<snapshot>] (default YYYYMMDDTHHMMSS)
	@$(SNAP_BATCH) create $(if $(NAME),"$(NAME)")

snapshot-domain: ## Snapshot every instance of one domain: D=<domain> [NAME=<snapshot>]
	@test -n "$(D)" || { echo "make snapshot-domain needs D=<domain>, e.g. make snapshot-domain D=pro NAME=before-upgrade" >&2; exit 2; }
	@$(SNAP_BATCH) create $(if $(NAME),"$(NAME)") --limit "$(D)"

restore: ## Restore every instance to a snapshot: NAME=<snapshot>
	@test -n "$(NAME)" || { echo "make restore needs NAME=<snapshot>, e.g. make restore NAME=before-upgrade (make snapshot-list shows them)" >&2; exit 2; }
	@$(SNAP_BATCH) restore "$(NAME)"

restore-domain: ## Restore every instance of one domain: D=<domain> NAME=<snapshot>
	@test -n "$(D)" -a -n "$(NAME)" || { echo "make restore-domain needs D=<domain> and NAME=<snapshot>, e.g. make restore-domain D=pro NAME=before-upgrade" >&2; exit 2; }
	@$(SNAP_BATCH) restore "$(NAME)" --limit "$(D)"

snapshot-delete: ## Delete a snapshot from every instance: NAME=<snapshot> [D=<domain>]
	@test -n "$(NAME)" || { echo "make snapshot-delete needs NAME=<snapshot>, e.g. make snapshot-delete NAME=before-upgrade" >&2; exit 2; }
	@$(SNAP_BATCH) delete "$(NAME)" $(if $(D),--limit "$(D)")

snapshot-list: ## List the snapshots of every instance of the inventory [D=<domain>]
	@$(SNAP_BATCH) list $(if $(D),--limit "$(D)")

# ==== Network guard ====

.PHONY: guard-build guard-install guard-check bench-guard

dist/incus-guard: scripts/incus-guard.ts $(filter-out %.test.ts,$(wildcard lib/guard/*.ts)) \
		lib/core/cidr.ts lib/core/cli.ts lib/incus/client.ts lib/incus/objects.ts
	$(BUN) build --compile scripts/incus-guard.ts --outfile dist/incus-guard

guard-build: dist/incus-guard ## Compile incus-guard into one binary, dist/incus-guard

guard-install: dist/incus-guard ## Install incus-guard and its incus.service drop-in (ROOT=dir, DRY_RUN=1)
	dist/incus-guard install $(if $(ROOT),--root $(ROOT)) $(if $(DRY_RUN),--dry-run)

# The guard protects this machine's network from this machine's daemon:
# never the remote's (docs/remote.md).
guard-install guard-check bench-guard: INCUS_REMOTE =

guard-check: ## Report bridges and Incus networks that overlap the host network (changes nothing)
	$(if $(ANKLUME_REMOTE),@echo "note: incus-guard checks this machine's daemon and not remote $(ANKLUME_REMOTE): that host needs a guard of its own (docs/remote.md)" >&2)
	$(BUN) scripts/incus-guard.ts check $(if $(JSON),--json)

bench-guard: ## Benchmark the guard: bridge-to-deletion latency and idle CPU, in a test namespace
	$(BUN) bench/guard.ts

# ==== Host setup ====
.PHONY: dev-incus images

dev-incus: ## Bootstrap this host for development: packages, Bun, Ansible venv, Incus, images (idempotent)
	bash bootstrap.sh --dev --yes

images: ## Build and import the local images if missing [IMAGES="busybox debian12"] [REBUILD=1]
	$(BUN) scripts/build-image.ts $(IMAGES) $(if $(REBUILD),--rebuild)
