#!/usr/bin/env bash
# The lab's cloud metadata store: a PostgreSQL cluster on this machine (the lab's controller, as an
# AWX deployment keeps its database outside the racks), listening on 127.0.0.1:55432 only. The
# cloud modules run on the lab hypervisors (playbooks/cloud.yml) and reach it through their
# user-mode NIC (QEMU maps 192.168.253.2 to this machine's loopback); the password is made at
# `up` and read by inventories/lab/group_vars/cloud_controllers.yml.
#   scripts/lab-store.sh up|down|status
set -euo pipefail
. "$(dirname "$0")/lib.sh"
PG_BINDIR="${PG_BINDIR:-/usr/lib/postgresql/15/bin}"
STORE_DIR="$COMPLEAT_ROOT/build/lab/store"
DATA="$STORE_DIR/data"
PORT=55432
PG_USER=nobody   # postgres refuses to run as root

as_pg() { runuser -u "$PG_USER" -- "$@"; }

running() { [ -f "$DATA/postmaster.pid" ] && as_pg "$PG_BINDIR/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

store_up() {
  [ -x "$PG_BINDIR/initdb" ] || die "PostgreSQL server binaries not found in $PG_BINDIR (Debian package postgresql)"
  if running; then log "lab store already running on 127.0.0.1:$PORT"; return 0; fi
  rm -rf "$STORE_DIR"
  mkdir -p "$STORE_DIR"
  head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$STORE_DIR/password"
  chmod 0600 "$STORE_DIR/password"
  chown "$PG_USER" "$STORE_DIR" "$STORE_DIR/password"
  as_pg "$PG_BINDIR/initdb" -D "$DATA" -U cloud --pwfile="$STORE_DIR/password" \
    --auth-host=scram-sha-256 --auth-local=peer -E UTF8 --no-sync >/dev/null
  as_pg "$PG_BINDIR/pg_ctl" -D "$DATA" -l "$STORE_DIR/postgres.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $PORT -k $STORE_DIR -c fsync=off" start >/dev/null
  PGPASSWORD=$(cat "$STORE_DIR/password") "$PG_BINDIR/createdb" -h 127.0.0.1 -p "$PORT" -U cloud cloud
  chmod 0644 "$STORE_DIR/password"   # read by the controller's ansible-playbook (lab only)
  log "lab store: PostgreSQL on 127.0.0.1:$PORT, database cloud, user cloud"
}

store_down() {
  if [ -d "$DATA" ]; then
    as_pg "$PG_BINDIR/pg_ctl" -D "$DATA" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$STORE_DIR"
  if pgrep -f "postgres -D $DATA" >/dev/null; then die "lab store: postgres still runs on $DATA"; fi
}

case "${1:-}" in
  up) store_up ;;
  down) store_down ;;
  status)
    if running; then echo "running on 127.0.0.1:$PORT"; else echo "not running"; exit 1; fi ;;
  *) die "usage: scripts/lab-store.sh up|down|status" ;;
esac
