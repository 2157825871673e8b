#!/usr/bin/env bash
# End-to-end smoke test of qsim_bullmq.js against a private redis-server, qsim-world and qsim-finalize:
#  1. a paid order goes hand-off -> worker -> finalize: completed, and the world saw download, upload, grant, mail;
#  2. a malformed /enqueue body is answered 400 and the hand-off server lives on;
#  3. a worker SIGKILLed mid-download: once its lock expired the stalled check re-queues the job, and the restarted
#     worker (healthy again) completes it with a second download;
#  4. a transient world failure is retried `attempts` times, then the order is dead; a permanent one is dead at once;
#  5. the benchmark mode (README): bench-fill, bench-pickup, and a QSIM_BENCH=1 worker counting and timing its jobs.
# Usage: system/frameworks/bullmq/smoke_test.sh   (QSIM_BIN: the binaries, default build/bin). Exits non-zero on failure.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
BIN=${QSIM_BIN:-$ROOT/build/bin}
ADAPTER="$HERE/qsim_bullmq.js"
TMP=$(mktemp -d /tmp/qsim-bullmq-smoke.XXXXXX)
PIDS=()
RP=""
OK=0

free_port() { node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
fail() {
  echo "FAIL: $*" >&2
  for f in "$TMP"/*.log; do echo "--- $f" >&2; tail -n 20 "$f" >&2; done
  exit 1
}
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  [ -n "$RP" ] && redis-cli -p "$RP" shutdown nosave >/dev/null 2>&1 || true
  [ "$OK" = 1 ] && rm -rf "$TMP"
  return 0
}
trap cleanup EXIT
# wait_for SECONDS WHAT COMMAND...: polls COMMAND every 0.1 s
wait_for() {
  local until=$((SECONDS + $1)) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do [ $SECONDS -lt $until ] || fail "timed out waiting for $what"; sleep 0.1; done
}
healthy() { curl -sf -m 1 "http://127.0.0.1:$1/health"; }
status() { redis-cli -p "$RP" HGET "t:{orders}:order:$1" status; }
status_is() { [ "$(status "$1")" = "$2" ]; }
calls() { curl -sf "http://127.0.0.1:$WP/calls" | node -e 'let s="";process.stdin.on("data",c=>s+=c).on("end",()=>{
  console.log(JSON.parse(s).filter(c=>c.order===process.argv[1]).map(c=>c.api+":"+c.status).sort().join(" "))})' "$1"; }
paid_order() {
  redis-cli -p "$RP" HSET "t:{orders}:order:$1" id "$1" status paid amount 100 >/dev/null
  redis-cli -p "$RP" ZADD 't:{orders}:status:paid' 0 "$1" >/dev/null
}
enqueue() { curl -s -m 5 -o "$TMP/answer" -w '%{http_code}' -X POST "http://127.0.0.1:$HP/enqueue" -d "$1"; }
world_config() { curl -sf -X POST "http://127.0.0.1:$WP/config" -d "$1" >/dev/null || fail "world config $1"; }
start_worker() {
  QSIM_WORKER_ID=bw0 QSIM_COMPONENT=bullmq_worker QSIM_HEALTH_PORT=$WHP \
    node "$ADAPTER" worker >>"$TMP/worker.log" 2>&1 &
  WPID=$!
  PIDS+=("$WPID")
}

for x in redis-server redis-cli curl node "$BIN/qsim-world" "$BIN/qsim-finalize"; do
  command -v "$x" >/dev/null || fail "$x not found"
done
RP=$(free_port); WP=$(free_port); FP=$(free_port); HP=$(free_port); WHP=$(free_port)
redis-server --port "$RP" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes --pidfile "$TMP/redis.pid" \
  --logfile "$TMP/redis.log" || fail "redis-server"
wait_for 5 redis redis-cli -p "$RP" ping
"$BIN/qsim-world" --port "$WP" >"$TMP/world.log" 2>&1 &
PIDS+=($!)
QSIM_FINALIZE_SECRET=s "$BIN/qsim-finalize" --redis "redis://127.0.0.1:$RP" --queue orders --prefix t --port "$FP" \
  --world-port "$WP" >"$TMP/finalize.log" 2>&1 &
PIDS+=($!)
wait_for 10 world healthy "$WP"
wait_for 10 finalize healthy "$FP"

# The store's transition script, as the C++ task store runs it (kCount + kTransition in task_store.cpp).
export QSIM_STORE_TRANSITION="${QSIM_TRANSITION_LUA:+$(cat "$QSIM_TRANSITION_LUA")}"
[ -n "$QSIM_STORE_TRANSITION" ] || QSIM_STORE_TRANSITION=$(awk '/kCount = R"lua\(/{f=1;next} /kTransition = R"lua\(/{f=1;next}
  /^\)lua";/{f=0} f' "$ROOT/system/src/store/task_store.cpp")
export QSIM_STORE_BASE='t:{orders}:' QSIM_FINALIZE_SECRET=s QSIM_WORLD_URL="http://127.0.0.1:$WP" \
  QSIM_FINALIZE_URL="http://127.0.0.1:$FP" QSIM_QUEUE=orders-test QSIM_STAGE_TIMEOUT_S=5 \
  QSIM_REDIS_URL="redis://127.0.0.1:$RP" \
  QSIM_CONFIG='{"attempts":2,"backoff_type":"fixed","backoff_delay_ms":300,"lock_duration_ms":2000,"stalled_interval_ms":1000,"drain_delay_s":1}'

QSIM_COMPONENT=bullmq_handoff QSIM_HANDOFF_PORT=$HP QSIM_HEALTH_PORT=$HP node "$ADAPTER" handoff >"$TMP/handoff.log" 2>&1 &
PIDS+=($!)
start_worker
wait_for 20 hand-off healthy "$HP"
wait_for 20 worker healthy "$WHP"

echo "1. happy path"
paid_order o1
[ "$(enqueue '{"order_id":"o1"}')" = 200 ] || fail "enqueue o1: $(cat "$TMP/answer")"
grep -q '"job_id"' "$TMP/answer" || fail "no job_id in $(cat "$TMP/answer")"
wait_for 15 "o1 completed" status_is o1 completed
[ "$(calls o1)" = "download:200 grant:200 mail:200 upload:200" ] || fail "o1 calls: $(calls o1)"

echo "2. malformed bodies"
for body in 'not json' '{}' '{"order_id":7}' '{"order_id":""}' '[1]' 'null'; do
  [ "$(enqueue "$body")" = 400 ] || fail "body '$body' not answered 400"
done
healthy "$HP" >/dev/null || fail "hand-off server died on a malformed body"

echo "3. worker SIGKILLed mid-job"
world_config '{"download":{"per_order_us":{"o2":3000000}}}'
paid_order o2
[ "$(enqueue '{"order_id":"o2"}')" = 200 ] || fail "enqueue o2"
wait_for 10 "o2 downloading" status_is o2 downloading
kill -9 "$WPID"
KILLED=$(date +%s%3N)
wait "$WPID" 2>/dev/null || true
JOB=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1])).job_id)' "$TMP/answer")
[ "$(redis-cli -p "$RP" LRANGE bull:orders-test:active 0 -1)" = "$JOB" ] || fail "job $JOB of o2 not left active"
world_config '{}'
start_worker
wait_for 20 "restarted worker" healthy "$WHP"
wait_for 20 "o2 completed after the stalled check" status_is o2 completed
echo "   o2 completed $(($(date +%s%3N) - KILLED)) ms after the kill (lock_duration_ms 2000, stalled_interval_ms 1000)"
o2_calls() { [ "$(calls o2)" = "download:200 download:200 grant:200 mail:200 upload:200" ]; }
wait_for 10 "o2: two downloads (the killed one ends in the world later), one upload, grant, mail" o2_calls

echo "4. transient failures exhaust the attempts, a permanent one is dead at once"
world_config '{"download":{"fail_probability":1,"fail_kind":"transient"}}'
paid_order o3
[ "$(enqueue '{"order_id":"o3"}')" = 200 ] || fail "enqueue o3"
wait_for 15 "o3 dead" status_is o3 dead
[ "$(calls o3)" = "download:503 download:503" ] || fail "o3 calls: $(calls o3)"
world_config '{"download":{"fail_probability":1,"fail_kind":"permanent"}}'
paid_order o4
[ "$(enqueue '{"order_id":"o4"}')" = 200 ] || fail "enqueue o4"
wait_for 15 "o4 dead" status_is o4 dead
[ "$(calls o4)" = "download:400" ] || fail "o4 calls: $(calls o4)"
redis-cli -p "$RP" HGET 't:{orders}:order:o4' error | grep -q 'download: HTTP 400' || fail "o4 has no error"
world_config '{}'
[ "$(redis-cli -p "$RP" HGET 't:{orders}:store_queries' bullmq_worker)" -gt 0 ] || fail "no store queries counted"

echo "5. benchmark mode: bench-fill, bench-pickup and a QSIM_BENCH=1 worker"
kill "$WPID"; wait "$WPID" 2>/dev/null || true
export QSIM_QUEUE=bench-smoke QSIM_CONFIG='{"concurrency":4}'
node "$ADAPTER" bench-fill 20 2>>"$TMP/bench.log" || fail "bench-fill"
QSIM_BENCH=1 start_worker
counter_is() { [ "$(redis-cli -p "$RP" GET bench-smoke:bench:done)" = "$1" ]; }
wait_for 20 "20 bench jobs done" counter_is 20
node "$ADAPTER" bench-pickup 5 50 2>>"$TMP/bench.log" || fail "bench-pickup"
wait_for 10 "25 bench jobs done" counter_is 25
[ "$(redis-cli -p "$RP" LLEN bench-smoke:bench:pickup_us)" = 5 ] || fail "not 5 pickup times"
echo "   pickup us: $(redis-cli -p "$RP" LRANGE bench-smoke:bench:pickup_us 0 -1 | tr '\n' ' ')"

OK=1
echo PASS
