#!/usr/bin/env bash
# A real S3 server for development and tests: Ceph's RADOS Gateway (RGW) from Debian, as a throwaway
# single-node cluster on 127.0.0.1 (one monitor, one OSD on a sparse file, no manager, no cephx).
# Needs root and Debian bookworm (Ceph 16). No Docker.
#
#   scripts/s3-local.sh start [DIR]          install if needed, create or restart, print the S3 env on stdout
#   scripts/s3-local.sh stop [--purge] [DIR] stop the daemons (and delete DIR with --purge)
#
# DIR defaults to $RGW_DIR, else ./data/rgw. Settings: RGW_PORT (7480), RGW_MON_PORT (3300),
# RGW_BLOCK_SIZE (20G, sparse), RGW_ACCESS_KEY (freight), RGW_SECRET_KEY (freight-secret).
# On success `start` prints shell lines (export S3_ENDPOINT=... etc.) that Freight reads; eval them.
set -euo pipefail

cmd="${1:-start}"; shift || true
PURGE=0
if [ "$cmd" = stop ] && [ "${1:-}" = --purge ]; then PURGE=1; shift; fi
DIR="${1:-${RGW_DIR:-./data/rgw}}"
PORT="${RGW_PORT:-7480}"
MON_PORT="${RGW_MON_PORT:-3300}"
BLOCK_SIZE="${RGW_BLOCK_SIZE:-20G}"
ACCESS_KEY="${RGW_ACCESS_KEY:-freight}"
SECRET_KEY="${RGW_SECRET_KEY:-freight-secret}"
ENDPOINT="http://127.0.0.1:$PORT"
PACKAGES="ceph-mon ceph-osd radosgw ceph-common curl"

log() { echo "[s3-local] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# A daemon is alive when its pid file names a live (non-zombie) process of the expected name.
alive() {
  local pid
  [ -s "$1" ] || return 1
  pid=$(cat "$1")
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ] && [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]
}
# RGW serves S3 once an anonymous ListBuckets is answered (200 or 403).
s3_answers() { curl -s -o /dev/null -m 2 -w '%{http_code}' "$ENDPOINT/" 2>/dev/null | grep -qE '^(200|403)$'; }
wait_until() {
  local deadline=$(( $(date +%s) + $1 )); shift
  until "$@"; do [ "$(date +%s)" -lt "$deadline" ] || return 1; sleep 0.1; done
}

stop() {
  [ -d "$DIR" ] || { log "nothing at $DIR"; return 0; }
  # Reverse order: the gateway needs the OSD to shut down cleanly, the OSD reports to the monitor.
  for spec in rgw:radosgw:10 osd.0:ceph-osd:20 mon.a:ceph-mon:10; do
    IFS=: read -r name comm grace <<<"$spec"
    local pidfile="$DIR/run/$name.pid"
    if alive "$pidfile" "$comm"; then
      local pid; pid=$(cat "$pidfile")
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq $((grace * 10))); do alive "$pidfile" "$comm" || break; sleep 0.1; done
      alive "$pidfile" "$comm" && { log "$name ignored SIGTERM; killing"; kill -KILL "$pid" 2>/dev/null || true; }
    fi
    rm -f "$pidfile"
  done
  if [ "$PURGE" = 1 ]; then rm -rf "$DIR"; log "stopped and removed $DIR"; else log "stopped"; fi
}

print_env() {
  cat <<EOF
export S3_ENDPOINT=$ENDPOINT
export S3_REGION=us-east-1
export S3_ACCESS_KEY_ID=$ACCESS_KEY
export S3_SECRET_ACCESS_KEY=$SECRET_KEY
export S3_FORCE_PATH_STYLE=true
EOF
}

ensure_user() {
  radosgw-admin user info --uid=freight >/dev/null 2>&1 && return 0
  radosgw-admin user create --uid=freight --display-name=freight \
    --access-key="$ACCESS_KEY" --secret-key="$SECRET_KEY" >/dev/null 2>"$DIR/log/user.err" \
    || die "radosgw-admin user create failed: see $DIR/log/user.err"
}

write_conf() {
  cat >"$CEPH_CONF" <<EOF
[global]
fsid = $(cat /proc/sys/kernel/random/uuid)
mon_host = v2:127.0.0.1:$MON_PORT
public_addr = 127.0.0.1
public_network = 127.0.0.0/8
ms_bind_ipv6 = false
ms_bind_msgr1 = false
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
# radosgw wants 'secure' monitor connections by default, which need cephx (-13 EACCES without this)
ms_mon_client_mode = crc
mon_warn_on_insecure_global_id_reclaim_allowed = false
run_dir = $DIR/run
pid_file = $DIR/run/\$name.pid
admin_socket = $DIR/run/\$name.asok
log_file = $DIR/log/\$name.log
mon_cluster_log_file = $DIR/log/cluster.log
crash_dir = $DIR/crash
log_to_stderr = false
err_to_stderr = false
debug_ms = 0/0
debug_osd = 0/0
debug_bluestore = 0/0
debug_bluefs = 0/0
debug_rocksdb = 0/0
debug_mon = 0/0
debug_monc = 0/0
debug_paxos = 0/0
debug_rgw = 1/1
# one OSD holding one copy of everything
mon_allow_pool_size_one = true
mon_warn_on_pool_no_redundancy = false
mon_max_pg_per_osd = 1000
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
osd_crush_chooseleaf_type = 0
paxos_propose_interval = 0.01

[mon]
mon_data = $DIR/mon/\$cluster-\$id

[osd]
osd_data = $DIR/osd/\$cluster-\$id
osd_objectstore = bluestore
bluestore_block_create = true
bluestore_block_size = $BLOCK_SIZE
bluestore_fsck_on_mkfs = false
# best fit, always: the space of deleted objects is taken again before new space, so that the sparse block file
# grows only as far as the data kept at once (with first fit it creeps forward to its full size over many uploads)
bluestore_avl_alloc_bf_free_pct = 100
osd_memory_target = 1G
osd_op_num_shards = 2
osd_op_num_threads_per_shard = 2

[client]
rgw_data = $DIR/rgw
# without tcp_nodelay every small answer waits ~40 ms for delayed ACKs
rgw_frontends = beast endpoint=127.0.0.1:$PORT tcp_nodelay=1
rgw_thread_pool_size = 64
# a development gateway: the space of deleted objects comes back within minutes, not hours
rgw_gc_obj_min_wait = 60
rgw_gc_processor_period = 60
EOF
}

start() {
  [ "$(id -u)" = 0 ] || die "must run as root (it installs packages and runs the Ceph daemons)"
  mkdir -p "$DIR"
  DIR="$(cd "$DIR" && pwd)"
  export CEPH_CONF="$DIR/ceph.conf"
  exec 9>"$DIR/.lock"
  flock -w 300 9 || die "another start holds $DIR/.lock"

  local missing=""
  for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
  done
  if [ -n "$missing" ]; then
    log "installing$missing (about 60 MB)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends $missing >"$DIR/apt.log" 2>&1 \
      || { apt-get update >>"$DIR/apt.log" 2>&1 && apt-get install -y --no-install-recommends $missing >>"$DIR/apt.log" 2>&1; } \
      || die "apt-get install failed: see $DIR/apt.log"
  fi

  if alive "$DIR/run/rgw.pid" radosgw && alive "$DIR/run/osd.0.pid" ceph-osd && alive "$DIR/run/mon.a.pid" ceph-mon && s3_answers; then
    ensure_user; log "already running at $ENDPOINT"; print_env; return 0
  fi
  alive "$DIR/run/rgw.pid" radosgw || ! s3_answers || die "something else answers on $ENDPOINT; set RGW_PORT"

  mkdir -p "$DIR/run" "$DIR/log" "$DIR/mon" "$DIR/osd" "$DIR/rgw" "$DIR/crash"
  [ -s "$CEPH_CONF" ] || write_conf
  local fsid; fsid=$(ceph-conf --lookup fsid)

  if [ ! -e "$DIR/mon/ceph-a/done" ]; then
    log "creating the monitor"
    rm -rf "$DIR/mon/ceph-a"
    monmaptool --create --clobber --fsid "$fsid" --addv a "[v2:127.0.0.1:$MON_PORT]" "$DIR/monmap" >/dev/null
    ceph-authtool --create-keyring "$DIR/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
    ceph-mon --mkfs -i a --monmap "$DIR/monmap" --keyring "$DIR/keyring" 2>>"$DIR/log/mkfs.log" || die "ceph-mon --mkfs failed"
    touch "$DIR/mon/ceph-a/done"
  fi
  alive "$DIR/run/mon.a.pid" ceph-mon || ceph-mon -i a 9>&- || die "ceph-mon did not start: see $DIR/log/mon.a.log"
  wait_until 30 ceph --connect-timeout 2 mon stat >/dev/null 2>&1 || die "monitor not answering: see $DIR/log/mon.a.log"

  if [ ! -e "$DIR/osd/ceph-0/done" ]; then
    log "creating osd.0 (BlueStore on a $BLOCK_SIZE sparse file)"
    [ -s "$DIR/osd-uuid" ] || cat /proc/sys/kernel/random/uuid >"$DIR/osd-uuid"
    ceph osd new "$(cat "$DIR/osd-uuid")" 0 >/dev/null || die "'ceph osd new' failed (stale cluster? stop --purge)"
    rm -rf "$DIR/osd/ceph-0"; mkdir -p "$DIR/osd/ceph-0"
    ceph-osd -i 0 --mkfs --osd-uuid "$(cat "$DIR/osd-uuid")" 2>>"$DIR/log/mkfs.log" || die "ceph-osd --mkfs failed"
    touch "$DIR/osd/ceph-0/done"
  fi
  alive "$DIR/run/osd.0.pid" ceph-osd || ceph-osd -i 0 9>&- || die "ceph-osd did not start: see $DIR/log/osd.0.log"

  if ! alive "$DIR/run/rgw.pid" radosgw; then
    # radosgw only daemonizes once it reaches the cluster: run it in the foreground, in the background.
    setsid radosgw -f -n client.rgw --pid-file "$DIR/run/rgw.pid" </dev/null >>"$DIR/log/rgw.stdout" 2>&1 9>&- &
    echo $! >"$DIR/run/rgw.pid"
  fi
  osd_up() { ceph osd dump -f json 2>/dev/null | grep -q '"up":1'; }
  wait_until 60 osd_up || die "osd.0 not up: see $DIR/log/osd.0.log"
  rgw_ok() { alive "$DIR/run/rgw.pid" radosgw || die "radosgw exited: see $DIR/log/client.rgw.log"; s3_answers; }
  wait_until 120 rgw_ok || die "S3 not answering at $ENDPOINT: see $DIR/log/client.rgw.log"
  ensure_user
  log "S3 ready at $ENDPOINT (data in $DIR)"
  print_env
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  env) print_env ;;
  *) die "usage: $0 start|stop [--purge]|env [DIR]" ;;
esac
