#!/usr/bin/env bash
# Build (or reuse) the Debian 12 base image of the QEMU (TCG) VM lab platform (lab/vm.py):
#
#   .cache/images/debian12-vm-<hash>/disk.qcow2    ext4 root filesystem, no partition table
#   .cache/images/debian12-vm-<hash>/vmlinuz       guest kernel (linux-image-cloud-amd64)
#   .cache/images/debian12-vm-<hash>/initrd.img    its initramfs (virtio modules only)
#   .cache/images/debian12-vm-<hash>/manifest.json what was built, from which recipe
#   .cache/images/debian12-vm                      symlink to the current recipe's directory
#   .cache/images/lab_ssh_key{,.pub}               lab key pair (made once, root's only login)
#
# debootstrap (bookworm, minbase + CORE_PACKAGES + vm-packages.txt), guest configuration
# (serial console, key-only root SSH, systemd-networkd with the QEMU user-mode address on eth0,
# hostname and extra NIC addresses from the kernel command line, needless units masked),
# `mkfs.ext4 -d` and `qemu-img convert` to qcow2, then a boot self-test (SSH must answer and
# systemd must report "running") before the symlink moves to the new image. The recipe hash
# covers this script, vm-packages.txt, the lab public key, the mirror and the disk size: when
# the directory for that hash is complete (manifest.json present) nothing is rebuilt. Builds are
# serialised with flock and happen in a temporary directory, so a half-built or broken image
# never becomes the cache. Prints the paths it produced (or reused) on stdout, one per line;
# logs go to stderr.
#
# Usage: scripts/images/build-vm-image.sh [--force] [--no-selftest]
# Env:   COMPLEAT_DEBIAN_MIRROR       (default http://deb.debian.org/debian)
#        COMPLEAT_VM_DISK_SIZE        virtual size of the root disk (default 6G)
#        COMPLEAT_IMAGE_LOCK_TIMEOUT  seconds to wait for a concurrent build (default 1800)
#        COMPLEAT_VM_SELFTEST_TIMEOUT seconds the self-test boot may take (default 600)
#
# The whole script is one function called on the last line, so editing this file while a
# build runs cannot change what the running bash executes.
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

print_paths() {
  printf '%s\n' "$OUT/disk.qcow2" "$OUT/vmlinuz" "$OUT/initrd.img" "$OUT/manifest.json" \
    "$CURRENT" "$KEY" "$KEY.pub"
}

point_current() {
  ln -sfn "$(basename "$OUT")" "$CURRENT.tmp"
  mv -T "$CURRENT.tmp" "$CURRENT"
}

# Undo whatever a failed debootstrap left mounted inside the rootfs, stop a self-test VM, then
# drop the build dir, but never delete through a mount that is still there (host /proc, /dev).
mounts_under() { awk -v p="$1/" 'index($2, p) == 1 { print $2 }' /proc/mounts | sort -r; }
cleanup() {
  local mnt pid
  [ -n "${BUILD:-}" ] && [ -d "$BUILD" ] || return 0
  if [ -s "$BUILD/selftest.pid" ]; then
    pid="$(cat "$BUILD/selftest.pid")"
    if grep -qsF "$BUILD/selftest.pid" "/proc/$pid/cmdline"; then kill "$pid" 2>/dev/null || true; fi
  fi
  mounts_under "$BUILD" | while read -r mnt; do umount -l "$mnt" 2>/dev/null || true; done
  if [ -n "$(mounts_under "$BUILD")" ]; then
    log "leaving $BUILD in place: still mounted: $(mounts_under "$BUILD" | paste -sd' ' -)"
    return 0
  fi
  rm -rf --one-file-system "$BUILD"
}

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

  # eth0 is always QEMU user-mode networking (slirp): fixed address and DNS, on 192.168.253.0/24
  # (lab/vm.py USER_NET), not QEMU's default 10.0.2.0/24, a lab rack network. On-link only: the
  # default route is the plan's (first_boot, via the rack's mgmt gateway); what the VM reaches
  # through slirp (the lab store on 192.168.253.2, its DNS on .3) is on that subnet.
  mkdir -p "$root/etc/systemd/network"
  cat > "$root/etc/systemd/network/10-eth0.network" <<'EOF'
# compleat.cloud lab VM: QEMU user-mode network (slirp) on the first NIC.
[Match]
Name=eth0

[Link]
RequiredForOnline=no

[Network]
Address=192.168.253.15/24
DNS=192.168.253.3
LinkLocalAddressing=no
IPv6AcceptRA=no
EOF
  rm -f "$root/etc/resolv.conf"
  echo 'nameserver 192.168.253.3' > "$root/etc/resolv.conf"

  # Per-VM settings from the kernel command line (what cloud-init would do, in 50 lines of sh).
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

  # Root logs in with the lab key only; no passwords anywhere. The SSH host keys made by
  # openssh-server's postinst are shared by every VM of this image (throw-away lab VMs:
  # regenerating them at boot costs seconds under TCG).
  install -d -m 0700 "$root/root/.ssh"
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
  # Nothing baked in starts by itself (libvirtd, tgt, LIO's restore, nfs-server, rpcbind, xen,
  # lvm2 monitoring, cron: disabled, not masked; roles enable what they install). Kept: sshd,
  # networkd, compleat-boot, remote-fs.target (_netdev mounts at boot) and iscsid.socket, which
  # starts nothing until iscsiadm, a client, talks to it.
  start_only "$root" ssh.service systemd-networkd.service systemd-networkd.socket \
    compleat-boot.service remote-fs.target iscsid.socket
  for unit in "${MASKED_UNITS[@]}"; do
    ln -sfn /dev/null "$root/etc/systemd/system/$unit"
  done

  # Keep the apt lists (roles can query packages without an update), drop the debs.
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin
  printf 'compleat-debian12-vm %s %s\n' "$HASH" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$root/etc/compleat-image"
}

# The VM boots the cloud kernel, even when vm-packages.txt adds another flavour (e.g. for Xen),
# with a small initramfs (only what mounts /dev/vda): it unpacks seconds faster under TCG.
extract_boot_files() {
  local root="$1" dest="$2" kernel
  kernel="$(find "$root/boot" -maxdepth 1 -name 'vmlinuz-*-cloud-amd64' | sort -V | tail -n 1)"
  [ -n "$kernel" ] || die "no cloud kernel (vmlinuz-*-cloud-amd64) in $root/boot"
  KVER="${kernel##*/vmlinuz-}"
  sed -i 's/^MODULES=.*/MODULES=list/' "$root/etc/initramfs-tools/initramfs.conf"
  printf '%s\n' virtio_pci virtio_blk > "$root/etc/initramfs-tools/modules"
  chroot "$root" update-initramfs -u -k "$KVER" >/dev/null
  [ -s "$root/boot/initrd.img-$KVER" ] || die "no initrd for $KVER"
  cp "$kernel" "$dest/vmlinuz"
  cp "$root/boot/initrd.img-$KVER" "$dest/initrd.img"
}

# Boot the new image once (overlay, TCG) and require SSH as root and systemd "running".
selftest() {
  local dir="$1" port overlay="$BUILD/selftest.qcow2" state="" started waited
  local ssh_opts=(-i "$KEY" -o BatchMode=yes -o IdentitiesOnly=yes -o StrictHostKeyChecking=no
    -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=10)
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  qemu-img create -q -f qcow2 -b "$dir/disk.qcow2" -F qcow2 "$overlay"
  started=$(date +%s)
  qemu-system-x86_64 -machine pc -accel tcg -m 512 -smp 1 -nodefaults -no-user-config -display none \
    -kernel "$dir/vmlinuz" -initrd "$dir/initrd.img" \
    -append "root=/dev/vda rw console=ttyS0 net.ifnames=0 panic=10 compleat.hostname=selftest" \
    -drive "file=$overlay,if=virtio,format=qcow2,cache=unsafe" \
    -netdev "user,id=net0,net=192.168.253.0/24,hostfwd=tcp:127.0.0.1:$port-:22" -device virtio-net-pci,netdev=net0 \
    -device virtio-rng-pci -serial "file:$BUILD/selftest-serial.log" \
    -pidfile "$BUILD/selftest.pid" -daemonize
  # Generous: a busy 2-core machine has been seen to need 4 minutes for this first boot.
  while [ $(($(date +%s) - started)) -lt "${COMPLEAT_VM_SELFTEST_TIMEOUT:-600}" ]; do
    state="$(timeout 60 ssh "${ssh_opts[@]}" -p "$port" root@127.0.0.1 \
      'systemctl is-system-running --wait; hostname' 2>/dev/null | paste -sd' ' -)" || true
    [ -n "$state" ] && break
    sleep 2
  done
  waited=$(($(date +%s) - started))
  kill "$(cat "$BUILD/selftest.pid")" 2>/dev/null || true
  cp "$BUILD/selftest-serial.log" "$CACHE/vm-selftest-serial.log" 2>/dev/null || true
  case "$state" in
    "running selftest") ;;
    # A unit of an extra package may fail without a hypervisor/peer around: tell, don't block.
    "degraded selftest") log "image self-test: systemd degraded (see $CACHE/vm-selftest-serial.log)"
      grep -a 'FAILED' "$CACHE/vm-selftest-serial.log" >&2 || true ;;
    *)
      tail -n 40 "$CACHE/vm-selftest-serial.log" >&2 || true
      die "image self-test failed after ${waited}s: got '${state:-no SSH}', want 'running selftest'" ;;
  esac
  SELFTEST_SECONDS=$waited
  log "image self-test: SSH up, hostname set, systemd settled after ${waited}s"
}

write_manifest() {
  python3 - "$1" "$HASH" "$SUITE" "$MIRROR" "$DISK_SIZE" "$KVER" "$2" "$3" "$4" "$KEY" <<'EOF'
import json
import sys
import time

path, recipe, suite, mirror, size, kver, packages, build_s, selftest_s, key = sys.argv[1:]
manifest = {
    "name": "compleat-debian12-vm",
    "recipe_hash": recipe,
    "suite": suite,
    "mirror": mirror,
    "disk_size": size,
    "kernel_version": kver,
    "packages": packages.split(","),
    "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    "build_seconds": int(build_s),
    "selftest_boot_seconds": int(selftest_s) if selftest_s else None,
    "ssh_key": key,
}
with open(path, "w", encoding="utf-8") as fh:
    json.dump(manifest, fh, indent=2)
    fh.write("\n")
EOF
}

main() {
  local force=0 do_selftest=1 arg start end include old
  for arg in "$@"; do
    case "$arg" in
      --force) force=1 ;;
      --no-selftest) do_selftest=0 ;;
      *) die "usage: $0 [--force] [--no-selftest]" ;;
    esac
  done
  [ "$(id -u)" -eq 0 ] || die "run as root (debootstrap needs it)"
  for arg in debootstrap mkfs.ext4 qemu-img qemu-system-x86_64 ssh ssh-keygen flock; do
    command -v "$arg" >/dev/null || die "$arg missing: run scripts/bootstrap.sh"
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
  if [ "$force" -eq 0 ] && [ -s "$OUT/manifest.json" ] && [ -s "$OUT/disk.qcow2" ]; then
    point_current
    log "VM image $OUT is up to date"
    print_paths
    return 0
  fi

  BUILD="$CACHE/.vm-build-$HASH"
  ROOTFS="$BUILD/rootfs"
  trap cleanup EXIT
  start=$(date +%s)
  cleanup
  [ ! -e "$BUILD" ] || die "cannot clear $BUILD (a mount is still there)"
  mkdir -p "$BUILD/out"
  include="$(packages | paste -sd, -)"
  log "debootstrap $SUITE from $MIRROR (+ $include)"
  debootstrap --variant=minbase --include="$include" --cache-dir="$CACHE/vm-debs" \
    "$SUITE" "$ROOTFS" "$MIRROR" >"$CACHE/vm-debootstrap.log" 2>&1 \
    || { tail -n 30 "$CACHE/vm-debootstrap.log" >&2; die "debootstrap failed (log: $CACHE/vm-debootstrap.log)"; }
  log "configuring the guest"
  configure_rootfs "$ROOTFS"
  extract_boot_files "$ROOTFS" "$BUILD/out"

  log "making the ext4 root filesystem ($DISK_SIZE) and converting it to qcow2"
  truncate -s "$DISK_SIZE" "$BUILD/disk.raw"
  mkfs.ext4 -q -F -L compleat-root -E root_owner=0:0 -d "$ROOTFS" "$BUILD/disk.raw"
  qemu-img convert -f raw -O qcow2 "$BUILD/disk.raw" "$BUILD/out/disk.qcow2"
  rm -rf --one-file-system "$BUILD/disk.raw" "$ROOTFS"
  end=$(date +%s)

  SELFTEST_SECONDS=""
  if [ "$do_selftest" -eq 1 ]; then
    selftest "$BUILD/out"
  fi
  write_manifest "$BUILD/out/manifest.json" "$include" "$((end - start))" "$SELFTEST_SECONDS"

  rm -rf "$OUT"
  mv "$BUILD/out" "$OUT"
  point_current
  log "VM image $OUT built in $((end - start))s (kernel $KVER)"

  # Drop images of older recipes unless a VM's overlay still uses one as its backing file.
  for old in "$CACHE"/debian12-vm-*; do
    if [ ! -d "$old" ] || [ "$old" = "$OUT" ]; then continue; fi
    if grep -lsF "$old/" "$COMPLEAT_ROOT"/.cache/vms/*/vm.json >/dev/null 2>&1; then
      log "keeping $old: still used by a VM"
    else
      rm -rf "$old"
    fi
  done
  print_paths
}

main "$@"; exit $?
