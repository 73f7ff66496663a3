#!/usr/bin/env bash
# Install everything `make test` and `make lab` need, idempotently, on a fresh Debian 12 machine:
# Debian packages, the pinned Python venv, the podman host fixes and the collection symlink.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$COMPLEAT_ROOT"

install_packages() {
  local missing=()
  while read -r pkg; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done < <(wanted_packages)
  if [ "${#missing[@]}" -eq 0 ]; then log "Debian packages: all present"; return 0; fi
  log "Debian packages to install: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
}

install_venv() {
  local stamp=.venv/.requirements.sha
  local want; want=$(recipe_hash requirements-dev.txt)
  if [ -x .venv/bin/python ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    log "venv: up to date"; return 0
  fi
  log "venv: installing requirements-dev.txt"
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -r requirements-dev.txt
  echo "$want" > "$stamp"
}

# Collections resolve compleat.cloud to this checkout through a symlink (see ansible.cfg).
link_collection() {
  mkdir -p build/collections/ansible_collections/compleat
  ln -sfn ../../../.. build/collections/ansible_collections/compleat/cloud
}

install_packages
"$COMPLEAT_ROOT/scripts/podman-host-fix.sh"
install_venv
link_collection
log "bootstrap complete"
