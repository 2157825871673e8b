#include "scripts.h"

#include <string>

namespace qsim::queue::scripts {

// KEYS, in one order for every script; a script is passed the first N it needs
// (key_count()), since every argument costs time on each call:
//  1 ready:high  2 ready:default  3 ready:low  4 delayed  5 active  6 dead  7 stats  8 idle
//  9 unique  10 seq  11 reaper lock  12 periodic:<name>
// ARGV[1] is the queue's key base "P:{Q}:"; job:<id> and inbox:<worker> keys are
// built from it and carry the same hash tag, so they live in the declared keys' slot.
//
// The active set's members are lease tokens "<id>:<serial>" (serial counts reservations of the
// job), scored by lease deadline. A token names one reservation: a stale worker's ack,
// heartbeat, fail or release finds no such member and changes nothing.
//
// A job leased to an idle worker by whoever made it ready (push_ready) has its token in the
// hand-off set base..'handed' instead, with the same meaning; the worker's first call about it
// (collection from the inbox, heartbeat) moves it to active, and ack, fail, release and the
// reaper look in both. So a producer (the payment intake) never touches the active set, and a
// Redis user of its own can be denied it (security/redis_acl.h). Scripts that only enqueue get
// the hand-off set in KEYS[5], which they never use, so that they declare no key of active.
//
// Each helper costs a closure per call, so every script includes only the helpers it uses.

namespace {

constexpr const char* kBase = R"lua(
local base = ARGV[1]
local handed_set = base .. 'handed'
)lua";

// Numbers cross into Redis as strings; string.format('%d') formats an integer, where Lua's own
// tostring goes through printf("%.14g"), measurably slower on the hot path.
constexpr const char* kNow = R"lua(
local fmt = string.format
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
)lua";

// The history lives in the job hash's 'hist' field ("state@ms[@worker];..."). The hot paths
// fold it into writes they make anyway: enqueue writes it whole, a reservation reads it in its
// HMGET and rewrites it in its HSET, and an ack writes only 'finished' (status() turns that
// into the final "done" entry). Other transitions are rare and use hist() (two calls).
constexpr const char* kHist = R"lua(
local function hist(id, entry)
  local jk = base .. 'job:' .. id
  redis.call('HSET', jk, 'hist', (redis.call('HGET', jk, 'hist') or '') .. entry .. ';')
end
)lua";

constexpr const char* kBury = R"lua(
local function bury(id, now, reason)
  redis.call('HSET', base .. 'job:' .. id, 'state', 'dead', 'error', reason, 'finished', fmt('%d', now))
  redis.call('RPUSH', KEYS[6], id)
  redis.call('HINCRBY', KEYS[7], 'dead', 1)
  hist(id, 'dead@' .. fmt('%d', now))
end
)lua";

// Lease job `id` to `worker` now, its token in `set` (active, or the hand-off set).
// f = HMGET(job, prio, attempts, max, serial, payload, hist), as leasable() reads it.
// Returns the job as the client decodes it: id, token, attempt, max, prio, payload.
constexpr const char* kLease = R"lua(
-- Job `id`'s fields for lease_job, or nil and why it cannot be leased (to a worker taking
-- payloads up to maxp bytes). A payload is measured where it is (HSTRLEN): one too large is
-- never copied into the script, which would hold Redis up for everyone meanwhile.
local function leasable(id, maxp)
  local key = base .. 'job:' .. id
  local size = redis.call('HSTRLEN', key, 'payload')
  local f = size > maxp and redis.call('HMGET', key, 'prio', 'attempts', 'max')
            or redis.call('HMGET', key, 'prio', 'attempts', 'max', 'serial', 'payload', 'hist')
  if not f[1] or not tonumber(f[2]) or not tonumber(f[3]) then
    return nil, 'malformed job record: missing prio, attempts or max'
  end
  if size > maxp then return nil, 'payload too large: ' .. size .. ' bytes, limit ' .. maxp end
  return f
end
local function lease_job(id, f, worker, lease, now, set)
  local attempts = tonumber(f[2]) + 1
  local serial = (tonumber(f[4]) or 0) + 1
  local tok = id .. ':' .. fmt('%d', serial)
  redis.call('HSET', base .. 'job:' .. id, 'state', 'active', 'attempts', fmt('%d', attempts), 'serial', fmt('%d', serial),
             'worker', worker, 'hist', (f[6] or '') .. 'active@' .. fmt('%d', now) .. '@' .. worker .. ';')
  redis.call('ZADD', set, fmt('%d', now + lease), tok)
  return {id, tok, attempts, tonumber(f[3]), f[1], f[5] or ''}
end
)lua";

// Make job `id` ready. If a worker is idle (registered, not expired), lease the job to it and
// put it in that worker's inbox, which the worker is blocked on: pickup in one hop. Workers
// only register as idle when every ready list is empty, so this never overtakes a higher
// priority. Otherwise append (or, for redeliveries, prepend) to its ready list.
constexpr const char* kPushReady = R"lua(
local function push_ready(id, prio, front, now)
  -- the freshest registration: live idle workers renew theirs every idle wait, so one that
  -- died while idle sinks below them and is chosen only when nobody else is idle
  local idle = redis.call('ZREVRANGEBYSCORE', KEYS[8], '+inf', fmt('%d', now), 'LIMIT', 0, 1)
  if idle[1] then
    redis.call('ZREM', KEYS[8], idle[1])
    -- member: "<lease ms>|<max payload bytes>|<worker>"
    local bar1 = string.find(idle[1], '|', 1, true)
    local bar2 = string.find(idle[1], '|', bar1 + 1, true)
    local lease = tonumber(string.sub(idle[1], 1, bar1 - 1))
    local maxp = tonumber(string.sub(idle[1], bar1 + 1, bar2 - 1))
    local worker = string.sub(idle[1], bar2 + 1)
    local f, why = leasable(id, maxp)
    if not f then
      bury(id, now, why)
      return
    end
    local j = lease_job(id, f, worker, lease, now, handed_set)
    redis.call('HINCRBY', KEYS[7], 'reserved', 1)
    redis.call('RPUSH', base .. 'inbox:' .. worker, table.concat(j, '\n', 1, 5) .. '\n' .. j[6])
    return
  end
  local k = KEYS[2]
  if prio == 'high' then k = KEYS[1] elseif prio == 'low' then k = KEYS[3] end
  if front then redis.call('LPUSH', k, id) else redis.call('RPUSH', k, id) end
end
)lua";

constexpr const char* kPromote = R"lua(
local function promote(now)
  local due = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', fmt('%d', now), 'LIMIT', 0, 100)
  for _, id in ipairs(due) do
    redis.call('ZREM', KEYS[4], id)
    local prio = redis.call('HGET', base .. 'job:' .. id, 'prio')
    if prio then
      redis.call('HSET', base .. 'job:' .. id, 'state', 'ready')
      hist(id, 'ready@' .. fmt('%d', now))
      push_ready(id, prio, false, now)
    else
      bury(id, now, 'no job record for delayed id')
    end
  end
end
)lua";

constexpr const char* kEnqueue = R"lua(
local function enqueue_job(payload, prio, delay, uniq, maxa, now)
  if uniq ~= '' then
    local existing = redis.call('HGET', KEYS[9], uniq)
    if existing then return existing, 0 end
  end
  local id = tostring(redis.call('INCR', KEYS[10]))
  local state = 'ready'
  if delay > 0 then state = 'delayed' end
  local now_s = fmt('%d', now)
  redis.call('HSET', base .. 'job:' .. id, 'payload', payload, 'prio', prio, 'state', state, 'attempts', '0',
             'max', maxa, 'created', now_s, 'unique', uniq, 'hist', state .. '@' .. now_s .. ';')
  if uniq ~= '' then redis.call('HSET', KEYS[9], uniq, id) end
  redis.call('HINCRBY', KEYS[7], 'enqueued', 1)
  if delay > 0 then redis.call('ZADD', KEYS[4], fmt('%d', now + delay), id) else push_ready(id, prio, false, now) end
  return id, 1
end
)lua";

// A dead job back to the tail of its ready list, attempts and the uncounted budget reset, its
// history kept; counted as requeued. false (the job stays dead) when it is not in the dead list,
// or its record has no priority (reserve would bury it again at once). Needs hist, push_ready.
constexpr const char* kRevive = R"lua(
local function revive(id, now)
  local jk = base .. 'job:' .. id
  local prio = redis.call('HGET', jk, 'prio')
  if not prio or redis.call('LREM', KEYS[6], 1, id) == 0 then return false end
  redis.call('HSET', jk, 'state', 'ready', 'attempts', '0', 'uncounted', '0')
  redis.call('HDEL', jk, 'burial', 'finished')
  redis.call('HINCRBY', KEYS[7], 'requeued', 1)
  hist(id, 'requeued@' .. fmt('%d', now))
  push_ready(id, prio, false, now)
  return true
end
)lua";

// "id:serial" -> id
constexpr const char* kTokenId = R"lua(
local function token_id(tok) return string.match(tok, '^(.*):%d+$') end
)lua";

}  // namespace

redis::Script compose(std::initializer_list<Part> parts, const char* body) {
  std::string src = kBase;
  for (Part p : parts) {
    switch (p) {
      case Part::now: src += kNow; break;
      case Part::hist: src += kHist; break;
      case Part::bury: src += kBury; break;
      case Part::lease: src += kLease; break;
      case Part::push_ready: src += kPushReady; break;
      case Part::promote: src += kPromote; break;
      case Part::enqueue: src += kEnqueue; break;
      case Part::token_id: src += kTokenId; break;
      case Part::revive: src += kRevive; break;
    }
  }
  src += body;
  return redis::Script(std::move(src));
}

// ARGV: base payload prio delay_ms unique max_attempts -> {id, created(0|1)}
const redis::Script& enqueue() {
  static const redis::Script s = compose({Part::now, Part::hist, Part::bury, Part::lease, Part::push_ready, Part::enqueue}, R"lua(
local id, created = enqueue_job(ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5], ARGV[6], now_ms())
return {id, created}
)lua");
  return s;
}

// Ack a batch, then reserve up to `want` jobs — one round trip per batch.
// ARGV: base worker lease_ms want max_payload was_idle idle_ttl_ms token*
//   was_idle=1: the caller registered as idle in its previous call; deregister it, collect a job
//               handed to its inbox meanwhile, and promote due delayed jobs.
//   idle_ttl_ms>0 and nothing reserved: register as idle until now + idle_ttl_ms.
// -> {acked, reserved, next_due_ms or -1, registered_idle(0|1), (id token attempt max prio payload)*}
const redis::Script& reserve() {
  static const redis::Script s = compose({Part::now, Part::hist, Part::bury, Part::lease, Part::push_ready, Part::promote}, R"lua(
local worker, lease, want, maxp = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local was_idle, idle_ttl = ARGV[6] == '1', tonumber(ARGV[7])
local now = now_ms()
local now_s = fmt('%d', now)
local acked = 0
for i = 8, #ARGV do
  local tok = ARGV[i]
  if redis.call('ZREM', KEYS[5], tok) == 1 or redis.call('ZREM', handed_set, tok) == 1 then
    local id = string.match(tok, '^(.*):%d+$')
    redis.call('HSET', base .. 'job:' .. id, 'state', 'done', 'finished', now_s)
    acked = acked + 1
  end
end
if acked > 0 then redis.call('HINCRBY', KEYS[7], 'acked', acked) end
local out = {acked, 0, -1, 0}
local got = 0
local function emit(j)
  for k = 1, 6 do out[#out + 1] = j[k] end
  got = got + 1
end
if was_idle then
  redis.call('ZREM', KEYS[8], ARGV[3] .. '|' .. ARGV[5] .. '|' .. worker)
  local inbox = base .. 'inbox:' .. worker
  local handed = redis.call('LPOP', inbox, 100)
  if handed then
    -- an entry is "id\ntoken\nattempt\nmax\nprio\npayload" (see push_ready)
    for _, enc in ipairs(handed) do
      local f, pos = {}, 1
      for k = 1, 5 do
        local nl = string.find(enc, '\n', pos, true)
        f[k] = string.sub(enc, pos, nl - 1)
        pos = nl + 1
      end
      -- collected: its lease moves from the hand-off set to active, deadline kept
      local deadline = redis.call('ZSCORE', handed_set, f[2])
      if deadline then
        redis.call('ZREM', handed_set, f[2])
        redis.call('ZADD', KEYS[5], deadline, f[2])
      end
      emit({f[1], f[2], tonumber(f[3]), tonumber(f[4]), f[5], string.sub(enc, pos)})
    end
  end
end
-- a job collected from the inbox was counted as reserved when it was handed over
local handed = got
-- idle or fresh callers promote due delayed jobs; busy workers leave it to the reaper's tick
if want > 0 and (was_idle or #ARGV < 8) then promote(now) end
-- paused by an operator: acks and jobs already handed over go through, nothing new is reserved
-- and nobody registers as idle (so nothing is handed over either)
if want > 0 and redis.call('EXISTS', base .. 'paused') == 1 then
  out[2] = got
  return out
end
while got < want do
  local popped = redis.call('LMPOP', 3, KEYS[1], KEYS[2], KEYS[3], 'LEFT', 'COUNT', want - got)
  if not popped then break end
  for _, id in ipairs(popped[2]) do
    local f, why = leasable(id, maxp)
    if f then emit(lease_job(id, f, worker, lease, now, KEYS[5])) else bury(id, now, why) end
  end
end
out[2] = got
if got > handed then redis.call('HINCRBY', KEYS[7], 'reserved', got - handed) end
if got == 0 and want > 0 then
  if idle_ttl > 0 then
    redis.call('ZADD', KEYS[8], fmt('%d', now + idle_ttl), ARGV[3] .. '|' .. ARGV[5] .. '|' .. worker)
    out[4] = 1
  end
  local first = redis.call('ZRANGE', KEYS[4], 0, 0, 'WITHSCORES')
  if first[2] then out[3] = math.max(0, tonumber(first[2]) - now) end
end
return out
)lua");
  return s;
}

// ARGV: base lease_ms token* -> {1|0 per token}: 0 means the lease is no longer ours
const redis::Script& heartbeat() {
  static const redis::Script s = compose({Part::now}, R"lua(
local now, lease = now_ms(), tonumber(ARGV[2])
local out = {}
for i = 3, #ARGV do
  if redis.call('ZSCORE', KEYS[5], ARGV[i]) then
    redis.call('ZADD', KEYS[5], 'XX', fmt('%d', now + lease), ARGV[i])
    out[#out + 1] = 1
  elseif redis.call('ZREM', handed_set, ARGV[i]) == 1 then
    -- taken from the inbox by BLPOP: the first heartbeat moves the lease to active
    redis.call('ZADD', KEYS[5], fmt('%d', now + lease), ARGV[i])
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
)lua");
  return s;
}

// ARGV: base token reason how(0 transient|1 permanent|2 unavailable|3 bury with the reason as
//   given) delay_ms max_uncounted
//   -> 0 lease lost | 1 retry scheduled | 2 dead | 3 retry scheduled, attempt not counted
const redis::Script& fail() {
  static const redis::Script s = compose({Part::now, Part::hist, Part::bury, Part::token_id}, R"lua(
local tok, reason, permanent, delay = ARGV[2], ARGV[3], ARGV[4] == '1', tonumber(ARGV[5])
if redis.call('ZREM', KEYS[5], tok) == 0 and redis.call('ZREM', handed_set, tok) == 0 then return 0 end
local id = token_id(tok)
local jk = base .. 'job:' .. id
local now = now_ms()
local f = redis.call('HMGET', jk, 'attempts', 'max')
local attempts, maxa = tonumber(f[1]) or 0, tonumber(f[2]) or 1
redis.call('HSET', jk, 'error', reason)
-- unavailable (ARGV[4] == '2'): the attempt is handed back, up to ARGV[6] times per job; a
-- burial (a crash loop whose loss could not be recorded yet) always, or its order would be
-- left looking alive beside a dead job
if ARGV[4] == '2' and (redis.call('HINCRBY', jk, 'uncounted', 1) <= tonumber(ARGV[6]) or redis.call('HGET', jk, 'burial')) then
  redis.call('HSET', jk, 'state', 'failed', 'attempts', fmt('%d', math.max(0, attempts - 1)))
  redis.call('ZADD', KEYS[4], fmt('%d', now + delay), id)
  redis.call('HINCRBY', KEYS[7], 'uncounted', 1)
  hist(id, 'unavailable@' .. fmt('%d', now))
  return 3
end
if ARGV[4] == '3' then
  bury(id, now, reason)
  return 2
end
if permanent then
  bury(id, now, 'permanent failure: ' .. reason)
  return 2
end
if attempts >= maxa then
  bury(id, now, 'failed ' .. attempts .. ' of ' .. maxa .. ' attempts: ' .. reason)
  return 2
end
-- 'failed' = waiting in the delayed set for its retry
redis.call('HSET', jk, 'state', 'failed')
redis.call('ZADD', KEYS[4], fmt('%d', now + delay), id)
redis.call('HINCRBY', KEYS[7], 'retried', 1)
hist(id, 'failed@' .. fmt('%d', now))
return 1
)lua");
  return s;
}

// Hand a reserved job back untouched (graceful shutdown): front of its ready list (or straight
// to an idle worker), attempt not counted. ARGV: base token -> 1 | 0 lease lost
const redis::Script& release() {
  static const redis::Script s = compose({Part::now, Part::hist, Part::bury, Part::lease, Part::push_ready, Part::token_id}, R"lua(
local tok = ARGV[2]
if redis.call('ZREM', KEYS[5], tok) == 0 and redis.call('ZREM', handed_set, tok) == 0 then return 0 end
local id = token_id(tok)
local jk = base .. 'job:' .. id
local now = now_ms()
redis.call('HINCRBY', jk, 'attempts', -1)
redis.call('HSET', jk, 'state', 'ready')
redis.call('HINCRBY', KEYS[7], 'released', 1)
hist(id, 'released@' .. fmt('%d', now))
push_ready(id, redis.call('HGET', jk, 'prio'), true, now)
return 1
)lua");
  return s;
}

// Once per tick (the lock makes it one reaper per queue): return expired leases to the front of
// their ready list (without using an attempt when the job was never taken from a dead idle
// worker's inbox), send a crash loop (every attempt's worker lost) for burial, drop expired idle
// registrations, promote due delayed jobs (busy workers do not promote on every ack).
// ARGV: base holder tick_ms limit -> {redelivered, dead, sent_for_burial} or {-1, 0, 0} when
// another reaper holds this tick
const redis::Script& reap() {
  static const redis::Script s = compose({Part::now, Part::hist, Part::bury, Part::lease, Part::push_ready, Part::promote, Part::token_id}, R"lua(
if not redis.call('SET', KEYS[11], ARGV[2], 'NX', 'PX', ARGV[3]) then return {-1, 0, 0} end
local now = now_ms()
redis.call('ZREMRANGEBYSCORE', KEYS[8], '-inf', '(' .. fmt('%d', now))
local expired = {}
for _, set in ipairs({KEYS[5], handed_set}) do
  for _, tok in ipairs(redis.call('ZRANGEBYSCORE', set, '-inf', '(' .. fmt('%d', now), 'LIMIT', 0, ARGV[4])) do
    redis.call('ZREM', set, tok)
    expired[#expired + 1] = tok
  end
end
local redelivered, dead, burials = 0, 0, 0
for _, tok in ipairs(expired) do
  local id = token_id(tok)
  local jk = base .. 'job:' .. id
  local f = redis.call('HMGET', jk, 'prio', 'attempts', 'max', 'worker')
  local attempts, maxa = tonumber(f[2]) or 0, tonumber(f[3]) or 1
  -- Handed to an idle worker that died before taking it from its inbox: the worker never saw
  -- the job, so it goes back without using an attempt.
  local unclaimed = false
  if f[4] then
    local inbox = base .. 'inbox:' .. f[4]
    local head = id .. '\n' .. tok .. '\n'
    for _, e in ipairs(redis.call('LRANGE', inbox, 0, 15)) do
      if string.sub(e, 1, #head) == head then
        redis.call('LREM', inbox, 1, e)
        unclaimed = true
        break
      end
    end
  end
  if unclaimed then
    redis.call('HINCRBY', jk, 'attempts', -1)
    redis.call('HSET', jk, 'state', 'ready')
    redis.call('HINCRBY', KEYS[7], 'released', 1)
    hist(id, 'released@' .. fmt('%d', now))
    push_ready(id, f[1], true, now)
  elseif attempts >= maxa then
    local why = 'lease expired on attempt ' .. math.min(attempts, maxa) .. ' of ' .. maxa .. ': worker lost (crash loop)'
    if redis.call('HGET', jk, 'burial') then
      -- its burial delivery (below) lost its worker too: nobody can record the loss, bury it here
      bury(id, now, why .. '; its burial delivery was lost too')
      dead = dead + 1
    else
      -- Not run again: delivered once more, with attempt > max, so that a worker records the
      -- loss where the job's owner sees it (the order marked dead) before it dead-letters the job.
      redis.call('HSET', jk, 'state', 'ready', 'burial', '1', 'error', why)
      redis.call('HINCRBY', KEYS[7], 'burials', 1)
      hist(id, 'burial@' .. fmt('%d', now))
      push_ready(id, f[1], true, now)
      burials = burials + 1
    end
  else
    redis.call('HSET', jk, 'state', 'ready')
    redis.call('HINCRBY', KEYS[7], 'redelivered', 1)
    hist(id, 'redelivered@' .. fmt('%d', now))
    push_ready(id, f[1], true, now)
    redelivered = redelivered + 1
  end
end
promote(now)
return {redelivered, dead, burials}
)lua");
  return s;
}

// Fire a periodic job at most once per period, whoever calls. KEYS[12] = periodic:<name>.
// ARGV: base expected_next new_next payload prio max_attempts
// -> {0, next, now} initialised | {-1, next, now} expected was stale | {-2, next, now} not due
//    | {1, job_id, now} fired
const redis::Script& periodic() {
  static const redis::Script s = compose({Part::now, Part::hist, Part::bury, Part::lease, Part::push_ready, Part::enqueue}, R"lua(
local now = now_ms()
local cur = redis.call('HGET', KEYS[12], 'next')
if not cur then
  redis.call('HSET', KEYS[12], 'next', ARGV[3])
  return {0, ARGV[3], fmt('%d', now)}
end
if cur ~= ARGV[2] then return {-1, cur, fmt('%d', now)} end
if now < tonumber(cur) then return {-2, cur, fmt('%d', now)} end
redis.call('HSET', KEYS[12], 'next', ARGV[3])
redis.call('HINCRBY', KEYS[12], 'fired', 1)
local id = enqueue_job(ARGV[4], ARGV[5], 0, '', ARGV[6], now)
redis.call('HSET', base .. 'job:' .. id, 'periodic_slot', cur)  -- which period this job is for
return {1, id, fmt('%d', now)}
)lua");
  return s;
}

// The operator's scripts (admin.h). Each is counted in the stats hash and kept in the history.

// Dead jobs back to ready (revive). ARGV: base id* -> {requeued id*} (an id not in the dead
// list is skipped: requeue is idempotent)
const redis::Script& requeue_dead() {
  static const redis::Script s =
      compose({Part::now, Part::hist, Part::bury, Part::lease, Part::push_ready, Part::revive}, R"lua(
local now = now_ms()
local out = {}
for i = 2, #ARGV do
  if revive(ARGV[i], now) then out[#out + 1] = ARGV[i] end
end
return out
)lua");
  return s;
}

// Waiting jobs (ready and delayed) deleted with their unique keys; in flight and dead stay. At
// most ARGV[2] per call, so that a large backlog never blocks Redis for long: the caller calls
// again until 0. ARGV: base limit -> purged count
const redis::Script& purge() {
  static const redis::Script s = compose({}, R"lua(
local limit = tonumber(ARGV[2])
local n = 0
local function drop(id)
  local jk = base .. 'job:' .. id
  local u = redis.call('HGET', jk, 'unique')
  if u and u ~= '' and redis.call('HGET', KEYS[9], u) == id then redis.call('HDEL', KEYS[9], u) end
  redis.call('DEL', jk)
  n = n + 1
end
for k = 1, 3 do
  if n >= limit then break end
  local ids = redis.call('LRANGE', KEYS[k], 0, limit - n - 1)
  for _, id in ipairs(ids) do drop(id) end
  if #ids > 0 then redis.call('LTRIM', KEYS[k], #ids, -1) end
end
if n < limit then
  local ids = redis.call('ZRANGE', KEYS[4], 0, limit - n - 1)
  for _, id in ipairs(ids) do drop(id) end
  if #ids > 0 then redis.call('ZREM', KEYS[4], unpack(ids)) end
end
if n > 0 then redis.call('HINCRBY', KEYS[7], 'purged', n) end
return n
)lua");
  return s;
}

// Pause: no reservation and no idle registration until resume (see reserve); registrations
// already made are dropped so that nothing is handed over. ARGV: base 1|0
const redis::Script& pause() {
  static const redis::Script s = compose({Part::now}, R"lua(
if ARGV[2] == '1' then
  redis.call('SET', base .. 'paused', fmt('%d', now_ms()))
  redis.call('DEL', KEYS[8])
  return 1
end
return redis.call('DEL', base .. 'paused')
)lua");
  return s;
}

// A worker says it is alive: workers ZSET (id -> last beat, server ms) and worker:<id> HASH
// (job, beat, interval, started). Registrations silent for an hour are dropped.
// KEYS (its own, not the queue's): workers, worker:<id>. ARGV: base worker job interval_ms leaving(1|0)
const redis::Script& presence() {
  static const redis::Script s = compose({Part::now}, R"lua(
local now = now_ms()
local wk = KEYS[2]
if ARGV[5] == '1' then
  redis.call('ZREM', KEYS[1], ARGV[2])
  redis.call('DEL', wk)
  return 1
end
redis.call('ZADD', KEYS[1], fmt('%d', now), ARGV[2])
redis.call('HSET', wk, 'job', ARGV[3], 'beat', fmt('%d', now), 'interval', ARGV[4])
redis.call('HSETNX', wk, 'started', fmt('%d', now))
redis.call('PEXPIRE', wk, 3600000)
for _, w in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. fmt('%d', now - 3600000), 'LIMIT', 0, 100)) do
  redis.call('ZREM', KEYS[1], w)
  redis.call('DEL', base .. 'worker:' .. w)  -- expired by now anyway (PEXPIRE above)
end
return 1
)lua");
  return s;
}

std::size_t key_count(const redis::Script& script) {
  if (&script == &requeue_dead() || &script == &purge()) return 9;  // up to unique
  if (&script == &pause()) return 8;                                // up to idle
  if (&script == &presence()) return 0;  // its own KEYS: see Queue::announce
  if (&script == &reserve() || &script == &release()) return 8;   // up to idle
  if (&script == &heartbeat()) return 5;                          // up to active
  if (&script == &fail()) return 7;                               // up to stats
  if (&script == &enqueue()) return 10;                           // up to seq
  if (&script == &reap()) return 11;                              // up to the reaper lock
  return 11;  // periodic: all the queue keys; Queue appends periodic:<name> as KEYS[12]
}

}  // namespace qsim::queue::scripts
