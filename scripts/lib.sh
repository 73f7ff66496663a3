# Shared shell helpers for the project's scripts. Source it; it defines functions only.
# shellcheck shell=bash

# Repository root, whatever directory a script is started from.
COMPLEAT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export COMPLEAT_ROOT

log() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31mERROR:\033[0m %s\n' "$*" >&2; exit 1; }

# stage NAME CMD...: run a command, print its wall time, record it for the summary.
STAGE_FILE="${STAGE_FILE:-$COMPLEAT_ROOT/build/stage-times.txt}"
stage() {
  local name="$1"; shift
  local start end rc
  mkdir -p "$(dirname "$STAGE_FILE")"
  log "stage $name: $*"
  start=$(date +%s)
  "$@"; rc=$?
  end=$(date +%s)
  printf '%-28s %5ss  rc=%s\n' "$name" "$((end - start))" "$rc" | tee -a "$STAGE_FILE" >&2
  return "$rc"
}

# The packages listed in scripts/packages.d/*.txt (comments and blanks removed).
wanted_packages() {
  sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$COMPLEAT_ROOT"/scripts/packages.d/*.txt | sort -u
}

# Hash of files/strings, used to key caches on their recipe.
recipe_hash() { cat "$@" | sha256sum | cut -c1-12; }

# mitogen_env: print the environment (NAME=VALUE lines) that runs Ansible with Mitogen's
# strategy, one persistent Python per SSH target instead of a new one per task (a TCG VM pays
# ~3 s per task without it; figures in docs/dev/testing.md). Used for the runs against QEMU VMs
# (molecule's `default` driver) only: Mitogen keeps Ansible's own path for the podman connection
# anyway, and molecule-plugins' bundled podman create (async tasks on the local connection) hangs
# under it. A test/lab speed-up only: the collection does not depend on it.
# COMPLEAT_MITOGEN=0 turns it off; prints nothing when Mitogen is not installed.
# Mitogen's strategy runs as lab/strategy_plugins/mitogen_linear_unpinned.py: without Mitogen's
# CPU pinning, which on 2 cores puts every worker and every VM those start on one CPU.
mitogen_env() {
  [ "${COMPLEAT_MITOGEN:-1}" = 1 ] || return 0
  "$COMPLEAT_ROOT/.venv/bin/python" -c 'import ansible_mitogen' 2>/dev/null || return 0
  printf 'ANSIBLE_STRATEGY_PLUGINS=%s\nANSIBLE_STRATEGY=mitogen_linear_unpinned\n' "$COMPLEAT_ROOT/lab/strategy_plugins"
  # Mitogen's connect timeout (Ansible's `timeout`, 10 s by default) covers its bootstrap: SSH,
  # the compressed core sent over, a Python started and answering on the target. A TCG guest
  # beside two other booting VMs took longer than 10 s ("Connection timed out" at fact gathering).
  printf 'ANSIBLE_TIMEOUT=%s\n' "${ANSIBLE_TIMEOUT:-120}"
}

# podman_env: print the environment that runs Ansible's tasks against podman containers with
# pipelining, through the lab's podman connection (lab/connection_plugins/podman.py): one
# `podman exec --interactive` per task instead of a mount, three execs and a copy (a play of 36
# tasks: 32.0 s -> 17.0 s; figures in docs/dev/testing.md). molecule's podman driver names the
# connection `podman`, which resolves to it on this plugin path. COMPLEAT_PODMAN_PIPELINING=0
# turns it off.
podman_env() {
  [ "${COMPLEAT_PODMAN_PIPELINING:-1}" = 1 ] || return 0
  printf 'ANSIBLE_CONNECTION_PLUGINS=%s\nANSIBLE_PIPELINING=True\n' "$COMPLEAT_ROOT/lab/connection_plugins"
}

# start_only ROOT UNIT...: in the image tree ROOT, disable (not mask) every unit its packages
# enabled except UNIT...: a `disable *` preset after the kept units, applied with preset-all and
# removed again (Debian's maintainer scripts ignore presets: a package installed later is
# enabled as usual). The base images start nothing they bake; roles enable what they install.
start_only() {
  local root="$1" unit preset
  shift
  preset="$root/etc/systemd/system-preset/00-compleat-lab.preset"
  mkdir -p "$(dirname "$preset")"
  {
    echo "# compleat.cloud lab image: nothing baked in starts by itself; roles enable what they install."
    for unit in "$@"; do echo "enable $unit"; done
    echo "disable *"
  } > "$preset"
  chroot "$root" systemctl preset-all --preset-mode=full >/dev/null 2>&1 \
    || die "systemctl preset-all failed in the image"
  rm -f "$preset"
}
