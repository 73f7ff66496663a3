#!/usr/bin/env bash
# `make lab` / `make lab-down`: the one-machine lab cloud from inventories/lab/.
#   up:   bootstrap, base images, render the lab fabric, bring it up in network namespaces with
#         FRR, start the lab containers and VMs, run first_boot on the VMs, converge
#         playbooks/site.yml, check it with the real clients, print where to look.
#   down: remove every container, namespace, VM and daemon the lab started, then check.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$COMPLEAT_ROOT"
export PATH="$COMPLEAT_ROOT/.venv/bin:$PATH"
export ANSIBLE_CONFIG="$COMPLEAT_ROOT/ansible.cfg"
LAB_OUT="$COMPLEAT_ROOT/build/lab"
INVENTORY=inventories/lab/hosts.yml
VM_INVENTORY="$LAB_OUT/vms.yml"
STAGE_FILE="$COMPLEAT_ROOT/build/lab-stage-times.txt"

# The plan hosts the lab VMs play (fabric_device of the group lab_vms), one per line.
vm_hosts() {
  ansible-inventory -i "$INVENTORY" --list 2>/dev/null | python -c '
import json, sys
inv = json.load(sys.stdin)
hostvars = inv["_meta"]["hostvars"]
for host in inv.get("lab_vms", {}).get("hosts", []):
    print(hostvars[host].get("fabric_device", host))
'
}

lab_up() {
  local started_at mitogen=() external=() host
  started_at=$(date +%s)
  mkdir -p "$(dirname "$STAGE_FILE")" && : > "$STAGE_FILE"
  stage bootstrap bash scripts/bootstrap.sh
  stage images bash scripts/images/build-all.sh
  mkdir -p "$LAB_OUT"
  log "rendering the lab fabric into $LAB_OUT/fabric"
  stage fabric-render ansible-playbook playbooks/fabric_render.yml \
    -e fabric_file="$COMPLEAT_ROOT/$(dirname "$INVENTORY")/fabric.yml" -e fabric_out="$LAB_OUT/fabric"
  log "bringing the fabric up in network namespaces"
  for host in $(vm_hosts); do external+=(--external-host "$host"); done
  stage fabric-up python -m lab.fabric_lab up "${external[@]}" "$LAB_OUT/fabric"
  log "starting lab containers"
  stage containers ansible-playbook -i "$INVENTORY" playbooks/lab_containers.yml -e lab_state=started
  log "starting lab VMs (QEMU TCG: a few minutes)"
  stage vms ansible-playbook -i "$INVENTORY" playbooks/lab_vms.yml -e lab_state=started \
    -e lab_vms_inventory="$VM_INVENTORY"
  # The plays against the lab hosts run with Mitogen's strategy (one persistent Python per VM and
  # container instead of one per task; scripts/lib.sh). The local plays above do not need it.
  mapfile -t mitogen < <(mitogen_env)
  log "first boot of the lab VMs (plan addresses, routes, admin key, resolver)"
  stage first-boot env "${mitogen[@]}" ansible-playbook -i "$INVENTORY" -i "$VM_INVENTORY" \
    playbooks/first_boot.yml -e first_boot_hosts=lab_vms
  log "converging playbooks/site.yml"
  stage site env "${mitogen[@]}" ansible-playbook -i "$INVENTORY" -i "$VM_INVENTORY" playbooks/site.yml
  stage check lab_check
  summary
  echo "== make lab stage timings =="
  cat "$STAGE_FILE"
  printf 'make lab took %ds\n' "$(($(date +%s) - started_at))"
}

# Prove the lab with the real clients: DNS and DHCP answer across the fabric, time is followed.
lab_check() {
  local try
  log "checking the lab with the real clients"
  for try in 1 2 3 4 5 6; do
    ip netns exec ccf-lab-r003-h01 dig +short +time=2 @10.0.1.10 up1.r002-tor1.lab.compleat.internal \
      | grep -q . && break
    [ "$try" -lt 6 ] || die "DNS: no answer from 10.0.1.10 in rack 3"
    sleep 5
  done
  ip netns exec ccf-lab-r002-h02 udhcpc -i mgmt -q -n -t 5 -s /bin/true \
    || die "DHCP: no lease through r002-tor1's relay"
  for try in $(seq 1 12); do
    podman exec lab-svc1 chronyc -n sources | grep -q '^\^\*' && break
    [ "$try" -lt 12 ] || die "NTP: lab-svc1 has not selected the lab time server"
    sleep 5
  done
  vm lab-r003-h02 'findmnt -rn -o SOURCE /var/lib/compleat/secondary/templates' | grep -qx '10.4.1.11:/srv/secondary/templates' \
    || die "NFS: r003-h02 has not mounted rack 1's secondary store"
  # shellcheck disable=SC2016 # $f expands on the VM
  vm lab-r003-h02 'f=/var/lib/compleat/secondary/templates/.lab-check; date > $f && cat $f >/dev/null && rm $f' \
    || die "NFS: r003-h02 cannot write to templates/"
  vm lab-r003-h02 'virsh -q pool-list --all' | grep -Eq '^ *secondary +active +yes' \
    || die "libvirt: the secondary pool of r003-h02 is not active and autostarted"
  vm lab-r003-h02 'iscsiadm -m discovery -t sendtargets -p 10.4.1.11' | grep -q ':r003-h02-data$' \
    || die "iSCSI: r003-h02 does not discover its LUN on r001-h02"
  log "lab check passed: DNS and DHCP across the fabric, NTP on the service hosts, NFS, libvirt and iSCSI from rack 3 to rack 1"
}

# vm NAME COMMAND: run a shell command in a lab VM as root.
vm() { python -m lab.vm ssh "$1" -- "$2"; }

summary() {
  cat <<MSG

The lab is up. Where to look:
  fabric plan and docs:   $LAB_OUT/fabric/  (fabric.md, racks/, plan.csv, fabric.svg, topology.json)
  fabric state:           python -m lab.fabric_lab status $LAB_OUT/fabric
  a ToR's routes:         python -m lab.fabric_lab vtysh $LAB_OUT/fabric r001-tor1 'show ip route'
  live intent check:      ansible-playbook playbooks/fabric_validate.yml -e fabric_out=$LAB_OUT/fabric
  lab hosts:              podman ps --filter label=compleat.lab
  time service:           podman exec lab-svc1 chronyc -n sources
  DNS from rack 3:        ip netns exec ccf-lab-r003-h01 dig @10.0.1.10 up1.r002-tor1.lab.compleat.internal
  DHCP via r002's relay:  ip netns exec ccf-lab-r002-h02 udhcpc -i mgmt -q -n -s /bin/true
  lab VMs:                python -m lab.vm list; python -m lab.vm ssh lab-r003-h02
  storage from rack 3:    python -m lab.vm ssh lab-r003-h02 -- findmnt -t nfs4
  VM inventory:           ansible-playbook -i $INVENTORY -i $VM_INVENTORY ...
  tear down:              make lab-down
MSG
}

lab_down() {
  local left=""
  if [ -x .venv/bin/ansible-playbook ] && [ -f playbooks/lab_containers.yml ]; then
    ansible-playbook -i "$INVENTORY" playbooks/lab_containers.yml -e lab_state=absent || true
    ansible-playbook -i "$INVENTORY" playbooks/lab_vms.yml -e lab_state=absent || true
  fi
  # Belt and braces: anything labelled as ours, even from a crashed run.
  if command -v podman >/dev/null; then
    podman ps -aq --filter label=compleat.lab | xargs -r podman rm -f -t 2 >/dev/null || true
    if podman network exists compleat-lab 2>/dev/null; then podman network rm -f compleat-lab >/dev/null; fi
  fi
  if [ -x .venv/bin/python ]; then
    python -m lab.fabric_lab down "$LAB_OUT/fabric" || true
  fi
  if command -v podman >/dev/null; then
    left+=$(podman ps -a --filter label=compleat.lab --format '{{.Names}} ' 2>/dev/null || true)
  fi
  left+=$(ip netns list 2>/dev/null | awk '/^ccf-lab-/{printf "%s ", $1}')
  if [ -x .venv/bin/python ]; then
    left+=$(python -m lab.vm list 2>/dev/null | awk '$1 ~ /^lab-/{printf "%s ", $1}')
  fi
  if [ -n "$left" ]; then die "lab-down left these behind: $left"; fi
  rm -f "$VM_INVENTORY"
  log "lab is down: no lab containers, namespaces, VMs or daemons remain"
}

case "${1:-}" in
  up) lab_up ;;
  down) lab_down ;;
  summary) summary ;;
  check) lab_check ;;
  *) die "usage: scripts/lab.sh up|down" ;;
esac
