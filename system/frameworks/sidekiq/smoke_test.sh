#!/usr/bin/env bash
# End-to-end check of the Sidekiq adapter (qsim_sidekiq.rb) against a private Redis, the world and
# finalize: one order to completed; malformed hand-offs answered 400; a permanent error to dead
# without a retry; SIGTERM mid-job pushes the job back (hard_shutdown); SIGKILL mid-job loses it
# (BasicFetch); the worker restarts cleanly. Exits non-zero on the first failure; stops all it starts.
#   system/frameworks/sidekiq/smoke_test.sh        (binaries from build/bin, or QSIM_BIN=dir)
set -u
ROOT="$(cd "$(dirname "$0")/../../.." && pwd)"
BIN="${QSIM_BIN:-$ROOT/build/bin}"
ADAPTER="system/frameworks/sidekiq/qsim_sidekiq.rb"
TMP="$(mktemp -d /tmp/qsim-sidekiq-smoke.XXXXXX)"
PIDS=()
cd "$ROOT" || exit 1

cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
  [ -f "$TMP/redis.pid" ] && kill "$(cat "$TMP/redis.pid")" 2>/dev/null
  sleep 0.2
  rm -rf "$TMP"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; echo "--- worker log" >&2; grep -v '^\s*/usr\|WARN: /' "$TMP/worker.log" 2>/dev/null | tail -20 >&2; exit 1; }
ok() { echo "ok: $*"; }
free_port() { ruby -rsocket -e 's = TCPServer.new("127.0.0.1", 0); puts s.addr[1]; s.close'; }
# wait_until SECONDS COMMAND...: true once COMMAND succeeds, false after SECONDS
wait_until() {
  local end=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do [ $SECONDS -ge $end ] && return 1; sleep 0.05; done
}
for b in qsim-world qsim-finalize; do [ -x "$BIN/$b" ] || fail "$BIN/$b missing (build the project first)"; done

P=$(free_port); W=$(free_port); F=$(free_port); H=$(free_port); K=$(free_port)
R() { redis-cli -p "$P" "$@"; }
redis-server --port "$P" --save '' --appendonly no --daemonize yes --pidfile "$TMP/redis.pid" \
  --logfile "$TMP/redis.log" >/dev/null || fail "redis-server"
wait_until 5 R ping || fail "redis did not start"
"$BIN/qsim-world" --port "$W" >"$TMP/world.log" 2>&1 & PIDS+=($!)
QSIM_FINALIZE_SECRET=s "$BIN/qsim-finalize" --redis "redis://127.0.0.1:$P" --queue orders --prefix t \
  --port "$F" --world-port "$W" >"$TMP/finalize.log" 2>&1 & PIDS+=($!)
wait_until 5 curl -sf "localhost:$W/health" || fail "world did not start"
wait_until 5 curl -sf "localhost:$F/health" || fail "finalize did not start"

# The store's transition script: $QSIM_TRANSITION_LUA, /tmp/transition.lua, or the store's source.
LUA="${QSIM_TRANSITION_LUA:-/tmp/transition.lua}"
if [ ! -f "$LUA" ]; then
  LUA="$TMP/transition.lua"
  awk '/kCount = R"lua\(/{f=1;next} /kTransition = R"lua\(/{f=1;print "";next} /^\)lua"/{f=0} f' \
    system/src/store/task_store.cpp >"$LUA"
fi
export QSIM_STORE_BASE='t:{orders}:' QSIM_STORE_TRANSITION="$(cat "$LUA")" QSIM_FINALIZE_SECRET=s
export QSIM_WORLD_URL="http://127.0.0.1:$W" QSIM_FINALIZE_URL="http://127.0.0.1:$F" QSIM_QUEUE=orders-test
export QSIM_STAGE_TIMEOUT_S=5 QSIM_REDIS_URL="redis://127.0.0.1:$P"
export QSIM_CONFIG='{"concurrency": 1, "shutdown_timeout_s": 1}'

order() { R HSET "t:{orders}:order:$1" id "$1" status paid amount 100 >/dev/null; R ZADD 't:{orders}:status:paid' 0 "$1" >/dev/null; }
status() { R HGET "t:{orders}:order:$1" status; }
is_status() { [ "$(status "$1")" = "$2" ]; }
enqueue() { curl -s -w ' %{http_code}' -X POST "localhost:$H/enqueue" -d "$1"; }
world() { curl -sf -X POST "localhost:$W/config" -d "$1" >/dev/null || fail "world config"; }
start_worker() {
  local t0=$(date +%s%N)
  QSIM_HEALTH_PORT=$K QSIM_WORKER_ID=sk0 QSIM_COMPONENT=sidekiq_worker ruby "$ADAPTER" worker >>"$TMP/worker.log" 2>&1 &
  WORKER=$!; PIDS+=($WORKER)
  wait_until 15 curl -sf "localhost:$K/health" || fail "worker not healthy"
  ok "worker $WORKER healthy after $(( ($(date +%s%N) - t0) / 1000000 )) ms"
}

QSIM_HEALTH_PORT=$H QSIM_HANDOFF_PORT=$H QSIM_COMPONENT=handoff ruby "$ADAPTER" handoff >"$TMP/handoff.log" 2>&1 & PIDS+=($!)
wait_until 15 curl -sf "localhost:$H/health" || fail "handoff not healthy"
start_worker

# 1. Malformed hand-offs: 400, and the server lives on.
for body in '' 'nonsense' '[1]' '{"order_id": 7}' '{"order_id": ""}' '{"order_id": "x"'; do
  [[ "$(enqueue "$body")" == *' 400' ]] || fail "body '$body' not answered 400"
done
[[ "$(curl -s -w ' %{http_code}' "localhost:$H/enqueue")" == *' 400' ]] || fail "GET /enqueue not 400"
ok "malformed hand-offs answered 400"

# 2. One order end to end.
order o1
ans=$(enqueue '{"order_id":"o1"}'); [[ "$ans" == '{"job_id":"'*'"} 200' ]] || fail "enqueue o1: $ans"
wait_until 10 is_status o1 completed || fail "o1 is $(status o1), not completed"
calls=$(curl -sf "localhost:$W/calls")
for api in download upload grant mail; do
  echo "$calls" | grep -q "\"api\":\"$api\"[^}]*\"order\":\"o1\"" || fail "no $api call for o1: $calls"
done
ok "o1 completed; world calls download, upload, grant, mail"

# 3. A permanent error (upload answers 400): dead at once, nothing in Sidekiq's retry set.
world '{"upload": {"fail_probability": 1.0, "fail_kind": "permanent"}}'
order o2; enqueue '{"order_id":"o2"}' >/dev/null
wait_until 10 is_status o2 dead || fail "o2 is $(status o2), not dead"
[ "$(R ZCARD retry)" = 0 ] || fail "a permanent error was scheduled for a retry"
ok "permanent error: o2 dead ($(R HGET 't:{orders}:order:o2' error)), not retried"

# 4. SIGTERM mid-job: after shutdown_timeout_s, hard_shutdown pushes the job back onto its queue.
world '{"download": {"latency_ms": 3000}}'
order o3; enqueue '{"order_id":"o3"}' >/dev/null
wait_until 5 is_status o3 downloading || fail "o3 never reached downloading"
kill -TERM "$WORKER"; wait "$WORKER"
[ "$(R LLEN queue:orders-test)" = 1 ] || fail "SIGTERM: the job was not pushed back"
ok "SIGTERM mid-job: job pushed back to queue:orders-test"
world '{}'
start_worker
wait_until 10 is_status o3 completed || fail "o3 is $(status o3) after the restart, not completed"
ok "o3 completed on the restarted worker"

# 5. SIGKILL mid-job: BRPOP took the job out of Redis; it is gone and the order stays in flight.
world '{"download": {"latency_ms": 3000}}'
order o4; enqueue '{"order_id":"o4"}' >/dev/null
wait_until 5 is_status o4 downloading || fail "o4 never reached downloading"
kill -KILL "$WORKER"; wait "$WORKER" 2>/dev/null
q=$(R LLEN queue:orders-test); r=$(R ZCARD retry); s=$(R ZCARD schedule)
[ "$q$r$s" = 000 ] || fail "SIGKILL: job found in Redis (queue $q, retry $r, schedule $s)"
ok "SIGKILL mid-job: the job is gone from Redis (queue, retry, schedule empty); o4 $(status o4)"
world '{}'
start_worker
order o5; enqueue '{"order_id":"o5"}' >/dev/null
wait_until 10 is_status o5 completed || fail "o5 is $(status o5) on the restarted worker"
is_status o4 downloading || fail "o4 moved ($(status o4)) though its job was lost"
ok "worker restarted cleanly (o5 completed); o4 stays downloading: stuck"
echo "PASS"
