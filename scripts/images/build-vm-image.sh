#!/usr/bin/env bash
# Build (or reuse) the Debian 12 base image of the QEMU (TCG) VM lab platform (lab/vm.py):
#
#   .cache/images/debian12-vm-<hash>/disk.qcow2    ext4 root filesystem, no partition table
#   .cache/images/debian12-vm-<hash>/vmlinuz       guest kernel (linux-image-cloud-amd64)
#   .cache/images/debian12-vm-<hash>/initrd.img    its initramfs
#   .cache/images/debian12-vm-<hash>/manifest.json what was built, from which recipe
#   .cache/images/debian12-vm                      symlink to the current recipe's directory
#   .cache/images/lab_ssh_key{,.pub}               lab key pair (made once, root's only login)
#
# debootstrap (bookworm, minbase + CORE_PACKAGES + vm-packages.txt), guest configuration
# (serial console, key-only root SSH, systemd-networkd with the QEMU user-mode address on eth0,
# hostname and extra NIC addresses from the kernel command line, needless units masked), then
# `mkfs.ext4 -d` and `qemu-img convert` to qcow2. The recipe hash covers this script,
# vm-packages.txt, the lab public key, the mirror and the disk size: when a directory for that
# hash is complete (manifest.json present) nothing is rebuilt. Builds are serialised with flock
# and happen in a temporary directory, so a half-built image never becomes the cache.
# Prints the paths it produced (or reused) on stdout, one per line; logs go to stderr.
#
# Usage: scripts/images/build-vm-image.sh [--force]
# Env:   COMPLEAT_DEBIAN_MIRROR       (default http://deb.debian.org/debian)
#        COMPLEAT_VM_DISK_SIZE        virtual size of the root disk (default 6G)
#        COMPLEAT_IMAGE_LOCK_TIMEOUT  seconds to wait for a concurrent build (default 1800)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/lib.sh
. "$HERE/../lib.sh"

SUITE=bookworm
MIRROR="${COMPLEAT_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
DISK_SIZE="${COMPLEAT_VM_DISK_SIZE:-6G}"
PACKAGES_FILE="$HERE/vm-packages.txt"
CACHE="$COMPLEAT_ROOT/.cache/images"
KEY="$CACHE/lab_ssh_key"
CURRENT="$CACHE/debian12-vm"
FORCE=0
[ "${1:-}" = "--force" ] && FORCE=1

# What the image and lab/vm.py rely on; scenario extras go to vm-packages.txt.
CORE_PACKAGES=(
  linux-image-cloud-amd64 systemd-sysv udev dbus openssh-server
  python3 python3-apt sudo iproute2 procps kmod
)

# Units that only slow a throw-away TCG guest down or would fight the tests (apt timers taking
# the dpkg lock during converge, waiting for "online" on NICs a scenario configures later).
MASKED_UNITS=(
  systemd-networkd-wait-online.service
  apt-daily.timer
  apt-daily-upgrade.timer
  dpkg-db-backup.timer
  e2scrub_all.timer
  e2scrub_reap.service
  fstrim.timer
  getty@tty1.service
  systemd-pstore.service
)

packages() {
  { printf '%s\n' "${CORE_PACKAGES[@]}"; sed -e 's/#.*//' -e 's/[[:space:]]//g' "$PACKAGES_FILE"; } \
    | sed '/^$/d' | sort -u
}

[ "$(id -u)" -eq 0 ] || die "run as root (debootstrap needs it)"
for tool in debootstrap mkfs.ext4 qemu-img ssh-keygen flock; do
  command -v "$tool" >/dev/null || die "$tool missing: run scripts/bootstrap.sh"
done

mkdir -p "$CACHE/vm-debs"
exec 9>"$CACHE/vm-image.lock"
if ! flock -n 9; then
  log "another VM image build is running; waiting for it"
  flock -w "${COMPLEAT_IMAGE_LOCK_TIMEOUT:-1800}" 9 || die "timed out waiting for $CACHE/vm-image.lock"
fi

if [ ! -s "$KEY" ] || [ ! -s "$KEY.pub" ]; then
  log "generating the lab SSH key pair $KEY"
  rm -f "$KEY" "$KEY.pub"
  ssh-keygen -q -t ed25519 -N '' -C compleat-lab -f "$KEY"
fi
chmod 0600 "$KEY"

HASH="$(recipe_hash "$HERE/build-vm-image.sh" "$PACKAGES_FILE" "$KEY.pub" \
  <(printf 'mirror=%s size=%s\n' "$MIRROR" "$DISK_SIZE"))"
OUT="$CACHE/debian12-vm-$HASH"

print_paths() {
  printf '%s\n' "$OUT/disk.qcow2" "$OUT/vmlinuz" "$OUT/initrd.img" "$OUT/manifest.json" \
    "$CURRENT" "$KEY" "$KEY.pub"
}

point_current() {
  ln -sfn "$(basename "$OUT")" "$CURRENT.tmp"
  mv -T "$CURRENT.tmp" "$CURRENT"
}

if [ "$FORCE" -eq 0 ] && [ -s "$OUT/manifest.json" ] && [ -s "$OUT/disk.qcow2" ]; then
  point_current
  log "VM image $OUT is up to date"
  print_paths
  exit 0
fi

BUILD="$CACHE/.vm-build-$HASH"
ROOTFS="$BUILD/rootfs"

# Undo whatever a failed debootstrap left mounted inside the rootfs, then drop the build dir.
cleanup() {
  local mnt
  if [ -d "$BUILD" ]; then
    awk -v p="$BUILD/" 'index($2, p) == 1 { print $2 }' /proc/mounts | sort -r \
      | while read -r mnt; do umount -l "$mnt" 2>/dev/null || true; done
    rm -rf "$BUILD"
  fi
}
trap cleanup EXIT

# Guest configuration: everything here is part of the recipe hash (it is this file).
configure_rootfs() {
  local root="$1" unit
  echo compleat-vm > "$root/etc/hostname"
  cat > "$root/etc/hosts" <<'EOF'
127.0.0.1	localhost
127.0.1.1	compleat-vm
::1		localhost ip6-localhost ip6-loopback
ff02::1		ip6-allnodes
ff02::2		ip6-allrouters
EOF
  # No fsck: every VM runs on a fresh overlay of a clean filesystem.
  printf '/dev/vda\t/\text4\trw,noatime,errors=remount-ro\t0\t0\n' > "$root/etc/fstab"

  # eth0 is always QEMU user-mode networking (slirp): fixed address, gateway and DNS.
  mkdir -p "$root/etc/systemd/network"
  cat > "$root/etc/systemd/network/10-eth0.network" <<'EOF'
# compleat.cloud lab VM: QEMU user-mode network (slirp) on the first NIC.
[Match]
Name=eth0

[Link]
RequiredForOnline=no

[Network]
Address=10.0.2.15/24
Gateway=10.0.2.2
DNS=10.0.2.3
LinkLocalAddressing=no
IPv6AcceptRA=no
EOF
  rm -f "$root/etc/resolv.conf"
  echo 'nameserver 10.0.2.3' > "$root/etc/resolv.conf"

  # Per-VM settings from the kernel command line (what cloud-init would do, in 60 lines of sh).
  cat > "$root/usr/local/sbin/compleat-boot" <<'EOF'
#!/bin/sh
# compleat.cloud lab VM: apply per-VM settings passed on the kernel command line.
#   compleat.hostname=NAME      hostname, applied on the first boot only (to /etc/hostname and
#                               /etc/hosts), so a role that renames the host keeps its name
#   compleat.net=IF=ADDR[+ADDR][,IF=...]
#                               systemd-networkd addresses for extra NICs (eth1, eth2, ...),
#                               regenerated in /run/systemd/network at every boot;
#                               ADDR "up" brings the link up without an address
set -eu
host=""
nets=""
for word in $(cat /proc/cmdline); do
  case "$word" in
    compleat.hostname=*) host="${word#compleat.hostname=}" ;;
    compleat.net=*) nets="${word#compleat.net=}" ;;
  esac
done

if [ -n "$host" ] && [ ! -e /var/lib/compleat-boot/hostname-done ]; then
  echo "$host" > /etc/hostname
  sed -i '/^127\.0\.1\.1[[:space:]]/d' /etc/hosts
  printf '127.0.1.1\t%s\n' "$host" >> /etc/hosts
  mkdir -p /var/lib/compleat-boot
  : > /var/lib/compleat-boot/hostname-done
fi
if [ -s /etc/hostname ]; then
  cat /etc/hostname > /proc/sys/kernel/hostname
fi

mkdir -p /run/systemd/network
rm -f /run/systemd/network/20-compleat-*.network
old_ifs="$IFS"
IFS=,
for entry in $nets; do
  ifname="${entry%%=*}"
  addrs="${entry#*=}"
  [ -n "$ifname" ] && [ "$ifname" != "$entry" ] || continue
  file="/run/systemd/network/20-compleat-$ifname.network"
  {
    printf '[Match]\nName=%s\n\n[Link]\nRequiredForOnline=no\n\n' "$ifname"
    printf '[Network]\nConfigureWithoutCarrier=yes\nLinkLocalAddressing=ipv6\nIPv6AcceptRA=no\n'
    IFS=+
    for addr in $addrs; do
      [ "$addr" = up ] || printf 'Address=%s\n' "$addr"
    done
    IFS=,
  } > "$file"
done
IFS="$old_ifs"
EOF
  chmod 0755 "$root/usr/local/sbin/compleat-boot"
  cat > "$root/etc/systemd/system/compleat-boot.service" <<'EOF'
[Unit]
Description=compleat.cloud lab VM settings from the kernel command line
DefaultDependencies=no
After=local-fs.target systemd-remount-fs.service
Before=sysinit.target network-pre.target systemd-networkd.service
Wants=network-pre.target
ConditionKernelCommandLine=|compleat.hostname
ConditionKernelCommandLine=|compleat.net

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/compleat-boot

[Install]
WantedBy=sysinit.target
EOF

  # Root logs in with the lab key only; no passwords anywhere.
  mkdir -p -m 0700 "$root/root/.ssh"
  install -m 0600 "$KEY.pub" "$root/root/.ssh/authorized_keys"
  cat > "$root/etc/ssh/sshd_config.d/compleat.conf" <<'EOF'
# compleat.cloud lab VM: key-only root login, no DNS lookups (slow under TCG).
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
EOF
  chroot "$root" passwd -q -l root >/dev/null

  # Volatile journal: less I/O on the overlay, nothing to keep after destroy.
  mkdir -p "$root/etc/systemd/journald.conf.d"
  printf '[Journal]\nStorage=volatile\n' > "$root/etc/systemd/journald.conf.d/compleat.conf"

  chroot "$root" systemctl enable --quiet systemd-networkd.service compleat-boot.service
  for unit in "${MASKED_UNITS[@]}"; do
    ln -sfn /dev/null "$root/etc/systemd/system/$unit"
  done

  # Keep the apt lists (roles can check/installed packages without an update), drop the debs.
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin
  printf 'compleat-debian12-vm %s %s\n' "$HASH" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$root/etc/compleat-image"
}

start=$(date +%s)
rm -rf "$BUILD"
mkdir -p "$BUILD/out"
include="$(packages | paste -sd, -)"
log "debootstrap $SUITE from $MIRROR (+ $include)"
debootstrap --variant=minbase --include="$include" --cache-dir="$CACHE/vm-debs" \
  "$SUITE" "$ROOTFS" "$MIRROR" >"$CACHE/vm-debootstrap.log" 2>&1 \
  || { tail -n 30 "$CACHE/vm-debootstrap.log" >&2; die "debootstrap failed (log: $CACHE/vm-debootstrap.log)"; }
log "configuring the guest"
configure_rootfs "$ROOTFS"

kernel="$(find "$ROOTFS/boot" -maxdepth 1 -name 'vmlinuz-*' | sort -V | tail -n 1)"
initrd="$(find "$ROOTFS/boot" -maxdepth 1 -name 'initrd.img-*' | sort -V | tail -n 1)"
[ -n "$kernel" ] && [ -n "$initrd" ] || die "no kernel/initrd in $ROOTFS/boot"
cp "$kernel" "$BUILD/out/vmlinuz"
cp "$initrd" "$BUILD/out/initrd.img"
kver="${kernel##*/vmlinuz-}"

log "making the ext4 root filesystem ($DISK_SIZE) and converting it to qcow2"
truncate -s "$DISK_SIZE" "$BUILD/disk.raw"
mkfs.ext4 -q -F -L compleat-root -E root_owner=0:0 -d "$ROOTFS" "$BUILD/disk.raw"
qemu-img convert -f raw -O qcow2 "$BUILD/disk.raw" "$BUILD/out/disk.qcow2"
rm -f "$BUILD/disk.raw"

end=$(date +%s)
python3 - "$BUILD/out/manifest.json" <<EOF
import json, sys
manifest = {
    "name": "compleat-debian12-vm",
    "recipe_hash": "$HASH",
    "suite": "$SUITE",
    "mirror": "$MIRROR",
    "disk_size": "$DISK_SIZE",
    "kernel_version": "$kver",
    "packages": "$include".split(","),
    "built_at": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
    "build_seconds": $((end - start)),
    "ssh_key": "$KEY",
}
with open(sys.argv[1], "w", encoding="utf-8") as fh:
    json.dump(manifest, fh, indent=2)
    fh.write("\n")
EOF

rm -rf "$OUT"
mv "$BUILD/out" "$OUT"
point_current
log "VM image $OUT built in $((end - start))s (kernel $kver)"

# Drop images of older recipes unless a VM's overlay still uses one as its backing file.
for old in "$CACHE"/debian12-vm-*; do
  [ -d "$old" ] && [ "$old" != "$OUT" ] || continue
  if grep -lsF "$old/" "$COMPLEAT_ROOT"/.cache/vms/*/vm.json >/dev/null 2>&1; then
    log "keeping $old: still used by a VM"
  else
    rm -rf "$old"
  fi
done
print_paths
