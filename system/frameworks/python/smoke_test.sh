#!/bin/bash
# End-to-end smoke test of the RQ and Celery adapters (system/frameworks/README.md), by hand, with
# no harness: a private redis-server, qsim-world and qsim-finalize from build/bin, then per framework
#   1. hand-off + worker healthy; POST /enqueue o1 -> completed, the world saw download upload grant mail;
#   2. kill -9 of the worker's whole process tree mid-download; a restarted worker comes up healthy
#      and completes the next order (the killed one is left where the framework leaves it: printed);
#   3. kill -9 of the work horse / pool child only, under the safer settings (RQ Retry, Celery
#      acks_late + task_reject_on_worker_lost): the order is redone and completed;
#   4. the same kill under the defaults: the framework gives up and the order is marked dead.
# Usage: system/frameworks/python/smoke_test.sh [rq] [celery]   (both by default). Exits non-zero on failure.
# QSIM_SMOKE_KEEP=1 keeps the logs. The transition script: $QSIM_TRANSITION_FILE, else taken from system/src/store/task_store.cpp.
set -u
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
BIN=${QSIM_BIN:-$ROOT/build/bin} PY=/usr/bin/python3 FW=${*:-rq celery}
TMP=$(mktemp -d /tmp/qsim-smoke.XXXXXX)
PIDS=() FAILED=0
port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
tree() { local p; for p in $(ps -o pid= --ppid "$1" 2>/dev/null); do tree "$p"; done; echo "$1"; }
killtree() { local p; for p in $(tree "$1"); do kill -9 "$p" 2>/dev/null; done; }
cleanup() {
  exec 2>/dev/null  # no "Killed" job notices
  local p; for p in "${PIDS[@]}"; do grep -qs qsim "/proc/$p/cmdline" && killtree "$p"; done
  [ -f "$TMP/redis.pid" ] && kill "$(cat "$TMP/redis.pid")" 2>/dev/null
  [ "$FAILED" = 0 ] && [ -z "${QSIM_SMOKE_KEEP:-}" ] && rm -rf "$TMP" || echo "logs kept in $TMP" >&1
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; FAILED=1; }
ok() { echo "ok: $*"; }
wait_for() {  # seconds, command...: true once the command succeeds
  local n=$(($1 * 5)); shift
  while [ $n -gt 0 ]; do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; n=$((n - 1)); done; return 1
}
healthy() { curl -sf -m 1 "http://127.0.0.1:$1/health"; }
status() { redis-cli -p "$RP" HGET "t:{orders}:order:$1" status; }
is() { [ "$(status "$1")" = "$2" ]; }
new_order() {
  redis-cli -p "$RP" HSET "t:{orders}:order:$1" id "$1" status paid amount 100 >/dev/null
  redis-cli -p "$RP" ZADD "t:{orders}:status:paid" 0 "$1" >/dev/null
}
enqueue() { curl -sf -m 6 -X POST "http://127.0.0.1:$HP/enqueue" -d "{\"order_id\":\"$1\"}"; }
world() { curl -sf -m 2 -X POST "http://127.0.0.1:$WP/config" -d "$1" >/dev/null; }
world_saw_all() {
  curl -sf "http://127.0.0.1:$WP/calls" | $PY -c 'import json, sys
apis = {c["api"] for c in json.load(sys.stdin) if c["order"] == sys.argv[1] and 200 <= c["status"] < 300}
sys.exit(not {"download", "upload", "grant", "mail"} <= apis)' "$1"
}

[ -x "$BIN/qsim-world" ] && [ -x "$BIN/qsim-finalize" ] || { echo "build $BIN/qsim-world and qsim-finalize first" >&2; exit 2; }
if [ -n "${QSIM_TRANSITION_FILE:-}" ]; then cp "$QSIM_TRANSITION_FILE" "$TMP/transition.lua"
else $PY - "$ROOT/system/src/store/task_store.cpp" >"$TMP/transition.lua" <<'EOF' || exit 2
import re, sys
blocks = re.findall(r'R"lua\((.*?)\)lua"', open(sys.argv[1]).read(), re.S)
count = [b for b in blocks if "HINCRBY', KEYS[#KEYS]" in b]
move = [b for b in blocks if "for i = 7, #ARGV" in b]
assert len(count) == 1 and len(move) == 1, "cannot find the transition script in task_store.cpp"
sys.stdout.write(count[0] + move[0])
EOF
fi

RP=$(port) WP=$(port) FP=$(port)
redis-server --port "$RP" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
  --pidfile "$TMP/redis.pid" --logfile "$TMP/redis.log" || exit 2
wait_for 5 redis-cli -p "$RP" ping || { echo "redis-server did not start" >&2; exit 2; }
"$BIN/qsim-world" --port "$WP" >"$TMP/world.log" 2>&1 & PIDS+=($!)
QSIM_FINALIZE_SECRET=s "$BIN/qsim-finalize" --redis "redis://127.0.0.1:$RP" --queue orders --prefix t \
  --port "$FP" --world-port "$WP" >"$TMP/finalize.log" 2>&1 & PIDS+=($!)
wait_for 10 healthy "$WP" && wait_for 10 healthy "$FP" || { echo "world/finalize did not start" >&2; exit 2; }

QSIM_STORE_TRANSITION=$(cat "$TMP/transition.lua")
export QSIM_REDIS_URL="redis://127.0.0.1:$RP" QSIM_STORE_BASE='t:{orders}:' QSIM_FINALIZE_SECRET=s \
  QSIM_STORE_TRANSITION QSIM_WORLD_URL="http://127.0.0.1:$WP" \
  QSIM_FINALIZE_URL="http://127.0.0.1:$FP" QSIM_STAGE_TIMEOUT_S=5

start_handoff() {  # fw config
  local hh; HP=$(port) hh=$(port)
  QSIM_QUEUE=$QUEUE QSIM_CONFIG=$2 QSIM_COMPONENT=handoff QSIM_HANDOFF_PORT=$HP QSIM_HEALTH_PORT=$hh \
    $PY "$ROOT/system/frameworks/$1/qsim_$1.py" handoff >>"$TMP/$1-handoff.log" 2>&1 & HPID=$! PIDS+=($!)
  wait_for 15 healthy "$HP" && wait_for 5 healthy "$hh" || fail "$1: the hand-off is not healthy"
}
start_worker() {  # fw config
  WH=$(port)
  QSIM_QUEUE=$QUEUE QSIM_CONFIG=$2 QSIM_COMPONENT=worker-1 QSIM_WORKER_ID=w1 QSIM_HEALTH_PORT=$WH \
    $PY "$ROOT/system/frameworks/$1/qsim_$1.py" worker >>"$TMP/$1-worker.log" 2>&1 & WPID=$! PIDS+=($!)
  wait_for 30 healthy "$WH" || fail "$1: the worker is not healthy"
}
stop() { local p=$1; kill "$p" 2>/dev/null; wait_for 10 bash -c "! kill -0 $p" || killtree "$p"; wait "$p" 2>/dev/null; }
child_of() { ps -o pid= --ppid "$1" | head -1 | tr -d ' '; }
# The job's process: RQ's work horse is the worker's child while a job runs; Celery's pool child is
# there all along (concurrency 1).
job_pid() { child_of "$WPID"; }

run() {  # fw safer-config default-config
  local fw=$1 safer=$2 plain=$3; QUEUE="orders-$fw"
  echo "== $fw"
  start_handoff "$fw" "$plain"; start_worker "$fw" "$plain"
  # 1. the happy path
  new_order "$fw-1"; enqueue "$fw-1" >/dev/null || fail "$fw: enqueue"
  wait_for 30 is "$fw-1" completed && ok "$fw: $fw-1 completed" || fail "$fw: $fw-1 is '$(status "$fw-1")'"
  wait_for 5 world_saw_all "$fw-1" && ok "$fw: world saw download upload grant mail" || fail "$fw: world calls for $fw-1"
  [ "$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$HP/enqueue" -d 'nope')" = 400 ] \
    && ok "$fw: a malformed body gets 400" || fail "$fw: malformed body"
  # 2. kill -9 of the worker's process tree mid-download, then a fresh start
  world '{"download": {"latency_ms": 3000}}'
  new_order "$fw-2"; enqueue "$fw-2" >/dev/null || fail "$fw: enqueue"
  wait_for 20 is "$fw-2" downloading || fail "$fw: $fw-2 never downloading"
  killtree "$WPID"; wait "$WPID" 2>/dev/null; world '{}'
  start_worker "$fw" "$plain"
  new_order "$fw-3"; enqueue "$fw-3" >/dev/null || fail "$fw: enqueue"
  wait_for 30 is "$fw-3" completed && ok "$fw: after kill -9 of the worker, a restarted worker completed $fw-3" \
    || fail "$fw: $fw-3 is '$(status "$fw-3")'"
  echo "   (the order whose worker was killed, $fw-2: '$(status "$fw-2")')"
  stop "$WPID"; stop "$HPID"
  # 3. and 4. kill -9 of the job's process only: safer settings redo it, defaults give it up
  local cfg expect n
  for cfg in "$safer" "$plain"; do
    start_handoff "$fw" "$cfg"; start_worker "$fw" "$cfg"
    [ "$cfg" = "$safer" ] && expect=completed n=4 || expect=dead n=5
    world '{"download": {"latency_ms": 3000}}'
    new_order "$fw-$n"; enqueue "$fw-$n" >/dev/null || fail "$fw: enqueue"
    wait_for 20 is "$fw-$n" downloading || fail "$fw: $fw-$n never downloading"
    kill -9 "$(job_pid)"; world '{}'
    wait_for 40 is "$fw-$n" "$expect" && ok "$fw: job process killed under $cfg: $fw-$n $expect" \
      || fail "$fw: job process killed under $cfg: $fw-$n is '$(status "$fw-$n")', want $expect"
    healthy "$WH" >/dev/null || fail "$fw: the worker is not healthy after its job process died"
    stop "$WPID"; stop "$HPID"
  done
}

for fw in $FW; do
  case $fw in
    rq) run rq '{"retry_max": 2}' '{}' ;;
    celery) run celery '{"acks_late": true, "task_reject_on_worker_lost": true}' '{}' ;;
    *) fail "unknown framework '$fw'" ;;
  esac
done
[ "$FAILED" = 0 ] && echo "PASS" || echo "FAILED" >&2
exit "$FAILED"
