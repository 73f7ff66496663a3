#!/usr/bin/env bash
# The test pipeline behind `make test` / `make test-quick`. Every stage prints its wall time and
# the summary at the end lists them all. Exit code 0 only when every stage passed.
#   scripts/test.sh full|quick|lint|units|fabric-lab|molecule
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cd "$COMPLEAT_ROOT" || exit 1
export PATH="$COMPLEAT_ROOT/.venv/bin:$PATH"
export ANSIBLE_CONFIG="$COMPLEAT_ROOT/ansible.cfg"
export ANSIBLE_FORCE_COLOR=0 PY_COLORS=0
mode="${1:-full}"
failed=()

run() { stage "$@" || failed+=("$1"); }

ruff_check() { ruff check . && ruff format --check .; }
ansible_lint() { ansible-lint --profile production --offline; }
units() {
  # pytest exits 5 when it collects nothing: that is a failure here, never a pass.
  python -m pytest -q -p no:cacheprovider tests/unit
}
# The fabric labs proven in CI; `extended` runs every lab test (DHCP relay, BGP alert, ...).
CI_LAB_TESTS=(tests/lab/test_fabric_lab.py tests/lab/test_fabric_lab_unnumbered.py tests/lab/test_dhcp_relay.py
  tests/lab/test_bgp_alert.py)
fabric_lab() { python -m pytest -q -p no:cacheprovider -rP -m lab "${CI_LAB_TESTS[@]}"; }
all_labs() { python -m pytest -q -p no:cacheprovider -m lab tests/lab; }
libvirt_lab() { python -m pytest -q -p no:cacheprovider -m libvirt tests/integration_libvirt; }
molecule_all() {
  local scenarios rc=0 s
  if [ "$mode" = extended ]; then
    scenarios="${MOLECULE_SCENARIOS:-$(find molecule -mindepth 2 -maxdepth 2 -name molecule.yml \
      -not -path 'molecule/_*' -printf '%h\n' | xargs -r -n1 basename | sort)}"
  else
    scenarios="${MOLECULE_SCENARIOS:-$(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' molecule/ci-scenarios.txt)}"
  fi
  [ -n "$scenarios" ] || { log "no molecule scenarios found"; return 1; }
  for s in $scenarios; do
    stage "molecule:$s" molecule test -s "$s" || rc=1
  done
  return "$rc"
}

mkdir -p "$(dirname "$STAGE_FILE")"
: > "$STAGE_FILE"
run bootstrap bash scripts/bootstrap.sh
if [ "${#failed[@]}" -ne 0 ]; then die "bootstrap failed; nothing else can run"; fi

case "$mode" in
  full|quick|extended)
    run ruff ruff_check
    run ansible-lint ansible_lint
    run sanity bash scripts/sanity.sh
    run units units
    if [ "$mode" != quick ]; then
      run images bash scripts/images/build-all.sh
      if [ "$mode" = extended ]; then run labs all_labs; else run fabric-lab fabric_lab; fi
      run libvirt libvirt_lab
      run molecule molecule_all
    fi
    ;;
  lint) run ruff ruff_check; run ansible-lint ansible_lint ;;
  units) run units units ;;
  fabric-lab) run fabric-lab fabric_lab ;;
  libvirt) run libvirt libvirt_lab ;;
  molecule) run images bash scripts/images/build-all.sh; run molecule molecule_all ;;
  *) die "unknown mode $mode (full|quick|extended|lint|units|fabric-lab|libvirt|molecule)" ;;
esac

echo
echo "== stage timings =="
cat "$STAGE_FILE"
if [ "${#failed[@]}" -ne 0 ]; then
  echo "FAILED stages: ${failed[*]}"
  exit 1
fi
echo "all stages passed"
