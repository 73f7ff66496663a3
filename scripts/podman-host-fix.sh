#!/usr/bin/env bash
# The two host fixes podman 4.3 needs on this machine kind (see ../shared/PLATFORM.md).
# Both are idempotent; the first must be repeated after every boot.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

# 1. crun refuses cgroup "hybrid mode": move the lone v2 controller (hugetlb) to v1.
if [ -d /sys/fs/cgroup ] && ! mountpoint -q /sys/fs/cgroup/hugetlb 2>/dev/null; then
  mkdir -p /sys/fs/cgroup/hugetlb 2>/dev/null || true
  mount -t cgroup -o hugetlb none /sys/fs/cgroup/hugetlb 2>/dev/null \
    || log "podman fix: hugetlb cgroup not mounted (not needed on this kernel?)"
fi

# 2. setrlimit(RLIMIT_NOFILE/NPROC) is not permitted: stop podman from setting default ulimits.
conf=/etc/containers/containers.conf
if ! grep -q '^default_ulimits = \[\]' "$conf" 2>/dev/null; then
  mkdir -p /etc/containers
  if grep -q '^\[containers\]' "$conf" 2>/dev/null; then
    sed -i '/^\[containers\]/a default_ulimits = []' "$conf"
  else
    printf '[containers]\ndefault_ulimits = []\n' >> "$conf"
  fi
  log "podman fix: wrote default_ulimits = [] to $conf"
fi
