#!/usr/bin/env bash
# Build (or reuse) the Debian 12 container base image for the molecule podman platform:
#   localhost/compleat-debian12:<recipe-hash>  and  localhost/compleat-debian12:latest
#
# debootstrap (bookworm, systemd + sshd + python3 + container-packages.txt), a few container
# tweaks (masked units, no baked-in machine-id or SSH host keys), then `podman import`.
# The recipe hash covers this script and container-packages.txt: when an image with that hash
# exists, nothing is done except making sure :latest points at it. The rootfs is cached under
# .cache/images/ so a lost podman store is re-imported without a new debootstrap.
# Runs are serialised with flock; a half-built rootfs never becomes the cache.
#
# Usage: scripts/images/build-container-image.sh [--force]
# Env:   COMPLEAT_DEBIAN_MIRROR (default http://deb.debian.org/debian)
#        COMPLEAT_IMAGE_LOCK_TIMEOUT seconds to wait for a concurrent build (default 1800)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/lib.sh
. "$HERE/../lib.sh"

IMAGE=localhost/compleat-debian12
SUITE=bookworm
MIRROR="${COMPLEAT_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
PACKAGES_FILE="$HERE/container-packages.txt"
CACHE="$COMPLEAT_ROOT/.cache/images"
FORCE=0
[ "${1:-}" = "--force" ] && FORCE=1

# Units that fail or make no sense in a container (no kernel/udev/fstab/consoles to manage) or
# would fight the tests (apt timers taking the dpkg lock during converge).
MASKED_UNITS=(
  systemd-remount-fs.service
  systemd-networkd-wait-online.service
  systemd-udevd.service
  systemd-udev-trigger.service
  systemd-modules-load.service
  systemd-sysctl.service
  systemd-firstboot.service
  systemd-journald-audit.socket
  sys-kernel-config.mount
  sys-kernel-debug.mount
  sys-kernel-tracing.mount
  sys-fs-fuse-connections.mount
  dev-hugepages.mount
  dev-mqueue.mount
  proc-sys-fs-binfmt_misc.automount
  getty.target
  console-getty.service
  getty@tty1.service
  serial-getty@.service
  apt-daily.timer
  apt-daily-upgrade.timer
  e2scrub_all.timer
  e2scrub_reap.service
  fstrim.timer
)

packages() { sed -e 's/#.*//' -e 's/[[:space:]]//g' -e '/^$/d' "$PACKAGES_FILE" | sort -u; }

[ "$(id -u)" -eq 0 ] || die "run as root (debootstrap and podman import need it)"
command -v debootstrap >/dev/null || die "debootstrap missing: run scripts/bootstrap.sh"
command -v podman >/dev/null || die "podman missing: run scripts/bootstrap.sh"

HASH="$(recipe_hash "$HERE/build-container-image.sh" "$PACKAGES_FILE")"
TAGGED="$IMAGE:$HASH"
ROOTFS="$CACHE/container-rootfs-$HASH"

# podman leaves conmon running for started containers: never let it inherit the lock fd.
podman() { command podman "$@" 9>&-; }

SELFTEST_NAME="compleat-image-selftest-$$"
cleanup() {
  command podman rm -f -t 0 "$SELFTEST_NAME" >/dev/null 2>&1 || true
  rm -rf "$ROOTFS.tmp"
}
trap cleanup EXIT

mkdir -p "$CACHE/debs"
exec 9>"$CACHE/container-image.lock"
if ! flock -n 9; then
  log "another container image build is running; waiting for it"
  flock -w "${COMPLEAT_IMAGE_LOCK_TIMEOUT:-1800}" 9 || die "timed out waiting for $CACHE/container-image.lock"
fi

# Make :latest point at the image of the current recipe (no-op when it already does).
tag_latest() {
  local want have
  want="$(podman image inspect --format '{{.Id}}' "$TAGGED")"
  have="$(podman image inspect --format '{{.Id}}' "$IMAGE:latest" 2>/dev/null || true)"
  [ "$want" = "$have" ] || podman tag "$TAGGED" "$IMAGE:latest"
}

if [ "$FORCE" -eq 0 ] && podman image exists "$TAGGED"; then
  tag_latest
  log "container image $TAGGED is up to date"
  exit 0
fi

build_rootfs() {
  local tmp="$ROOTFS.tmp" include
  rm -rf "$tmp"
  include="$(packages | paste -sd, -)"
  log "debootstrap $SUITE from $MIRROR (+ $include)"
  debootstrap --variant=minbase --include="$include" --cache-dir="$CACHE/debs" \
    "$SUITE" "$tmp" "$MIRROR" >"$CACHE/container-debootstrap.log" 2>&1 \
    || { tail -n 30 "$CACHE/container-debootstrap.log" >&2; die "debootstrap failed (log: $CACHE/container-debootstrap.log)"; }
  customise "$tmp"
  mv "$tmp" "$ROOTFS"
}

customise() {
  local root="$1" unit
  # Start nothing baked in (BIND, Kea, Prometheus, chrony, rsyslog, cron, ...): disabled, not
  # masked, so every role enables and starts what it installs, as on a real host. The preset is
  # applied once and removed (Debian's maintainer scripts ignore presets anyway).
  mkdir -p "$root/etc/systemd/system-preset"
  cat > "$root/etc/systemd/system-preset/00-compleat-lab.preset" <<'EOF'
# compleat.cloud lab image: nothing baked in starts by itself; roles enable what they install.
enable ssh.service
disable *
EOF
  chroot "$root" systemctl preset-all --preset-mode=full >/dev/null 2>&1 \
    || die "systemctl preset-all failed in the image"
  rm -f "$root/etc/systemd/system-preset/00-compleat-lab.preset"
  for unit in "${MASKED_UNITS[@]}"; do
    ln -sfn /dev/null "$root/etc/systemd/system/$unit"
  done
  # Each container must get its own machine-id (systemd creates one at boot when empty).
  : > "$root/etc/machine-id"
  rm -f "$root/var/lib/dbus/machine-id"
  # No SSH host keys shared by every container: generate them on first start instead.
  rm -f "$root"/etc/ssh/ssh_host_*
  mkdir -p "$root/etc/systemd/system/ssh.service.d"
  cat > "$root/etc/systemd/system/ssh.service.d/compleat-hostkeys.conf" <<'UNIT'
# Generated by compleat.cloud build-container-image.sh: the image carries no host keys.
[Service]
ExecStartPre=
ExecStartPre=/usr/bin/ssh-keygen -A
ExecStartPre=/usr/sbin/sshd -t
UNIT
  # Podman manages these; keep the image neutral.
  : > "$root/etc/hostname"
  rm -f "$root/etc/resolv.conf"
  # Keep the apt lists (roles can install packages without an update), drop downloaded debs.
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin
  printf 'compleat-debian12 %s %s\n' "$HASH" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$root/etc/compleat-image"
}

# Boot the new image once and require systemd to reach "running" (nothing failed).
selftest() {
  local name="$SELFTEST_NAME" state="" i
  podman run -d --name "$name" --systemd=always "$TAGGED" >/dev/null
  for i in $(seq 1 60); do
    # Prints nothing until systemd's bus is up; "starting" until boot is done.
    state="$(podman exec "$name" systemctl is-system-running 2>/dev/null || true)"
    case "$state" in running|degraded|maintenance|stopping) break ;; esac
    sleep 1
  done
  if [ "$state" != "running" ]; then
    podman exec "$name" systemctl --failed --no-legend >&2 || true
    log "image self-test: systemd state is '${state:-unknown}' after ${i}s, want 'running'"
    return 1
  fi
  podman exec "$name" python3 -c 'import apt' || { log "image self-test: python3-apt missing"; return 1; }
  log "image self-test: systemd running after ${i}s, python3-apt present"
}

if [ "$FORCE" -eq 1 ] || [ ! -d "$ROOTFS" ]; then
  build_rootfs
fi
log "importing $ROOTFS as $TAGGED"
tar -C "$ROOTFS" --numeric-owner -cf - . | podman import \
  --change 'CMD ["/sbin/init"]' \
  --change 'STOPSIGNAL SIGRTMIN+3' \
  --change 'ENV container=podman' \
  --change "LABEL org.compleat.recipe=$HASH" \
  --quiet - "$TAGGED" >/dev/null
if ! selftest; then
  podman rmi -f "$TAGGED" >/dev/null 2>&1 || true
  die "image self-test failed: $TAGGED removed (rootfs kept in $ROOTFS)"
fi
tag_latest

# Drop rootfs caches and images of older recipes (images still used by containers stay).
find "$CACHE" -maxdepth 1 -name 'container-rootfs-*' ! -name "container-rootfs-$HASH" -exec rm -rf {} +
old_tags="$(podman images --format '{{.Repository}}:{{.Tag}}' \
  | grep "^$IMAGE:" | grep -v -e ":$HASH\$" -e ':latest$' || true)"
for old in $old_tags; do
  podman rmi "$old" >/dev/null 2>&1 || log "kept $old (still used by a container)"
done
log "container image $TAGGED built and tagged $IMAGE:latest"
