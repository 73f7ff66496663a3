#!/usr/bin/env bash
# `make lab` / `make lab-down`: the one-machine lab cloud from inventories/lab/.
#   up:    bootstrap, base images, render the lab fabric, bring it up in network namespaces with
#          FRR, start the lab containers and VMs, run first_boot on the VMs, converge
#          playbooks/site.yml, build the cloud (playbooks/cloud.yml: a tenant instance with an
#          iSCSI volume on a tenant network), check it all with the real clients, print where to look.
#   drill: lose the instance's hypervisor and get the instance back elsewhere (lab/drill.py).
#   down:  remove every container, namespace, VM, daemon and file the lab started, then check.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$COMPLEAT_ROOT"
export PATH="$COMPLEAT_ROOT/.venv/bin:$PATH"
export ANSIBLE_CONFIG="$COMPLEAT_ROOT/ansible.cfg"
LAB_OUT="$COMPLEAT_ROOT/build/lab"
INVENTORY=inventories/lab/hosts.yml
FABRIC_FILE=inventories/lab/fabric-evpn.yml
VM_INVENTORY="$LAB_OUT/vms.yml"
STAGE_FILE="$COMPLEAT_ROOT/build/lab-stage-times.txt"
# The lab's one way off the fabric: the package mirror's namespace (r003-h01) gets a veth to the
# controller and a host route to its upstream's address, and only that address, port 80, is NATed
# out (inventories/lab/group_vars/mirror_servers.yml).
EGRESS_NS=ccf-lab-r003-h01
EGRESS_IF=ccf-lab-egress
EGRESS_HOST_ADDR=192.168.254.1
EGRESS_NS_ADDR=192.168.254.2
MIRROR_UPSTREAM_HOST=deb.debian.org

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
  local started_at mitogen=() external=() host upstream
  started_at=$(date +%s)
  mkdir -p "$(dirname "$STAGE_FILE")" && : > "$STAGE_FILE"
  stage bootstrap bash scripts/bootstrap.sh
  stage images bash scripts/images/build-all.sh
  mkdir -p "$LAB_OUT"
  log "rendering the lab fabric into $LAB_OUT/fabric"
  stage fabric-render ansible-playbook playbooks/fabric_render.yml \
    -e fabric_file="$COMPLEAT_ROOT/$FABRIC_FILE" -e fabric_out="$LAB_OUT/fabric"
  log "bringing the fabric up in network namespaces"
  for host in $(vm_hosts); do external+=(--external-host "$host"); done
  stage fabric-up python -m lab.fabric_lab up "${external[@]}" "$LAB_OUT/fabric"
  upstream=$(getent ahostsv4 "$MIRROR_UPSTREAM_HOST" | awk 'NR == 1 {print $1}')
  [ -n "$upstream" ] || die "cannot resolve the mirror's upstream $MIRROR_UPSTREAM_HOST on this machine"
  stage egress egress_up "$upstream"
  log "starting lab containers"
  stage containers ansible-playbook -i "$INVENTORY" playbooks/lab_containers.yml -e lab_state=started \
    -e lab_mirror_upstream_address="$upstream"
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
  log "the cloud: store, hypervisors, template, tenant network, instance web1 with its iSCSI volume"
  stage store bash scripts/lab-store.sh up
  stage cloud ansible-playbook -i "$INVENTORY" -i "$VM_INVENTORY" playbooks/cloud.yml
  stage cloud-check cloud_check
  summary
  echo "== make lab stage timings =="
  cat "$STAGE_FILE"
  printf 'make lab took %ds\n' "$(($(date +%s) - started_at))"
}

# egress_up ADDRESS: the mirror's namespace reaches ADDRESS (its upstream), TCP port 80, through a
# veth to the controller and NAT there; nothing else leaves the fabric. Idempotent.
egress_up() {
  local address="$1"
  ip netns list | grep -qw "$EGRESS_NS" || die "no namespace $EGRESS_NS: is the fabric up?"
  if ! ip link show "$EGRESS_IF" >/dev/null 2>&1; then
    ip link add "$EGRESS_IF" type veth peer name egress netns "$EGRESS_NS"
    ip addr add "$EGRESS_HOST_ADDR/30" dev "$EGRESS_IF"
    ip link set "$EGRESS_IF" up
    ip -n "$EGRESS_NS" addr add "$EGRESS_NS_ADDR/30" dev egress
    ip -n "$EGRESS_NS" link set egress up
  fi
  ip -n "$EGRESS_NS" route replace "$address/32" via "$EGRESS_HOST_ADDR" dev egress
  sysctl -qw net.ipv4.ip_forward=1
  iptables -t nat -C POSTROUTING -s "$EGRESS_NS_ADDR/32" -d "$address/32" -p tcp --dport 80 -j MASQUERADE 2>/dev/null \
    || iptables -t nat -A POSTROUTING -s "$EGRESS_NS_ADDR/32" -d "$address/32" -p tcp --dport 80 -j MASQUERADE
  log "egress: $EGRESS_NS reaches only $address:80 (its mirror upstream $MIRROR_UPSTREAM_HOST) via $EGRESS_IF"
}

# egress_down: remove the NAT rules and the veth (deleting the namespace removes the veth too).
egress_down() {
  local rule
  while read -r rule; do
    # shellcheck disable=SC2086 # the rule's words are iptables arguments
    iptables -t nat ${rule/-A /-D }
  done < <(iptables -t nat -S POSTROUTING 2>/dev/null | grep -- "-s $EGRESS_NS_ADDR/32" || true)
  if ip link show "$EGRESS_IF" >/dev/null 2>&1; then ip link del "$EGRESS_IF"; fi
}

# Prove the lab with the real clients, printing what they answer: DNS and DHCP across the fabric,
# every host following the time server and forwarding its logs, NFS, libvirt and iSCSI (CHAP) from
# both hypervisors to the storage VM in rack 1.
lab_check() {
  local try hv token host out
  log "checking the lab with the real clients"
  for try in 1 2 3 4 5 6; do
    out=$(ip netns exec ccf-lab-r003-h01 dig +short +time=2 @10.0.1.10 up1.r002-tor1.lab.compleat.internal || true)
    [ -n "$out" ] && break
    [ "$try" -lt 6 ] || die "DNS: no answer from 10.0.1.10 in rack 3"
    sleep 5
  done
  echo "dig from rack 3 (r003-h01) @10.0.1.10 up1.r002-tor1: $out"
  ip netns exec ccf-lab-r003-h01 udhcpc -i mgmt -q -n -t 5 -s /bin/true \
    || die "DHCP: no lease through r003-tor1's relay"
  # chronyc on every lab host: each has selected (^*) the time server on rack 1's mgmt network
  for host in lab-r001-h02 lab-r002-h02 lab-r003-h02 lab-r002-h01 lab-r003-h01 lab-r002-tor1 lab-r003-tor1; do
    for try in $(seq 1 24); do
      out=$(on_host "$host" 'chronyc -n sources' 2>/dev/null | grep '^\^\*' || true)
      [ -n "$out" ] && break
      [ "$try" -lt 24 ] || die "NTP: $host has not selected the lab time server 10.0.1.10"
      sleep 5
    done
    echo "chronyc on $host: $out"
    [[ "$out" == *10.0.1.10* ]] || die "NTP: $host follows something else than 10.0.1.10"
  done
  # logger on a VM and in a container; both lines arrive at the receiver r002-h01
  token="lab-check-$$-$(date +%s)"
  for host in lab-r003-h02 lab-r001-h01; do on_host "$host" "logger -t compleat-lab-check $token-$host"; done
  for host in lab-r003-h02 lab-r001-h01; do
    for try in $(seq 1 12); do
      out=$(podman exec lab-r002-h01 grep -rh "$token-$host" /var/log/remote 2>/dev/null || true)
      [ -n "$out" ] && break
      [ "$try" -lt 12 ] || die "logs: the line logged on $host did not reach the receiver r002-h01"
      sleep 2
    done
    echo "receiver r002-h01 got from $host: $out"
  done
  for hv in lab-r002-h02 lab-r003-h02; do
    vm "$hv" 'findmnt -rn -o SOURCE /var/lib/compleat/secondary/templates' | grep -qx '10.4.1.11:/srv/secondary/templates' \
      || die "NFS: $hv has not mounted rack 1's secondary store"
    # shellcheck disable=SC2016 # $f expands on the VM
    vm "$hv" 'f=/var/lib/compleat/secondary/templates/.lab-check-$(hostname); date > $f && cat $f >/dev/null && rm $f' \
      || die "NFS: $hv cannot write to templates/"
    vm "$hv" 'virsh -q pool-list --all' | grep -Eq '^ *secondary +active +yes' \
      || die "libvirt: the secondary pool of $hv is not active and autostarted"
    out=$(vm "$hv" 'iscsiadm -m session' || true)
    echo "iscsiadm -m session on $hv: $out"
    [[ "$out" == *"10.4.1.11:3260"*":tenant-data"* ]] || die "iSCSI: $hv has no session to the tenant volume on r001-h02"
    vm "$hv" 'ls /dev/disk/by-path/ | grep -x "ip-10.4.1.11:3260-iscsi-.*:tenant-data-lun-0"' >/dev/null \
      || die "iSCSI: $hv has a session but no block device of the LUN"
  done
  provisioning_check
  log "lab check passed: DNS, DHCP, NTP (every host), central logs, NFS, libvirt and iSCSI with CHAP from racks 2 and 3 to rack 1, mirror, code repository, PXE"
}

# The provisioning chain on r003-h01, each from another rack with the real client: APT on the
# storage VM in rack 1 through the mirror (its only source), git over SSH from rack 1 to the code
# repository, and a network boot walked from DHCP through rack 3's relay to the preseed.
REPO_URL=gitolite3@10.0.3.10:site-config
PXE_MAC=52:54:00:03:00:03
provisioning_check() {
  local out tmp token siaddr boot_file script url
  # APT: update (every index through the mirror) and download a package the VM does not have
  out=$(vm lab-r001-h02 'cd /tmp && rm -f hello_*.deb
    apt-get update > /tmp/apt-update.log 2>&1 || { cat /tmp/apt-update.log; exit 1; }
    grep -c "^\(Get\|Hit\):.*10.0.3.10:3142/debian" /tmp/apt-update.log
    apt-get download hello 2>&1 | tail -n 1; ls hello_*.deb && rm -f hello_*.deb') \
    || die "mirror: apt-get on lab-r001-h02 through 10.0.3.10:3142 failed: $out"
  echo "apt-get on lab-r001-h02 (source http://10.0.3.10:3142/debian): ${out//$'\n'/; }"
  out=$(podman exec lab-r003-h01 sh -c 'grep -h "hello_" /var/log/apt-cacher-ng/apt-cacher.log | tail -n 1' || true)
  [[ "$out" == *10.0.1.11* ]] || die "mirror: r003-h01's apt-cacher-ng log shows no fetch of hello by 10.0.1.11"
  echo "mirror r003-h01's log: $out"
  # git: clone the site's repository from rack 1, push a commit, clone it again and read it back
  tmp=$(mktemp -d)
  token="lab-check $(date -u +%FT%TZ) $$"
  export GIT_SSH_COMMAND="ssh -i $COMPLEAT_ROOT/.cache/images/lab_ssh_key -o BatchMode=yes -o ConnectTimeout=10 -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
  ip netns exec ccf-lab-r001-h01 git clone -q "$REPO_URL" "$tmp/a" 2>/dev/null \
    || die "git: cannot clone $REPO_URL from rack 1"
  # on main, after what earlier checks pushed (a fresh repository is empty)
  if git -C "$tmp/a" rev-parse -q --verify origin/main >/dev/null; then
    git -C "$tmp/a" checkout -q -B main origin/main
  else
    git -C "$tmp/a" checkout -q -b main
  fi
  echo "$token" > "$tmp/a/lab-check.txt"
  git -C "$tmp/a" add lab-check.txt
  git -C "$tmp/a" -c user.name=lab -c user.email=lab@lab.compleat.internal commit -q -m "$token"
  ip netns exec ccf-lab-r001-h01 git -C "$tmp/a" push -q origin HEAD:refs/heads/main \
    || die "git: cannot push to $REPO_URL from rack 1"
  ip netns exec ccf-lab-r001-h01 git clone -q -b main "$REPO_URL" "$tmp/b" || die "git: cannot clone $REPO_URL again"
  [ "$(cat "$tmp/b/lab-check.txt")" = "$token" ] || die "git: the pushed commit did not come back"
  echo "git clone/push/clone of $REPO_URL from rack 1: $(git -C "$tmp/b" log -1 --format='%h %s')"
  unset GIT_SSH_COMMAND
  # PXE: DHCP through r003-tor1's relay as BIOS firmware (option 93 = 0) and as iPXE (option 77)
  script="$tmp/udhcpc.sh"
  # shellcheck disable=SC2016 # expanded by udhcpc's script, not here
  printf '#!/bin/sh\n[ "$1" = bound ] && echo "${siaddr:--} ${boot_file:--}"\nexit 0\n' > "$script"; chmod +x "$script"
  read -r siaddr boot_file < <(ip netns exec ccf-lab-r003-h01 udhcpc -i mgmt -q -n -t 5 -x 0x5d:0000 -s "$script" 2>/dev/null | tail -n 1)
  echo "DHCP (BIOS firmware) via r003-tor1: next-server ${siaddr:-none}, boot file ${boot_file:-none}"
  if [ "$siaddr" != 10.0.3.10 ] || [ "$boot_file" != undionly.kpxe ]; then
    die "PXE: DHCP does not point firmware at 10.0.3.10 undionly.kpxe"
  fi
  read -r _ url < <(ip netns exec ccf-lab-r003-h01 udhcpc -i mgmt -q -n -t 5 -x 0x4d:69505845 -s "$script" 2>/dev/null | tail -n 1)
  echo "DHCP (iPXE) via r003-tor1: boot file ${url:-none}"
  [ "$url" = http://10.0.3.10/boot.ipxe ] || die "PXE: DHCP does not give iPXE the script URL"
  # the chain from rack 1: TFTP of the iPXE build, the boot script, the host's script by MAC, the
  # installer's kernel and the preseed it names
  ip netns exec ccf-lab-r001-h01 curl -sf --max-time 30 "tftp://$siaddr/$boot_file" -o "$tmp/$boot_file" \
    || die "PXE: TFTP of $boot_file from $siaddr failed"
  echo "TFTP $boot_file from rack 1: $(stat -c %s "$tmp/$boot_file") bytes"
  out=$(ip netns exec ccf-lab-r001-h01 curl -sf --max-time 10 "$url") || die "PXE: no $url"
  grep -q '^#!ipxe' <<<"$out" || die "PXE: $url is not an iPXE script"
  out=$(ip netns exec ccf-lab-r001-h01 curl -sf --max-time 10 "http://10.0.3.10/ipxe/${PXE_MAC//:/-}.ipxe") \
    || die "PXE: no iPXE script for $PXE_MAC"
  # the script names the preseed relative to its `set base` (as iPXE expands it)
  url=$(grep -o 'url=[^ ]*' <<<"$out" | head -n 1); url=${url#url=}
  # shellcheck disable=SC2016 # the literal ${base} of the iPXE script
  url=${url//'${base}'/$(sed -n 's/^set base //p' <<<"$out")}
  echo "iPXE script of $PXE_MAC: preseed $url"
  [ "$url" = http://10.0.3.10/preseed/r003-h03.cfg ] || die "PXE: the script of $PXE_MAC names no preseed of r003-h03"
  ip netns exec ccf-lab-r001-h01 curl -sf --max-time 30 -o /dev/null http://10.0.3.10/debian/12/amd64/linux \
    || die "PXE: no installer kernel over HTTP"
  out=$(ip netns exec ccf-lab-r001-h01 curl -sf --max-time 10 "$url") || die "PXE: no preseed at $url"
  grep -q '^d-i mirror/http/hostname string 10.0.3.10:3142$' <<<"$out" || die "PXE: the preseed does not install from the lab's mirror"
  echo "preseed of r003-h03: $(grep -c '^d-i ' <<<"$out") d-i lines, mirror 10.0.3.10:3142"
  rm -rf "$tmp"
}

# The tenant instance, from another rack: the probe (lab/tenant_probe.py) is on the tenant network
# in rack 1 (a VTEP namespace), the instance on r002-h02 in rack 2; traffic crosses the fabric over
# EVPN/VXLAN. Also Prometheus: every generated target up.
TENANT_VNI=10100
TENANT_MTU=8950
PROBE_CIDR=10.200.0.250/24
cloud_check() {
  local out address targets state
  log "checking the cloud: the tenant instance from rack 1, its volume, Prometheus"
  vm lab-r002-h02 'virsh -q list' | grep -Eq ' web1 +running' || die "cloud: web1 is not running on r002-h02"
  python -m lab.tenant_probe up --host r001-h01 --vni "$TENANT_VNI" --mtu "$TENANT_MTU" --cidr "$PROBE_CIDR"
  state=$(python -m lab.drill --state) || die "cloud: cannot read web1 from the store"
  echo "web1 in the store: $state"
  address=$(python -c 'import json, sys; print(json.loads(sys.argv[1])["addresses"][0])' "$state")
  python -m lab.tenant_probe ping "$address" --count 3 --timeout 600 \
    || die "cloud: web1 ($address) does not answer the probe in rack 1"
  echo "ping from rack 1 (probe on the tenant network) to web1 $address in rack 2: answered"
  out=$(python -m lab.tenant_probe get "http://$address/cgi-bin/volume" --timeout 120) \
    || die "cloud: web1 does not serve its volume's first line"
  echo "web1's iSCSI volume (through r002-h02's session): $out"
  [[ "$out" == COMPLEAT-DATA* ]] || die "cloud: web1 has not written its volume: $out"
  targets=$(ip netns exec ccf-lab-r002-h01 python3 -c '
import json, urllib.request
data = json.load(urllib.request.urlopen("http://127.0.0.1:9090/api/v1/targets?state=active", timeout=5))
for t in data["data"]["activeTargets"]:
    print(t["labels"]["job"], t["labels"]["instance"], t["health"])')
  echo "Prometheus targets:"; printf '  %s\n' "$targets" | sed 's/^  //; s/^/  /'
  if grep -qv ' up$' <<<"$targets"; then die "Prometheus: not every target is up"; fi
  log "cloud check passed: web1 answers across racks on its tenant network and has written its volume"
}

# on_host HOST COMMAND: run a shell command on a lab host, container or VM.
on_host() {
  if podman container exists "$1" 2>/dev/null; then podman exec "$1" sh -c "$2"; else vm "$1" "$2"; fi
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
  time service:           podman exec lab-r002-h01 chronyc -n sources   (server: lab-r001-h01)
  central logs:           podman exec lab-r002-h01 ls /var/log/remote
  DNS from rack 3:        ip netns exec ccf-lab-r003-h01 dig @10.0.1.10 up1.r002-tor1.lab.compleat.internal
  DHCP via r003's relay:  ip netns exec ccf-lab-r003-h01 udhcpc -i mgmt -q -n -s /bin/true
  lab VMs:                python -m lab.vm list; python -m lab.vm ssh lab-r003-h02
  storage from rack 3:    python -m lab.vm ssh lab-r003-h02 -- findmnt -t nfs4
  iSCSI sessions:         python -m lab.vm ssh lab-r002-h02 -- iscsiadm -m session
  package mirror:         http://10.0.3.10:3142/debian (the VMs' APT source; log: podman exec lab-r003-h01 tail /var/log/apt-cacher-ng/apt-cacher.log)
  code repository:        ip netns exec ccf-lab-r001-h01 git clone gitolite3@10.0.3.10:site-config  (key .cache/images/lab_ssh_key)
  PXE:                    tftp://10.0.3.10/undionly.kpxe, http://10.0.3.10/boot.ipxe, http://10.0.3.10/preseed/r003-h03.cfg
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
  bash scripts/lab-store.sh down || true
  egress_down || true
  if command -v podman >/dev/null; then
    left+=$(podman ps -a --filter label=compleat.lab --format '{{.Names}} ' 2>/dev/null || true)
  fi
  left+=$(ip netns list 2>/dev/null | awk '/^ccf-lab-/{printf "%s ", $1}')
  if ip link show "$EGRESS_IF" >/dev/null 2>&1; then left+="$EGRESS_IF(veth) "; fi
  if iptables -t nat -S POSTROUTING 2>/dev/null | grep -q -- "-s $EGRESS_NS_ADDR/32"; then left+="NAT(egress) "; fi
  if podman network exists compleat-lab 2>/dev/null; then left+="podman-network(compleat-lab) "; fi
  if pgrep -f "postgres -D $LAB_OUT/store" >/dev/null; then left+="postgres(lab store) "; fi
  if [ -x .venv/bin/python ]; then
    left+=$(python -m lab.vm list 2>/dev/null | awk '$1 ~ /^lab-/{printf "%s ", $1}')
  fi
  if [ -n "$left" ]; then die "lab-down left these behind: $left"; fi
  rm -f "$VM_INVENTORY"
  log "lab is down: no lab containers, namespaces, VMs or daemons remain"
}

case "${1:-}" in
  up) lab_up ;;
  drill) python -m lab.drill ;;
  down) lab_down ;;
  summary) summary ;;
  check) lab_check ;;
  cloud-check) cloud_check ;;
  *) die "usage: scripts/lab.sh up|down|drill|check|cloud-check|summary" ;;
esac
