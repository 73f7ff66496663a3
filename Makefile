# compleat.cloud — every target sets itself up (scripts/bootstrap.sh is idempotent and fast when
# nothing changed). See README.md.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
ROOT := $(abspath .)
VENV := $(ROOT)/.venv
export PATH := $(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(ROOT)/ansible.cfg
export STAGE_FILE := $(ROOT)/build/stage-times.txt

.PHONY: help lab-drill bootstrap test test-extended test-quick lint ruff ansible-lint sanity units core-min fabric-lab molecule \
        images lab lab-down build clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

bootstrap: ## install Debian packages, the venv, podman host fixes (idempotent)
	@bash scripts/bootstrap.sh

test: ## everything CI runs: lint, sanity, unit, fabric lab, every molecule scenario
	@bash scripts/test.sh full

test-extended: ## make test plus every molecule scenario and lab test (long)
	@bash scripts/test.sh extended

test-quick: ## lint, sanity and unit tests only (no labs, no molecule)
	@bash scripts/test.sh quick

lint: bootstrap ## ruff + ansible-lint --profile production
	@bash scripts/test.sh lint

sanity: bootstrap ## ansible-test sanity (its pip bootstrap seeded locally; its venv installs from PyPI)
	@bash scripts/sanity.sh

units: bootstrap ## pytest unit tests
	@bash scripts/test.sh units

core-min: bootstrap ## unit tests and ansible-test sanity again on the lowest supported ansible-core
	@bash scripts/test.sh core-min

fabric-lab: bootstrap ## BGP and OSPF namespace labs from generated FRR configs
	@bash scripts/test.sh fabric-lab

molecule: bootstrap ## every molecule scenario (MOLECULE_SCENARIOS="a b" to choose)
	@bash scripts/test.sh molecule

images: bootstrap ## build (or reuse) the cached container and VM base images
	@bash scripts/images/build-all.sh

lab: ## bring up the one-machine lab cloud from inventories/lab/
	@bash scripts/lab.sh up

lab-drill: ## in the running lab: kill the tenant instance's hypervisor, detect, fence, evacuate, check
	@bash scripts/lab.sh drill

lab-down: ## tear the lab down completely
	@bash scripts/lab.sh down

build: bootstrap ## build the collection tarball into build/
	@ansible-galaxy collection build --force --output-path build/

clean: lab-down ## remove build output (keeps cached images)
	rm -rf build/collections build/ansible-test tests/output
