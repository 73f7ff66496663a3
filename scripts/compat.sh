#!/usr/bin/env bash
# Sanity and unit tests on the lowest ansible-core the collection supports (meta/runtime.yml
# requires_ansible). `make test`'s own venv (.venv) carries the newest release; this stage runs the
# same unit tests and ansible-test sanity with .venv-core-min, made from requirements-core-min.txt
# (rebuilt only when that file changes).
#   scripts/compat.sh [units|sanity|all]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$COMPLEAT_ROOT"
what="${1:-all}"
venv=.venv-core-min

install_core_min_venv() {
  local stamp="$venv/.requirements.sha" want
  want=$(recipe_hash requirements-core-min.txt)
  if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    log "$venv: up to date"; return 0
  fi
  log "$venv: installing requirements-core-min.txt"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip
  "$venv/bin/pip" install -q -r requirements-core-min.txt
  echo "$want" > "$stamp"
}

install_core_min_venv
core=$("$venv/bin/python" -c 'from ansible.release import __version__; print(__version__)')
export PATH="$COMPLEAT_ROOT/$venv/bin:$PATH"
rc=0
if [ "$what" != sanity ]; then
  log "ansible-core $core: unit tests"
  python -m pytest -q -p no:cacheprovider tests/unit || rc=1
fi
if [ "$what" != units ]; then
  log "ansible-core $core: ansible-test sanity"
  COMPLEAT_SANITY_VENV="$venv" bash scripts/sanity.sh || rc=1
fi
exit "$rc"
