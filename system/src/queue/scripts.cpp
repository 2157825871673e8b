#include "scripts.h"

#include <string>

namespace qsim::queue::scripts {

namespace {

// Shared helpers, prepended to every script. KEYS order:
//  1 ready:high 2 ready:default 3 ready:low 4 delayed 5 active 6 dead 7 stats 8 unique 9 wake
// 10 seq 11 reaper lock [12 periodic:<name>]
constexpr const char* kPrelude = R"lua(
local base = ARGV[1]
local READY = {high = KEYS[1], default = KEYS[2], low = KEYS[3]}
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function jkey(id) return base .. 'job:' .. id end
local function hist(id, entry) redis.call('APPEND', base .. 'hist:' .. id, entry .. ';') end
-- Wake-up tokens for workers blocked in BLPOP on KEYS[9]. Capped: a woken worker that finds
-- more ready work wakes the next one (see reserve), so no wake-up is lost.
local function wake()
  if redis.call('LLEN', KEYS[9]) < 16 then redis.call('RPUSH', KEYS[9], '1') end
end
local function push_ready(id, prio, front)
  local k = READY[prio] or KEYS[2]
  if front then redis.call('LPUSH', k, id) else redis.call('RPUSH', k, id) end
  wake()
end
local function bury(id, now, reason)
  redis.call('HSET', jkey(id), 'state', 'dead', 'error', reason, 'lease', '', 'finished', now)
  redis.call('RPUSH', KEYS[6], id)
  redis.call('HINCRBY', KEYS[7], 'dead', 1)
  hist(id, 'dead@' .. now)
end
local function enqueue_job(payload, prio, delay, uniq, maxa, now)
  if uniq ~= '' then
    local existing = redis.call('HGET', KEYS[8], uniq)
    if existing then return existing, 0 end
  end
  local id = tostring(redis.call('INCR', KEYS[10]))
  local state = 'ready'
  if delay > 0 then state = 'delayed' end
  redis.call('HSET', jkey(id), 'payload', payload, 'prio', prio, 'state', state, 'attempts', 0,
             'max', maxa, 'created', now, 'unique', uniq)
  if uniq ~= '' then redis.call('HSET', KEYS[8], uniq, id) end
  if delay > 0 then redis.call('ZADD', KEYS[4], now + delay, id) else push_ready(id, prio, false) end
  hist(id, state .. '@' .. now)
  redis.call('HINCRBY', KEYS[7], 'enqueued', 1)
  return id, 1
end
)lua";

redis::Script make(const char* body) { return redis::Script(std::string(kPrelude) + body); }

}  // namespace

// ARGV: base payload prio delay_ms unique max_attempts -> {id, created(0|1)}
const redis::Script& enqueue() {
  static const redis::Script s = make(R"lua(
local id, created = enqueue_job(ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5], ARGV[6], now_ms())
return {id, created}
)lua");
  return s;
}

// ARGV: base worker lease_ms want max_payload nacks (id token)*nacks
// -> {acked, reserved, next_due_ms or -1, (id payload attempts max prio token)*reserved}
const redis::Script& reserve() {
  static const redis::Script s = make(R"lua(
local worker, lease, want, maxp, nacks = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local now = now_ms()
local acked = 0
for i = 0, nacks - 1 do
  local id, tok = ARGV[7 + 2 * i], ARGV[8 + 2 * i]
  local jk = jkey(id)
  if redis.call('HGET', jk, 'lease') == tok then
    redis.call('ZREM', KEYS[5], id)
    redis.call('HSET', jk, 'state', 'done', 'lease', '', 'finished', now)
    hist(id, 'done@' .. now)
    acked = acked + 1
  end
end
if acked > 0 then redis.call('HINCRBY', KEYS[7], 'acked', acked) end
local out = {acked, 0, -1}
if want == 0 then return out end
-- promote delayed jobs that are due
local due = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now, 'LIMIT', 0, 100)
for _, id in ipairs(due) do
  redis.call('ZREM', KEYS[4], id)
  local prio = redis.call('HGET', jkey(id), 'prio')
  if prio then
    redis.call('HSET', jkey(id), 'state', 'ready')
    push_ready(id, prio, false)
    hist(id, 'ready@' .. now)
  else
    bury(id, now, 'no job record for delayed id')
  end
end
local got = 0
while got < want do
  local popped = redis.call('LMPOP', 3, KEYS[1], KEYS[2], KEYS[3], 'LEFT', 'COUNT', want - got)
  if not popped then break end
  for _, id in ipairs(popped[2]) do
    local jk = jkey(id)
    local f = redis.call('HMGET', jk, 'prio', 'attempts', 'max', 'serial')
    if not f[1] or not tonumber(f[2]) or not tonumber(f[3]) then
      bury(id, now, 'malformed job record: missing prio, attempts or max')
    else
      local size = redis.call('HSTRLEN', jk, 'payload')
      if size > maxp then
        bury(id, now, 'payload too large: ' .. size .. ' bytes, limit ' .. maxp)
      else
        local attempts = tonumber(f[2]) + 1
        -- the lease token names this reservation: attempts can repeat after a hand-back, serial cannot
        local serial = (tonumber(f[4]) or 0) + 1
        local tok = worker .. ':' .. serial
        redis.call('HSET', jk, 'state', 'active', 'attempts', attempts, 'serial', serial, 'lease', tok, 'worker', worker)
        redis.call('ZADD', KEYS[5], now + lease, id)
        hist(id, 'active@' .. now .. '@' .. worker)
        local n = #out
        out[n + 1] = id
        out[n + 2] = redis.call('HGET', jk, 'payload') or ''
        out[n + 3] = attempts
        out[n + 4] = tonumber(f[3])
        out[n + 5] = f[1]
        out[n + 6] = tok
        got = got + 1
      end
    end
  end
end
out[2] = got
if got > 0 then
  redis.call('HINCRBY', KEYS[7], 'reserved', got)
  -- chain wake-up: more is ready and nobody has been told
  if redis.call('LLEN', KEYS[9]) == 0 and redis.call('EXISTS', KEYS[1], KEYS[2], KEYS[3]) > 0 then
    redis.call('RPUSH', KEYS[9], '1')
  end
else
  local first = redis.call('ZRANGE', KEYS[4], 0, 0, 'WITHSCORES')
  if first[2] then out[3] = math.max(0, tonumber(first[2]) - now) end
end
return out
)lua");
  return s;
}

// ARGV: base lease_ms (id token)* -> {1|0 per job}: 0 means the lease is no longer ours
const redis::Script& heartbeat() {
  static const redis::Script s = make(R"lua(
local now, lease = now_ms(), tonumber(ARGV[2])
local out = {}
for i = 3, #ARGV, 2 do
  local id, tok = ARGV[i], ARGV[i + 1]
  if redis.call('HGET', jkey(id), 'lease') == tok then
    redis.call('ZADD', KEYS[5], 'XX', now + lease, id)
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
)lua");
  return s;
}

// ARGV: base id token reason permanent(0|1) delay_ms -> 0 lease lost | 1 retry scheduled | 2 dead
const redis::Script& fail() {
  static const redis::Script s = make(R"lua(
local id, tok, reason, permanent, delay = ARGV[2], ARGV[3], ARGV[4], ARGV[5] == '1', tonumber(ARGV[6])
local jk = jkey(id)
if redis.call('HGET', jk, 'lease') ~= tok then return 0 end
local now = now_ms()
redis.call('ZREM', KEYS[5], id)
local f = redis.call('HMGET', jk, 'attempts', 'max')
local attempts, maxa = tonumber(f[1]) or 0, tonumber(f[2]) or 1
if permanent then
  bury(id, now, 'permanent failure: ' .. reason)
  return 2
end
if attempts >= maxa then
  bury(id, now, 'failed ' .. attempts .. ' of ' .. maxa .. ' attempts: ' .. reason)
  return 2
end
-- 'failed' = waiting in the delayed set for its retry
redis.call('HSET', jk, 'state', 'failed', 'lease', '', 'error', reason)
redis.call('ZADD', KEYS[4], now + delay, id)
redis.call('HINCRBY', KEYS[7], 'retried', 1)
hist(id, 'failed@' .. now)
return 1
)lua");
  return s;
}

// Hand a reserved job back untouched (graceful shutdown): front of its ready list, attempt not
// counted. ARGV: base id token -> 1 | 0 lease lost
const redis::Script& release() {
  static const redis::Script s = make(R"lua(
local id, tok = ARGV[2], ARGV[3]
local jk = jkey(id)
if redis.call('HGET', jk, 'lease') ~= tok then return 0 end
local now = now_ms()
redis.call('ZREM', KEYS[5], id)
redis.call('HINCRBY', jk, 'attempts', -1)
redis.call('HSET', jk, 'state', 'ready', 'lease', '')
push_ready(id, redis.call('HGET', jk, 'prio'), true)
redis.call('HINCRBY', KEYS[7], 'released', 1)
hist(id, 'released@' .. now)
return 1
)lua");
  return s;
}

// ARGV: base holder tick_ms limit -> {redelivered, dead} or {-1, 0} when another reaper holds
// this tick. Expired jobs go to the front of their ready list: they have waited long enough.
const redis::Script& reap() {
  static const redis::Script s = make(R"lua(
if not redis.call('SET', KEYS[11], ARGV[2], 'NX', 'PX', ARGV[3]) then return {-1, 0} end
local now = now_ms()
local expired = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', '(' .. now, 'LIMIT', 0, tonumber(ARGV[4]))
local redelivered, dead = 0, 0
for _, id in ipairs(expired) do
  redis.call('ZREM', KEYS[5], id)
  local jk = jkey(id)
  local f = redis.call('HMGET', jk, 'prio', 'attempts', 'max')
  local attempts, maxa = tonumber(f[2]) or 0, tonumber(f[3]) or 1
  if attempts >= maxa then
    bury(id, now, 'lease expired on attempt ' .. attempts .. ' of ' .. maxa .. ': worker lost (crash loop)')
    dead = dead + 1
  else
    redis.call('HSET', jk, 'state', 'ready', 'lease', '')
    push_ready(id, f[1], true)
    redis.call('HINCRBY', KEYS[7], 'redelivered', 1)
    hist(id, 'redelivered@' .. now)
    redelivered = redelivered + 1
  end
end
return {redelivered, dead}
)lua");
  return s;
}

// Fire a periodic job at most once per period, whoever calls. KEYS[12] = periodic:<name>.
// ARGV: base expected_next new_next payload prio max_attempts
// -> {0, next, now} initialised | {-1, next, now} expected was stale | {-2, next, now} not due
//    | {1, job_id, now} fired
const redis::Script& periodic() {
  static const redis::Script s = make(R"lua(
local now = now_ms()
local cur = redis.call('HGET', KEYS[12], 'next')
if not cur then
  redis.call('HSET', KEYS[12], 'next', ARGV[3])
  return {0, ARGV[3], now}
end
if cur ~= ARGV[2] then return {-1, cur, now} end
if now < tonumber(cur) then return {-2, cur, now} end
redis.call('HSET', KEYS[12], 'next', ARGV[3])
redis.call('HINCRBY', KEYS[12], 'fired', 1)
local id = enqueue_job(ARGV[4], ARGV[5], 0, '', ARGV[6], now)
return {1, id, now}
)lua");
  return s;
}

}  // namespace qsim::queue::scripts
