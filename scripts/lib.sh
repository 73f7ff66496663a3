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
