#!/usr/bin/env bash
# Build (or reuse) the tiny tenant guest image that `make lab` runs as a cloud instance
# (compleat.cloud.instance) on a lab hypervisor, itself a QEMU TCG VM: nested TCG, so the guest is
# a kernel + busybox initramfs and nothing else (docs/tenant-image.md).
#
#   .cache/images/tenant-tiny-<hash>/disk.qcow2     MBR (syslinux mbr.bin) + one FAT partition
#                                                   (label TENANTTINY) with syslinux, vmlinuz,
#                                                   initrd.gz and syslinux.cfg
#   .cache/images/tenant-tiny-<hash>/vmlinuz        the same kernel and initramfs, for direct
#   .cache/images/tenant-tiny-<hash>/initrd.gz      -kernel/-initrd boots and inspection
#   .cache/images/tenant-tiny-<hash>/manifest.json  what was built, sizes, sha256, self-test boot
#   .cache/images/tenant-tiny                       symlink to the current recipe's directory
#
# Kernel: Debian's generic linux-image-<abi>-amd64 (the cloud flavour the lab VMs boot has no
# AHCI driver, and the stack's default NoCloud seed is an ISO on a SATA CD-ROM). The .deb comes
# from .cache/images/vm-debs (what the VM image's debootstrap downloaded: the lab VMs' kernel)
# when it is there, otherwise `apt-get download` into .cache/images/tenant-debs.
# initramfs: busybox-static, the modules of tenant/modules.txt with their dependencies (from
# modules.dep: depmod on the unpacked .deb), tenant/init and its helpers, gzip'ed newc cpio.
# Disk: no loop device, no mount, no root needed: mkfs.vfat + mcopy on a partition image,
# `syslinux --install` on it (through mtools), sfdisk and mbr.bin on the disk image, the partition
# dd'ed at 1 MiB, then qemu-img convert to qcow2. Then a boot self-test (QEMU TCG, vfat seed,
# a data disk, user-mode network): the READY line and the volume over HTTP.
#
# The recipe hash covers this script, everything under tenant/, the kernel .deb, busybox and
# the syslinux version; a complete directory for that hash (manifest.json) is reused as is.
# Builds are serialised with flock and happen in a temporary directory. Prints the paths it
# produced (or reused) on stdout, one per line; logs go to stderr.
#
# Usage: scripts/images/build-tenant-image.sh [--force] [--no-selftest]
# Env:   COMPLEAT_TENANT_KERNEL_DEB        a linux-image-*-amd64 .deb to use instead
#        COMPLEAT_IMAGE_LOCK_TIMEOUT       seconds to wait for a concurrent build (default 1800)
#        COMPLEAT_TENANT_SELFTEST_TIMEOUT  seconds the self-test boot may take (default 300)
#
# The whole script is one function called on the last line, so editing this file while a
# build runs cannot change what the running bash executes.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/lib.sh
. "$HERE/../lib.sh"

SRC="$HERE/tenant"
CACHE="$COMPLEAT_ROOT/.cache/images"
# generic (default): works with both seed formats. cloud: LZ4-compressed kernel, several times
# faster to boot under (nested) TCG, but it has no AHCI driver: vfat seeds only (seed_format=vfat).
FLAVOUR="${COMPLEAT_TENANT_KERNEL_FLAVOUR:-generic}"
case "$FLAVOUR" in
  generic) NAME=tenant-tiny; KERNEL_META=linux-image-amd64; KERNEL_GLOB='linux-image-[0-9]*-amd64_*_amd64.deb' ;;
  cloud) NAME=tenant-tiny-cloud; KERNEL_META=linux-image-cloud-amd64; KERNEL_GLOB='linux-image-[0-9]*-cloud-amd64_*_amd64.deb' ;;
  *) die "COMPLEAT_TENANT_KERNEL_FLAVOUR=$FLAVOUR: want generic or cloud" ;;
esac
CURRENT="$CACHE/$NAME"
MBR_BIN=/usr/lib/syslinux/mbr/mbr.bin
PART_START_SECTOR=2048  # the FAT partition starts at 1 MiB
TOOLS=(dpkg-deb depmod mkfs.vfat mcopy syslinux sfdisk cpio gzip qemu-img qemu-system-x86_64 flock curl)

print_paths() {
  printf '%s\n' "$OUT/disk.qcow2" "$OUT/vmlinuz" "$OUT/initrd.gz" "$OUT/manifest.json" "$CURRENT"
}

point_current() {
  ln -sfn "$(basename "$OUT")" "$CURRENT.tmp"
  mv -T "$CURRENT.tmp" "$CURRENT"
}

cleanup() {
  local pid
  [ -n "${BUILD:-}" ] && [ -d "$BUILD" ] || return 0
  if [ -s "$BUILD/selftest.pid" ]; then
    pid="$(cat "$BUILD/selftest.pid")"
    if grep -qsF "$BUILD/selftest.pid" "/proc/$pid/cmdline"; then kill "$pid" 2>/dev/null || true; fi
  fi
  rm -rf --one-file-system "$BUILD"
}

# The kernel .deb: the override, else the generic flavour the VM image build cached, else
# `apt-get download` of what linux-image-amd64 depends on (into tenant-debs).
kernel_deb() {
  local deb pkg
  if [ -n "${COMPLEAT_TENANT_KERNEL_DEB:-}" ]; then
    [ -s "$COMPLEAT_TENANT_KERNEL_DEB" ] || die "COMPLEAT_TENANT_KERNEL_DEB=$COMPLEAT_TENANT_KERNEL_DEB: no such file"
    echo "$COMPLEAT_TENANT_KERNEL_DEB"; return 0
  fi
  deb="$(find "$CACHE/vm-debs" "$CACHE/tenant-debs" -maxdepth 1 -name "$KERNEL_GLOB" 2>/dev/null \
    | { if [ "$FLAVOUR" = generic ]; then grep -v -e '-cloud-amd64_' -e '-rt-amd64_'; else cat; fi; } \
    | grep -v -e '-dbg_' -e '-unsigned_' | sort -V | tail -n 1)" || true
  if [ -n "$deb" ]; then echo "$deb"; return 0; fi
  pkg="$(apt-cache depends "$KERNEL_META" 2>/dev/null \
    | awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9].*-amd64$/ { print $2; exit }')"
  [ -n "$pkg" ] || die "cannot resolve $KERNEL_META to a kernel package (apt-get update?)"
  log "downloading $pkg into $CACHE/tenant-debs"
  mkdir -p "$CACHE/tenant-debs"
  (cd "$CACHE/tenant-debs" && apt-get download -q "$pkg" >&2) || die "apt-get download $pkg failed"
  find "$CACHE/tenant-debs" -maxdepth 1 -name "${pkg}_*_amd64.deb" | sort -V | tail -n 1
}

# busybox-static's binary (statically linked: it is the whole userland of the initramfs).
busybox_bin() {
  local bin
  bin="$(dpkg -L busybox-static 2>/dev/null | grep -E '/bin/busybox$' | head -n 1)" || true
  if [ -z "$bin" ] || [ ! -x "$bin" ]; then die "busybox-static is not installed (scripts/packages.d/tenant-image.txt; run scripts/bootstrap.sh)"; fi
  if ldd "$bin" >/dev/null 2>&1; then die "$bin is dynamically linked: install busybox-static"; fi
  echo "$bin"
}

# Module names of tenant/modules.txt -> the .ko paths (relative to lib/modules/KVER) to insmod,
# dependencies first, each once; built-in modules are skipped, and so are missing modules marked
# optional ("name?"), which the kernel flavour may lack.
module_order() {
  local kdir="$1" mod path dep i optional
  local -a order=() parts
  while read -r mod; do
    optional=0
    case "$mod" in *\?) mod="${mod%\?}"; optional=1 ;; esac
    path="$(awk -v m="$mod" '{ p = $1; sub(/:$/, "", p); n = p; sub(/.*\//, "", n); sub(/\.ko(\.[a-z]+)?$/, "", n);
              gsub(/-/, "_", n); if (n == m) { print; exit } }' "$kdir/modules.dep")"
    if [ -z "$path" ]; then
      grep -qE "/${mod//_/[-_]}\.ko$" "$kdir/modules.builtin" && continue
      if [ "$optional" -eq 1 ]; then log "kernel module $mod: not in this kernel (optional)"; continue; fi
      die "kernel module $mod: neither in modules.dep nor built in"
    fi
    read -r -a parts <<< "$path"
    parts[0]="${parts[0]%:}"
    # modules.dep lists a module's dependencies so that loading them last-to-first works.
    for ((i = ${#parts[@]} - 1; i >= 1; i--)); do order+=("${parts[i]}"); done
    order+=("${parts[0]}")
  done < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' -e '/^$/d' "$SRC/modules.txt")
  for dep in "${order[@]}"; do echo "$dep"; done | awk '!seen[$0]++'
}

make_initramfs() {
  local kroot="$1" kver="$2" tree="$3" out="$4" busybox="$5" kdir rel
  kdir="$kroot/lib/modules/$kver"
  mkdir -p "$tree"/{bin,sbin,usr/bin,usr/sbin,etc/tenant,etc/acpi,lib/modules,var/log,dev,proc,sys,run,tmp,mnt/seed,root,www/cgi-bin}
  cp "$busybox" "$tree/bin/busybox"
  # One symlink per applet, where busybox would install it (ip, udhcpc, httpd, insmod, init...).
  "$busybox" --list-full | while read -r rel; do
    [ "$rel" = bin/busybox ] || [ -e "$tree/$rel" ] || ln -s /bin/busybox "$tree/$rel"
  done
  module_order "$kdir" > "$BUILD/modules.order"
  : > "$tree/etc/tenant/modules.order"
  while read -r rel; do
    cp "$kdir/$rel" "$tree/lib/modules/"
    basename "$rel" >> "$tree/etc/tenant/modules.order"
  done < "$BUILD/modules.order"
  install -m 0755 "$SRC/init" "$tree/init"
  install -m 0644 "$SRC/netcfg.awk" "$tree/etc/tenant/netcfg.awk"
  install -m 0755 "$SRC/udhcpc.script" "$tree/etc/tenant/udhcpc.script"
  install -m 0644 "$SRC/inittab" "$tree/etc/inittab"
  install -D -m 0755 "$SRC/acpi/PWRF/00000080" "$tree/etc/acpi/PWRF/00000080"
  install -m 0644 "$SRC/www/index.html" "$tree/www/index.html"
  install -m 0755 "$SRC/www/cgi-bin/volume" "$SRC/www/cgi-bin/id" "$tree/www/cgi-bin/"
  ln -s /run "$tree/var/run"
  printf 'root:x:0:0:root:/root:/bin/sh\n' > "$tree/etc/passwd"
  printf 'root:x:0:\n' > "$tree/etc/group"
  : > "$tree/etc/resolv.conf"
  printf '%s kernel=%s\n' "$HASH" "$kver" > "$tree/etc/tenant/version"
  (cd "$tree" && find . -mindepth 1 | LC_ALL=C sort \
    | cpio -o -H newc -R 0:0 --reproducible --quiet) | gzip -9 -n > "$out"
}

# disk.raw: MBR + partition table + FAT partition (syslinux) at PART_START_SECTOR.
make_disk() {
  local vmlinuz="$1" initrd="$2" disk="$3" part="$BUILD/part.img" need_kib part_kib
  need_kib=$(( ($(stat -c %s "$vmlinuz") + $(stat -c %s "$initrd")) / 1024 ))
  # Room for FAT overhead and ldlinux, rounded up to whole MiB.
  part_kib=$(( (need_kib + need_kib / 8 + 2048 + 1023) / 1024 * 1024 ))
  mkfs.vfat -n TENANTTINY -h "$PART_START_SECTOR" -C "$part" "$part_kib" >/dev/null
  mcopy -i "$part" "$vmlinuz" ::/vmlinuz
  mcopy -i "$part" "$initrd" ::/initrd.gz
  mcopy -i "$part" "$SRC/syslinux.cfg" ::/syslinux.cfg
  syslinux --install "$part"
  truncate -s $(( PART_START_SECTOR * 512 + part_kib * 1024 )) "$disk"
  printf 'label: dos\nstart=%s, type=6, bootable\n' "$PART_START_SECTOR" | sfdisk -q "$disk"
  dd if="$part" of="$disk" bs=512 seek="$PART_START_SECTOR" conv=notrunc status=none
  dd if="$MBR_BIN" of="$disk" bs=440 count=1 conv=notrunc status=none
  rm -f "$part"
}

# Boot the image as the stack would run it (disk on virtio, NoCloud vfat seed on vdz, a data disk)
# with QEMU user-mode networking, wait for the READY line, then read the volume over HTTP.
selftest() {
  local dir="$1" seed="$BUILD/seed" port started waited=0 ready="" got serial="$BUILD/selftest-serial.log"
  local timeout="${COMPLEAT_TENANT_SELFTEST_TIMEOUT:-300}"
  mkdir -p "$seed"
  # JSON, as the cloud stack's seed module writes it (plugins/module_utils/cloud/seed.py)
  printf '{"instance-id": "iid-selftest", "local-hostname": "tenant-selftest"}\n' > "$seed/meta-data"
  printf '#cloud-config\n{}\n' > "$seed/user-data"
  printf '%s\n' '{"version": 2, "ethernets": {"eth0": {' \
    '  "match": {"macaddress": "52:54:00:12:34:56"}, "set-name": "eth0",' \
    '  "addresses": ["10.0.2.15/24"], "routes": [{"to": "0.0.0.0/0", "via": "10.0.2.2"}]}}}' \
    > "$seed/network-config"
  mkfs.vfat -n CIDATA -C "$BUILD/seed.img" 2048 >/dev/null
  mcopy -o -i "$BUILD/seed.img" "$seed/meta-data" "$seed/user-data" "$seed/network-config" ::
  qemu-img create -q -f qcow2 -b "$dir/disk.qcow2" -F qcow2 "$BUILD/selftest.qcow2"
  truncate -s 16M "$BUILD/data.raw"
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  : > "$serial"
  started=$(date +%s)
  qemu-system-x86_64 -machine pc -accel tcg -m 128 -smp 1 -nodefaults -no-user-config -display none \
    -drive "file=$BUILD/selftest.qcow2,if=none,id=root,format=qcow2,cache=unsafe" \
    -device virtio-blk-pci,drive=root,bootindex=1 \
    -drive "file=$BUILD/data.raw,if=none,id=data,format=raw,cache=unsafe" -device virtio-blk-pci,drive=data \
    -drive "file=$BUILD/seed.img,if=none,id=seed,format=raw,readonly=on" -device virtio-blk-pci,drive=seed \
    -netdev "user,id=net0,hostfwd=tcp:127.0.0.1:$port-:80" -device virtio-net-pci,netdev=net0,mac=52:54:00:12:34:56 \
    -serial "file:$serial" -pidfile "$BUILD/selftest.pid" -daemonize
  while [ "$waited" -lt "$timeout" ]; do
    ready="$(grep -a -m 1 -E '^COMPLEAT-TENANT-(READY|FAILED)' "$serial" | tr -d '\r')" || true
    [ -n "$ready" ] && break
    sleep 1
    waited=$(($(date +%s) - started))
  done
  got="$(curl -s --max-time 30 "http://127.0.0.1:$port/cgi-bin/volume" | tr -d '\r')" || true
  kill "$(cat "$BUILD/selftest.pid")" 2>/dev/null || true
  cp "$serial" "$CACHE/$NAME-selftest-serial.log" 2>/dev/null || true
  case "$ready" in
    "COMPLEAT-TENANT-READY instance-id=iid-selftest hostname=tenant-selftest ip=10.0.2.15/24 volume=written") ;;
    *) tail -n 30 "$serial" >&2 || true
       die "tenant image self-test: got '${ready:-no READY line}' after ${waited}s (log: $CACHE/$NAME-selftest-serial.log)" ;;
  esac
  case "$got" in
    "COMPLEAT-DATA instance-id=iid-selftest written="*) ;;
    *) die "tenant image self-test: /cgi-bin/volume returned '$got'" ;;
  esac
  SELFTEST_SECONDS=$waited
  log "tenant image self-test: READY after ${waited}s (single TCG, 128 MiB), volume read back over HTTP"
}

write_manifest() {
  python3 - "$@" <<'EOF'
import hashlib
import json
import os
import sys
import time

(path, recipe, kver, kdeb, busybox, modules, build_s, selftest_s, out) = sys.argv[1:]


def sha256(name):
    digest = hashlib.sha256()
    with open(os.path.join(out, name), "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


manifest = {
    "name": "compleat-" + os.environ["TENANT_IMAGE_NAME"],
    "kernel_flavour": os.environ["TENANT_KERNEL_FLAVOUR"],
    "recipe_hash": recipe,
    "kernel_version": kver,
    "kernel_deb": os.path.basename(kdeb),
    "busybox": busybox,
    "modules": modules.split(),
    "files": {
        name: {"bytes": os.path.getsize(os.path.join(out, name)), "sha256": sha256(name)}
        for name in ("disk.qcow2", "vmlinuz", "initrd.gz")
    },
    "disk_virtual_bytes": int(open(os.path.join(out, ".virtual-size")).read()),
    "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    "build_seconds": int(build_s),
    "selftest_boot_seconds": int(selftest_s) if selftest_s else None,
}
os.unlink(os.path.join(out, ".virtual-size"))
with open(path, "w", encoding="utf-8") as fh:
    json.dump(manifest, fh, indent=2)
    fh.write("\n")
EOF
}

main() {
  local force=0 do_selftest=1 arg start end kdeb busybox kver vmlinuz old
  for arg in "$@"; do
    case "$arg" in
      --force) force=1 ;;
      --no-selftest) do_selftest=0 ;;
      *) die "usage: $0 [--force] [--no-selftest]" ;;
    esac
  done
  for arg in "${TOOLS[@]}"; do
    command -v "$arg" >/dev/null || die "$arg missing: run scripts/bootstrap.sh (scripts/packages.d/tenant-image.txt)"
  done
  [ -s "$MBR_BIN" ] || die "$MBR_BIN missing: install syslinux-common"

  mkdir -p "$CACHE"
  exec 9>"$CACHE/$NAME-image.lock"
  if ! flock -n 9; then
    log "another tenant image build is running; waiting for it"
    flock -w "${COMPLEAT_IMAGE_LOCK_TIMEOUT:-1800}" 9 || die "timed out waiting for $CACHE/$NAME-image.lock"
  fi

  kdeb="$(kernel_deb)"
  busybox="$(busybox_bin)"
  HASH="$(recipe_hash "$HERE/build-tenant-image.sh" \
    <(cd "$SRC" && find . -type f | LC_ALL=C sort | xargs sha256sum) \
    <(sha256sum "$kdeb" "$busybox" "$MBR_BIN" | cut -d' ' -f1) \
    <(dpkg-query -W syslinux syslinux-common busybox-static mtools dosfstools 2>/dev/null) \
    <(echo "flavour=$FLAVOUR"))"
  OUT="$CACHE/$NAME-$HASH"
  if [ "$force" -eq 0 ] && [ -s "$OUT/manifest.json" ] && [ -s "$OUT/disk.qcow2" ]; then
    point_current
    log "tenant image $OUT is up to date"
    print_paths
    return 0
  fi

  BUILD="$CACHE/.$NAME-build-$HASH"
  trap cleanup EXIT
  start=$(date +%s)
  cleanup
  mkdir -p "$BUILD/out"
  log "unpacking $(basename "$kdeb")"
  dpkg-deb -x "$kdeb" "$BUILD/kernel"
  vmlinuz="$(find "$BUILD/kernel/boot" -maxdepth 1 -name 'vmlinuz-*' | sort -V | tail -n 1)"
  [ -n "$vmlinuz" ] || die "no vmlinuz in $kdeb"
  kver="${vmlinuz##*/vmlinuz-}"
  depmod -b "$BUILD/kernel" "$kver"
  cp "$vmlinuz" "$BUILD/out/vmlinuz"

  log "initramfs: busybox $("$busybox" 2>&1 | head -n 1 | awk '{ print $2 }') + modules of $kver"
  make_initramfs "$BUILD/kernel" "$kver" "$BUILD/initramfs" "$BUILD/out/initrd.gz" "$busybox"
  rm -rf --one-file-system "$BUILD/kernel" "$BUILD/initramfs"

  log "disk: MBR + FAT partition (syslinux), qcow2"
  make_disk "$BUILD/out/vmlinuz" "$BUILD/out/initrd.gz" "$BUILD/disk.raw"
  stat -c %s "$BUILD/disk.raw" > "$BUILD/out/.virtual-size"
  qemu-img convert -f raw -O qcow2 "$BUILD/disk.raw" "$BUILD/out/disk.qcow2"
  rm -f "$BUILD/disk.raw"
  end=$(date +%s)

  SELFTEST_SECONDS=""
  if [ "$do_selftest" -eq 1 ]; then
    selftest "$BUILD/out"
  fi
  TENANT_IMAGE_NAME="$NAME" TENANT_KERNEL_FLAVOUR="$FLAVOUR" write_manifest "$BUILD/out/manifest.json" "$HASH" "$kver" "$kdeb" \
    "$(dpkg-query -W -f='${Version}' busybox-static)" \
    "$(sed 's/\.ko.*//' "$BUILD/modules.order" | sed 's,.*/,,' | paste -sd' ' -)" \
    "$((end - start))" "$SELFTEST_SECONDS" "$BUILD/out"

  rm -rf "$OUT"
  mv "$BUILD/out" "$OUT"
  point_current
  log "tenant image $OUT built in $((end - start))s (kernel $kver, disk $(du -h --apparent-size "$OUT/disk.qcow2" | cut -f1))"

  for old in "$CACHE/$NAME"-????????????; do
    if [ -d "$old" ] && [ "$old" != "$OUT" ]; then rm -rf "$old"; fi
  done
  print_paths
}

main "$@"; exit $?
