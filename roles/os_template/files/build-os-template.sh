#!/usr/bin/env bash
# compleat.cloud.os_template build script: a Debian OS-only template disk (qcow2) made with
# debootstrap, no loop devices or mounts needed (so it also runs in containers):
#
#   1. debootstrap minbase + PACKAGES into a scratch root;
#   2. template settings: root by filesystem label, empty machine-id, no SSH host keys (each
#      instance makes its own), cloud-init with the NoCloud/ConfigDrive datasources and the
#      systemd-networkd renderer, serial console, apt sources on the public mirror;
#   3. a raw disk with one MBR partition from 1 MiB; the ext4 root is built from the scratch
#      root straight into the partition (mkfs.ext4 -d -E offset=);
#   4. GRUB for BIOS, embedded by hand like grub-install does: boot.img in the MBR's code area,
#      a core.img (biosdisk, part_msdos, ext2, serial...) in the gap after it, modules and
#      grub.cfg in /boot/grub of the root filesystem;
#   5. compressed qcow2, written next to OUTPUT and renamed into place.
#
# Prints one JSON line on stdout: kernel, package versions, sizes, sha256. Logs go to stderr.
# Usage: build-os-template.sh OUTPUT.qcow2 SUITE BUILD_MIRROR TARGET_MIRROR SIZE CACHE_DIR WORK_DIR PACKAGES...
set -euo pipefail

main() {
  local output="$1" suite="$2" mirror="$3" target_mirror="$4" size="$5" cache="$6" work="$7"
  shift 7
  local packages=("$@")
  [ "$(id -u)" -eq 0 ] || die "run as root (debootstrap needs it)"
  local tool
  for tool in debootstrap mkfs.ext4 qemu-img parted sha256sum; do
    command -v "$tool" >/dev/null || die "missing tool: $tool"
  done
  mkdir -p "$work" "$(dirname "$output")"
  BUILD="$(mktemp -d "$work/os-template.XXXXXX")"
  trap cleanup EXIT
  local root="$BUILD/root" raw="$BUILD/disk.raw"

  local include
  include="$(IFS=,; echo "${packages[*]}")"
  log "debootstrap $suite from $mirror (+ $include)"
  local cache_opt=()
  if [ -n "$cache" ]; then mkdir -p "$cache"; cache_opt=(--cache-dir="$cache"); fi
  debootstrap --variant=minbase --include="$include" "${cache_opt[@]}" \
    "$suite" "$root" "$mirror" >"$BUILD/debootstrap.log" 2>&1 \
    || { tail -n 30 "$BUILD/debootstrap.log" >&2; die "debootstrap failed"; }

  configure "$root" "$suite" "$target_mirror"
  install_grub_files "$root"
  make_disk "$root" "$raw" "$size"

  log "qemu-img convert (compressed qcow2)"
  qemu-img convert -q -c -O qcow2 "$raw" "$output.tmp"
  mv -f "$output.tmp" "$output"
  report "$root" "$output"
}

log() { printf 'os_template: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

cleanup() {
  local rc=$?
  if [ -n "${BUILD:-}" ] && [ -d "$BUILD" ]; then
    local mnt
    for mnt in proc sys dev/pts dev; do
      mountpoint -q "$BUILD/root/$mnt" 2>/dev/null && umount -l "$BUILD/root/$mnt"
    done
    rm -rf "$BUILD"
  fi
  exit "$rc"
}

configure() {
  local root="$1" suite="$2" target_mirror="$3"
  printf 'LABEL=root / ext4 defaults,discard,errors=remount-ro 0 1\n' > "$root/etc/fstab"
  echo localhost > "$root/etc/hostname"
  printf 'LANG=C.UTF-8\n' > "$root/etc/default/locale"
  printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' > "$root/etc/hosts"
  # Every instance gets its own identity on first boot.
  : > "$root/etc/machine-id"
  rm -f "$root/var/lib/dbus/machine-id" "$root"/etc/ssh/ssh_host_*
  cat > "$root/etc/systemd/system/compleat-ssh-hostkeys.service" <<'UNIT'
[Unit]
Description=Create this instance's SSH host keys
After=cloud-init.service
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target
UNIT
  cat > "$root/etc/cloud/cloud.cfg.d/90-compleat-template.cfg" <<'CFG'
# compleat.cloud OS-only template: seeds come from the cloud stack (NoCloud) or a config drive.
datasource_list: [NoCloud, ConfigDrive, None]
# minbase has no locales package: stay on the C.UTF-8 locale built into libc.
locale: C.UTF-8
system_info:
  network:
    renderers: [networkd]
    activators: [networkd]
CFG
  printf 'deb %s %s main\ndeb %s %s-updates main\n' "$target_mirror" "$suite" "$target_mirror" "$suite" \
    > "$root/etc/apt/sources.list"
  chroot "$root" systemctl enable --quiet systemd-networkd.service compleat-ssh-hostkeys.service
  chroot "$root" passwd -q -l root >/dev/null
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin "$root"/var/lib/apt/lists/*_dists_*
  find "$root/var/log" -type f -exec truncate -s 0 {} +
}

install_grub_files() {
  local root="$1" kernel initrd
  kernel="$(find "$root/boot" -maxdepth 1 -name 'vmlinuz-*' -printf '%f\n' | sort -V | tail -n 1)"
  [ -n "$kernel" ] || die "no kernel in /boot of the template"
  initrd="initrd.img-${kernel#vmlinuz-}"
  [ -s "$root/boot/$initrd" ] || die "no $initrd in /boot of the template"
  KVER="${kernel#vmlinuz-}"
  mkdir -p "$root/boot/grub/i386-pc"
  cp "$root"/usr/lib/grub/i386-pc/*.mod "$root"/usr/lib/grub/i386-pc/*.lst "$root/boot/grub/i386-pc/"
  # /vmlinuz and /initrd.img are the kernel package's symlinks to the newest kernel, so the menu
  # stays right after kernel upgrades without update-grub.
  ln -sfn "boot/$kernel" "$root/vmlinuz"
  ln -sfn "boot/$initrd" "$root/initrd.img"
  cat > "$root/boot/grub/grub.cfg" <<'CFG'
# compleat.cloud OS-only template (GRUB for BIOS, no update-grub: /vmlinuz follows the kernel)
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set timeout=1
set default=0
menuentry "Debian GNU/Linux (compleat.cloud template)" {
  search --no-floppy --label root --set=root
  linux /vmlinuz root=LABEL=root ro console=tty0 console=ttyS0,115200n8
  initrd /initrd.img
}
CFG
  chroot "$root" grub-mkimage -O i386-pc -o /boot/grub/core.img -p '(hd0,msdos1)/boot/grub' \
    biosdisk part_msdos ext2 search search_label normal linux configfile echo test serial terminal
}

make_disk() {
  local root="$1" raw="$2" size="$3" fs_kib core_sectors
  truncate -s "$size" "$raw"
  parted -s "$raw" mklabel msdos mkpart primary ext4 1MiB 100% set 1 boot on
  fs_kib=$(( $(stat -c %s "$raw") / 1024 - 1024 ))
  log "mkfs.ext4 -d (root filesystem ${fs_kib} KiB at 1 MiB)"
  mkfs.ext4 -q -F -L root -E offset=1048576 -d "$root" "$raw" "${fs_kib}k"
  # MBR: boot code (440 bytes, the partition table after it stays), core.img from sector 1.
  core_sectors=$(( ($(stat -c %s "$root/boot/grub/core.img") + 511) / 512 ))
  [ "$core_sectors" -lt 2047 ] || die "core.img does not fit before the partition"
  dd if="$root/usr/lib/grub/i386-pc/boot.img" of="$raw" bs=440 count=1 conv=notrunc status=none
  dd if="$root/boot/grub/core.img" of="$raw" bs=512 seek=1 conv=notrunc status=none
}

report() {
  local root="$1" output="$2" sum vsize asize
  sum="$(sha256sum "$output" | cut -d' ' -f1)"
  vsize="$(qemu-img info --output=json "$output" | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')"
  asize="$(stat -c %s "$output")"
  python3 - "$root" "$KVER" "$sum" "$vsize" "$asize" <<'PY'
import json, subprocess, sys
root, kver, sha, vsize, asize = sys.argv[1:6]
out = subprocess.run(["chroot", root, "dpkg-query", "-W", "-f", "${Package}\t${Version}\n"],
                     capture_output=True, text=True, check=True).stdout
versions = dict(line.split("\t", 1) for line in out.splitlines() if "\t" in line)
debian = open(f"{root}/etc/debian_version", encoding="utf-8").read().strip()
print(json.dumps({"kernel": kver, "debian_version": debian, "sha256": sha,
                  "virtual_size": int(vsize), "size_bytes": int(asize), "packages": len(versions),
                  "cloud_init": versions.get("cloud-init", ""), "openssh_server": versions.get("openssh-server", "")}))
PY
}

main "$@"
