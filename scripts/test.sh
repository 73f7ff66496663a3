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
# A scenario's lane: the second column of its line in molecule/ci-scenarios.txt, else "a".
# Lanes run side by side, the scenarios of one lane one after another.
lane_of() {
  local lane
  lane="$(sed -e 's/#.*//' molecule/ci-scenarios.txt | awk -v s="$1" '$1 == s && NF > 1 {print $2}')"
  echo "${lane:-a}"
}
# run_lane NAME SCENARIO...: each scenario's output goes to build/logs/molecule-<s>.log and is
# printed whole when it ends (under a lock, so the lanes' logs do not interleave).
run_lane() {
  local lane="$1" rc=0 s log_file; shift
  for s in "$@"; do
    log_file="$COMPLEAT_ROOT/build/logs/molecule-$s.log"
    stage "molecule:$s" molecule test -s "$s" >"$log_file" 2>&1 || rc=1
    # shellcheck disable=SC2016 # the inner script's $1.. are its own arguments
    flock "$COMPLEAT_ROOT/build/logs/.print.lock" bash -c \
      'printf "\n===== molecule %s (lane %s) =====\n" "$1" "$2"; cat "$3"' _ "$s" "$lane" "$log_file"
  done
  return "$rc"
}
molecule_all() {
  local scenarios rc=0 s lane pids=() lanes=()
  declare -A members=()
  if [ "$mode" = extended ]; then
    scenarios="${MOLECULE_SCENARIOS:-$(find molecule -mindepth 2 -maxdepth 2 -name molecule.yml \
      -not -path 'molecule/_*' -printf '%h\n' | xargs -r -n1 basename | sort)}"
  else
    scenarios="${MOLECULE_SCENARIOS:-$(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' molecule/ci-scenarios.txt | awk '{print $1}')}"
  fi
  [ -n "$scenarios" ] || { log "no molecule scenarios found"; return 1; }
  mkdir -p "$COMPLEAT_ROOT/build/logs"
  for s in $scenarios; do
    [ -f "molecule/$s/molecule.yml" ] || { log "no molecule scenario $s"; return 1; }
    lane="$(lane_of "$s")"
    [ -n "${members[$lane]+x}" ] || lanes+=("$lane")
    members[$lane]="${members[$lane]:-} $s"
  done
  if [ "${MOLECULE_LANES:-parallel}" = serial ]; then
    for lane in "${lanes[@]}"; do
      # shellcheck disable=SC2086 # word splitting of the member list is intended
      run_lane "$lane" ${members[$lane]} || rc=1
    done
    return "$rc"
  fi
  for lane in "${lanes[@]}"; do
    log "molecule lane $lane:${members[$lane]}"
    # shellcheck disable=SC2086 # word splitting of the member list is intended
    run_lane "$lane" ${members[$lane]} &
    pids+=("$!")
  done
  for s in "${pids[@]}"; do wait "$s" || rc=1; done
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
