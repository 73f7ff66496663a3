#!/usr/bin/env bash
# Install everything `make test` and `make lab` need, idempotently, on a fresh Debian 12 machine:
# Debian packages, the pinned Python venv, the podman host fixes and the collection symlink.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$COMPLEAT_ROOT"

# Another apt/dpkg (unattended-upgrades on a fresh machine, a second checkout's bootstrap) may
# hold the lock: wait for it, bounded, and say so, instead of failing at once.
APT_LOCK_TIMEOUT="${COMPLEAT_APT_LOCK_TIMEOUT:-600}"
# dpkg and apt take fcntl (POSIX) locks, which flock(1) cannot see: test them with lockf.
dpkg_lock_held() {
  python3 - /var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock <<'PY'
import fcntl, os, sys
for path in sys.argv[1:]:
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        continue
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        sys.exit(0)  # held
    finally:
        os.close(fd)
sys.exit(1)
PY
}
wait_for_dpkg_lock() {
  local waited=0
  dpkg_lock_held || return 0
  log "another apt/dpkg holds its lock; waiting up to ${APT_LOCK_TIMEOUT}s (COMPLEAT_APT_LOCK_TIMEOUT)"
  while dpkg_lock_held; do
    [ "$waited" -lt "$APT_LOCK_TIMEOUT" ] \
      || die "apt/dpkg lock still held after ${waited}s (another package manager is running; see: ps -ef | grep -e apt -e dpkg)"
    sleep 2; waited=$((waited + 2))
  done
  log "apt/dpkg lock released after ${waited}s"
}

install_packages() {
  local missing=()
  while read -r pkg; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done < <(wanted_packages)
  if [ "${#missing[@]}" -eq 0 ]; then log "Debian packages: all present"; return 0; fi
  log "Debian packages to install: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  wait_for_dpkg_lock
  apt-get -o DPkg::Lock::Timeout="$APT_LOCK_TIMEOUT" update -q
  apt-get -o DPkg::Lock::Timeout="$APT_LOCK_TIMEOUT" install -y -q --no-install-recommends "${missing[@]}"
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

# /dev/kvm as Debian's udev rule leaves it (root:kvm 0660); this machine kind has no udev and
# creates it root 0600. libvirtd then judges KVM unusable for its QEMU user (libvirt-qemu, in
# group kvm) while its probe finds KVM, so every lookup invalidated the QEMU capability cache and
# probed again, a hanging KVM probe included: the libvirt stage took 266 s, 29 s with this fix
# (docs/dev/testing.md). QEMU still runs TCG here (PLATFORM: KVM guests hang). Once per boot.
kvm_device_mode() {
  [ -c /dev/kvm ] || return 0
  getent group kvm >/dev/null || return 0
  if [ "$(stat -c '%G %a' /dev/kvm)" != "kvm 660" ]; then
    chgrp kvm /dev/kvm && chmod 0660 /dev/kvm
    log "/dev/kvm: root:kvm 0660 (as udev would set it)"
  fi
}

# Collections resolve compleat.cloud to this checkout through a symlink (see ansible.cfg).
link_collection() {
  mkdir -p build/collections/ansible_collections/compleat
  ln -sfn ../../../.. build/collections/ansible_collections/compleat/cloud
}

install_packages
"$COMPLEAT_ROOT/scripts/podman-host-fix.sh"
kvm_device_mode
install_venv
link_collection
log "bootstrap complete"
