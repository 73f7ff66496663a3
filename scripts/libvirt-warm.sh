#!/usr/bin/env bash
# Fill libvirtd's QEMU capability cache (/var/cache/libvirt/qemu/capabilities) ahead of the
# stages that need libvirtd, so none of them pays for the probe. On a fresh machine the first
# libvirtd start probes every QEMU binary (TCG and KVM) before it answers a qemu:///system call:
# minutes on a loaded 2-core box, which `make test` overlaps with the lint/sanity/unit stages.
# The cache stays valid until QEMU, libvirt or the kernel changes; nothing here invalidates it.
# Starts virtlogd + libvirtd only when none runs and stops exactly those again (by PID).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

URI=qemu:///system
started=()
stop_started() {
  local pid
  for pid in "${started[@]}"; do
    kill "$pid" 2>/dev/null || continue
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
  done
}
trap stop_started EXIT

pid_of() { local p; p="$(cat "$1" 2>/dev/null)" && kill -0 "$p" 2>/dev/null && echo "$p"; }

command -v libvirtd >/dev/null || die "libvirtd missing: run scripts/bootstrap.sh"
if ! virsh -c "$URI" version >/dev/null 2>&1; then
  for daemon in virtlogd libvirtd; do
    pidfile="/run/$daemon.pid"
    if [ -z "$(pid_of "$pidfile")" ]; then
      "$daemon" -d
      for _ in $(seq 1 50); do [ -n "$(pid_of "$pidfile")" ] && break; sleep 0.1; done
      pid="$(pid_of "$pidfile")" || die "$daemon did not start"
      started=("$pid" "${started[@]}")  # stop libvirtd before virtlogd
    fi
  done
fi
start=$(date +%s)
# domcapabilities needs the probed capabilities of the binary: it waits for the probe.
for _ in $(seq 1 600); do
  virsh -c "$URI" domcapabilities --virttype qemu --emulatorbin /usr/bin/qemu-system-x86_64 >/dev/null 2>&1 && break
  sleep 1
done
virsh -c "$URI" domcapabilities --virttype qemu --emulatorbin /usr/bin/qemu-system-x86_64 >/dev/null \
  || die "libvirtd did not report QEMU's capabilities"
log "libvirt QEMU capability cache warm ($(($(date +%s) - start))s)"
