#!/usr/bin/env bash
# The test pipeline behind `make test` / `make test-quick`. Every stage prints its wall time and
# the summary at the end lists them all. Exit code 0 only when every stage passed.
#   scripts/test.sh full|quick|extended|lint|units|fabric-lab|libvirt|core-min|molecule
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cd "$COMPLEAT_ROOT" || exit 1
export PATH="$COMPLEAT_ROOT/.venv/bin:$PATH"
export ANSIBLE_CONFIG="$COMPLEAT_ROOT/ansible.cfg"
export ANSIBLE_FORCE_COLOR=0 PY_COLORS=0
mode="${1:-full}"
failed=()

run() { stage "$@" || failed+=("$1"); }

# ruff, then the changelog fragments against antsibull-changelog's conventions
ruff_check() { ruff check . && ruff format --check . && antsibull-changelog lint; }
ansible_lint() { ansible-lint --profile production --offline; }
units() {
  # pytest exits 5 when it collects nothing: that is a failure here, never a pass.
  python -m pytest -q -p no:cacheprovider tests/unit
}
# The fabric labs proven in CI; `extended` runs every lab test (DHCP relay, BGP alert, ...).
CI_LAB_TESTS=(tests/lab/test_fabric_lab.py tests/lab/test_fabric_lab_unnumbered.py tests/lab/test_dhcp_relay.py
  tests/lab/test_bgp_alert.py tests/lab/test_evpn_lab.py tests/lab/test_fabric_drain.py tests/lab/test_fabric_bfd.py
  tests/lab/test_lb_lab.py tests/lab/test_fabric_gateway.py tests/lab/test_fabric_dualstack.py
  tests/lab/test_fabric_border.py)
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
# print_log TITLE FILE: print a finished step's whole log under a lock, so that steps running side
# by side never interleave their output. Always to the run's own stdout (fd 3), also from a
# molecule lane whose stage output goes to a file.
exec 3>&1
print_log() {
  # shellcheck disable=SC2016 # the inner script's $1.. are its own arguments
  flock "$COMPLEAT_ROOT/build/logs/.print.lock" bash -c 'printf "\n===== %s =====\n" "$1"; cat "$2"' _ "$1" "$2" >&3
}
# run_lane NAME SCENARIO...: each scenario's output goes to build/logs/molecule-<s>.log and is
# printed whole when it ends (under a lock, so the lanes' logs do not interleave).
# Scenarios on QEMU VMs (molecule's `default` driver, lab/vm.py) run with Mitogen (scripts/lib.sh).
# Scenarios in podman containers run with the lab's pipelining podman connection.
# driver_of SCENARIO: its molecule driver (`default` for our QEMU VMs, `podman`).
driver_of() { awk '/^driver:/ {d=1; next} d && /^  name:/ {print $2; exit}' "molecule/$1/molecule.yml"; }
scenario_env() {
  case "$(driver_of "$1")" in
    default) mitogen_env ;;
    podman) podman_env ;;
  esac
}
# image_of SCENARIO: the image stage a scenario needs (image-vm or image-container).
image_of() {
  case "$(driver_of "$1")" in
    default) echo image-vm ;;
    *) echo image-container ;;
  esac
}
run_lane() {
  local lane="$1" rc=0 s log_file envs; shift
  for s in "$@"; do
    log_file="$COMPLEAT_ROOT/build/logs/molecule-$s.log"
    if [ -n "${WAIT_FOR_IMAGES:-}" ] && ! wait_done "$(image_of "$s")"; then
      log "molecule $s (lane $lane): not run, its image stage $(image_of "$s") failed"
      printf '%-28s %5ss  rc=%s\n' "molecule:$s" 0 "not-run" >> "$STAGE_FILE"
      rc=1
      continue
    fi
    mapfile -t envs < <(scenario_env "$s")
    stage "molecule:$s" env "${envs[@]}" molecule test -s "$s" >"$log_file" 2>&1 || rc=1
    print_log "molecule $s (lane $lane)" "$log_file"
  done
  return "$rc"
}
# molecule_lanes: fill the caller's `lanes` (in order of first appearance) and `members` (lane ->
# its scenarios) from molecule/ci-scenarios.txt (`extended`: every scenario under molecule/).
molecule_lanes() {
  local scenarios s lane
  if [ "$mode" = extended ]; then
    scenarios="${MOLECULE_SCENARIOS:-$(find molecule -mindepth 2 -maxdepth 2 -name molecule.yml \
      -not -path 'molecule/_*' -printf '%h\n' | xargs -r -n1 basename | sort)}"
  else
    scenarios="${MOLECULE_SCENARIOS:-$(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' molecule/ci-scenarios.txt | awk '{print $1}')}"
  fi
  [ -n "$scenarios" ] || { log "no molecule scenarios found"; return 1; }
  for s in $scenarios; do
    [ -f "molecule/$s/molecule.yml" ] || { log "no molecule scenario $s"; return 1; }
    lane="$(lane_of "$s")"
    [ -n "${members[$lane]+x}" ] || lanes+=("$lane")
    members[$lane]="${members[$lane]:-} $s"
  done
}
molecule_all() {
  local rc=0 s lane pids=() lanes=()
  declare -A members=()
  molecule_lanes || return 1
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

# mark_done NAME RC / wait_done NAME: a stage of one lane tells the others it ended (and how); a
# molecule lane waits for the image its next scenario needs (at most an hour, the images' own
# bound being 30 minutes per build).
mark_done() { echo "$2" > "$COMPLEAT_ROOT/build/logs/.done-$1"; }
wait_done() {
  local marker="$COMPLEAT_ROOT/build/logs/.done-$1" waited=0
  until [ -f "$marker" ]; do
    [ "$waited" -lt 3600 ] || { log "gave up waiting for stage $1"; return 1; }
    sleep 2; waited=$((waited + 2))
  done
  [ "$(cat "$marker")" = 0 ]
}
# run_side_by_side LANE...: each LANE is a space-separated list of stage names run one after
# another; the lanes run side by side. A stage's output goes to build/logs/stage-<name>.log and
# is printed whole when the stage ends (under a lock, so lanes do not interleave).
run_side_by_side() {
  local lane pids=() i
  for lane in "$@"; do
    (
      rc=0
      for name in $lane; do
        log_file="$COMPLEAT_ROOT/build/logs/stage-$name.log"
        if stage "$name" "stage_${name//-/_}" >"$log_file" 2>&1; then
          mark_done "$name" 0
        else
          rc=1
          mark_done "$name" 1
          echo "$name" >> "$COMPLEAT_ROOT/build/logs/.failed"
        fi
        print_log "stage $name" "$log_file"
      done
      exit "$rc"
    ) &
    pids+=("$!")
  done
  for i in "${pids[@]}"; do wait "$i" || true; done
  if [ -s "$COMPLEAT_ROOT/build/logs/.failed" ]; then
    mapfile -t -O "${#failed[@]}" failed < "$COMPLEAT_ROOT/build/logs/.failed"
  fi
  rm -f "$COMPLEAT_ROOT/build/logs/.failed"
}
stage_ruff() { ruff_check; }
stage_ansible_lint() { ansible_lint; }
stage_sanity() { bash scripts/sanity.sh; }
stage_units() { units; }
stage_images() { bash scripts/images/build-all.sh; }
stage_image_container() { bash scripts/images/build-container-image.sh; }
stage_image_vm() { bash scripts/images/build-vm-image.sh; }
# A molecule lane of molecule/ci-scenarios.txt as a stage of run_side_by_side.
molecule_lane() {
  local lanes=()
  declare -A members=()
  molecule_lanes || return 1
  [ -n "${members[$1]+x}" ] || { log "molecule/ci-scenarios.txt has no lane $1"; return 1; }
  # shellcheck disable=SC2086 # word splitting of the member list is intended
  run_lane "$1" ${members[$1]}
}
stage_molecule_a() { molecule_lane a; }
stage_molecule_b() { molecule_lane b; }
stage_libvirt_warm() { bash scripts/libvirt-warm.sh; }
stage_libvirt() { libvirt_lab; }
stage_fabric_lab() { fabric_lab; }
stage_labs() { all_labs; }
# Unit tests and sanity again on the lowest supported ansible-core (scripts/compat.sh)
stage_core_min() { bash scripts/compat.sh; }
# The whole cloud, as a user runs it: `make lab` (fabric, services, storage, two hypervisors, a
# tenant instance with its volume, every real-client check), `make lab-drill` (lose the instance's
# hypervisor, get the instance back) and `make lab-down` (which fails on any leftover). It needs
# the whole machine (three TCG VMs and a nested guest), so it runs after the lanes, alone; a lab
# that failed is torn down all the same.
lab_cloud() {
  local rc=0
  if ! make --no-print-directory lab || ! make --no-print-directory lab-drill; then rc=1; fi
  make --no-print-directory lab-down || rc=1
  return "$rc"
}

# CI's limit is 90 minutes for the whole of `make test`; a full run that passes 80 fails here, so
# the next addition cannot silently eat the margin (COMPLEAT_CI_FAIL_AFTER_S changes the bound).
CI_LIMIT_S=5400
CI_FAIL_AFTER_S="${COMPLEAT_CI_FAIL_AFTER_S:-4800}"
started_at=$(date +%s)

mkdir -p "$(dirname "$STAGE_FILE")" "$COMPLEAT_ROOT/build/logs"
: > "$STAGE_FILE"
rm -f "$COMPLEAT_ROOT/build/logs/.failed" "$COMPLEAT_ROOT"/build/logs/.done-*
run bootstrap bash scripts/bootstrap.sh
if [ "${#failed[@]}" -ne 0 ]; then die "bootstrap failed; nothing else can run"; fi

case "$mode" in
  quick)
    # Three lanes of about a minute each (ansible-test sanity, ansible-lint and the unit tests are
    # each mostly one process): on 2 cores the wall time is near their CPU time halved.
    run_side_by_side "sanity" "ruff ansible-lint" "units"
    ;;
  full)
    # Three lanes side by side, each a list of stages run one after another; a molecule lane
    # (molecule/ci-scenarios.txt) starts as soon as its lane is free and waits only for the image
    # its next scenario needs. The container scenarios (lane b: one core of Ansible each) start
    # after sanity and the libvirt test, beside the VM image build; the VM scenarios (lane a)
    # after the VM image. The namespace labs (FRR convergence and bounded waits, little CPU) fit
    # beside all of it. libvirt-warm must end before the libvirt stage starts: same lane.
    WAIT_FOR_IMAGES=1
    run_side_by_side "libvirt-warm sanity libvirt molecule-b" "ruff ansible-lint units fabric-lab core-min" \
      "image-container image-vm molecule-a"
    run lab lab_cloud
    ;;
  extended)
    run_side_by_side "libvirt-warm sanity libvirt" "ruff ansible-lint units labs core-min" "images"
    run molecule molecule_all
    ;;
  lint) run ruff ruff_check; run ansible-lint ansible_lint ;;
  units) run units units ;;
  fabric-lab) run fabric-lab fabric_lab ;;
  libvirt) run libvirt libvirt_lab ;;
  core-min) run core-min bash scripts/compat.sh ;;
  molecule) run images bash scripts/images/build-all.sh; run molecule molecule_all ;;
  *) die "unknown mode $mode (full|quick|extended|lint|units|fabric-lab|libvirt|core-min|molecule)" ;;
esac

total=$(($(date +%s) - started_at))
echo
echo "== stage timings (stages on one line of the log ran side by side with others) =="
cat "$STAGE_FILE"
printf 'total wall time: %dm%02ds (CI limit %d min; a full run fails past %d min)\n' \
  $((total / 60)) $((total % 60)) $((CI_LIMIT_S / 60)) $((CI_FAIL_AFTER_S / 60))
if [ "$mode" = full ] && [ "$total" -gt "$CI_FAIL_AFTER_S" ]; then
  echo "FAILED: this run took $((total / 60)) min, past the $((CI_FAIL_AFTER_S / 60))-minute bound of make test"
  echo "        (CI stops at $((CI_LIMIT_S / 60))). Free time before adding tests: docs/dev/testing.md."
  failed+=("time-budget")
fi
if [ "${#failed[@]}" -ne 0 ]; then
  echo "FAILED stages: ${failed[*]}"
  exit 1
fi
echo "all stages passed"
