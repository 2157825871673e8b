// BullMQ and a SIGKILLed worker (moveStalledJobsToWait-9.lua): the job stays in `active` under a lock nobody renews;
// once that lock has expired (lockDuration), a stalled check of any live worker (one per stalledInterval for the
// queue) that finds the job still in the `stalled` set marked by the check before moves it back to wait, or, when it
// has stalled more than maxStalledCount times, flags it so that the next pickup fails it unrecoverably.
//
// qsim's BullMQ adapter (protocol: system/frameworks/README.md).
// Usage: node qsim_bullmq.js handoff | worker | bench-fill N | bench-pickup N RATE
// Keys are BullMQ's default prefix 'bull' with the queue QSIM_QUEUE: bull:<QSIM_QUEUE>:* (a name without ':').
'use strict';
const http = require('node:http');
const crypto = require('node:crypto');
const fs = require('node:fs');
const { Queue, Worker, UnrecoverableError } = require('bullmq');
const IORedis = require('ioredis'); // bullmq's own dependency (hoisted by npm ci)

const env = process.env, mode = process.argv[2];
const log = (...a) => console.error(`[qsim-bullmq ${mode} ${env.QSIM_WORKER_ID || ''}]`, ...a);
const need = (name) => { if (!env[name]) throw new Error(`${name} is not set`); return env[name]; };
const nowUs = () => Math.round((performance.timeOrigin + performance.now()) * 1000); // Unix epoch, microseconds

// QSIM_CONFIG: BullMQ's options under qsim's names; an absent key keeps BullMQ's default. Unknown keys are refused;
// milliseconds are rounded to whole ones (Redis PX takes integers: the lock and the stalled-check key).
const KEYS = ['concurrency', 'lock_duration_ms', 'stalled_interval_ms', 'max_stalled_count', 'attempts',
  'backoff_type', 'backoff_delay_ms', 'drain_delay_s'];
const cfg = JSON.parse(env.QSIM_CONFIG || '{}');
if (!cfg || typeof cfg !== 'object' || Array.isArray(cfg)) throw new Error('QSIM_CONFIG must be a JSON object');
for (const k of Object.keys(cfg)) {
  if (!KEYS.includes(k)) throw new Error(`QSIM_CONFIG: unknown key '${k}' (known: ${KEYS.join(', ')})`);
  if (k === 'backoff_type') continue;
  const whole = ['concurrency', 'max_stalled_count', 'attempts'].includes(k);
  if (!Number.isFinite(cfg[k]) || cfg[k] < 0 || (whole && !Number.isInteger(cfg[k])))
    throw new Error(`QSIM_CONFIG.${k} must be a non-negative ${whole ? 'integer' : 'number'}`);
  if (k.endsWith('_ms')) cfg[k] = Math.round(cfg[k]);
}
if (cfg.backoff_type !== undefined && !['fixed', 'exponential'].includes(cfg.backoff_type))
  throw new Error("QSIM_CONFIG.backoff_type must be 'fixed' or 'exponential'");
const defined = (o) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
const QUEUE = need('QSIM_QUEUE');
const STAGE_MS = Number(env.QSIM_STAGE_TIMEOUT_S || 10) * 1000; // also the hand-off's bound on one add

// ioredis options for QSIM_REDIS_URL: redis://[user:password@]host:port[/db], or the failover form
// redis+sentinel://HOST:PORT[,HOST:PORT...]/MASTERNAME as ioredis's own Sentinel support (SentinelConnector): every
// (re)connect asks a Sentinel for the primary and checks its role, so after a failover the next reconnect
// (retryStrategy) reaches the promoted one.
function redisOptions(extra) {
  const url = need('QSIM_REDIS_URL');
  if (url.startsWith('redis+sentinel:')) {
    const m = /^redis\+sentinel:\/\/([^/]+)\/([^/]+)$/.exec(url);
    const sentinels = m ? m[1].split(',').map((a) => {
      const i = a.lastIndexOf(':'), port = Number(a.slice(i + 1));
      return { host: a.slice(0, i), port: i > 0 && /^\d+$/.test(a.slice(i + 1)) ? port : NaN };
    }) : [];
    if (!sentinels.length || sentinels.some((s) => !s.host || Number.isNaN(s.port)))
      throw new Error(`QSIM_REDIS_URL: want redis+sentinel://HOST:PORT[,HOST:PORT...]/MASTERNAME, got ${url}`);
    // The Sentinels' own connections: connectTimeout (as given, else ioredis's 10 s) and this command timeout.
    return defined(Object.assign({ sentinels, name: m[2], role: 'master', sentinelCommandTimeout: 1000 }, extra));
  }
  const u = new URL(url);
  return defined(Object.assign({
    host: u.hostname || '127.0.0.1', port: Number(u.port || 6379),
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    db: u.pathname.length > 1 ? Number(u.pathname.slice(1)) : undefined,
  }, extra));
}

// GET /health answers 200 once `ready()` is true; the hand-off server also routes POST /enqueue here.
function serve(port, ready, enqueue) {
  const server = http.createServer((req, res) => {
    const reply = (status, obj) => res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(obj));
    const path = (req.url || '').split('?')[0];
    if (req.method === 'GET' && path === '/health') return ready() ? reply(200, { status: 'ok' }) : reply(503, { status: 'starting' });
    if (!(enqueue && req.method === 'POST' && path === '/enqueue')) return reply(404, { error: 'not found' });
    let body = '', size = 0;
    req.setEncoding('utf8').on('data', (c) => { size += c.length; if (size <= 65536) body += c; }).on('error', () => {});
    req.on('end', () => {
      let id; // stays undefined for a malformed body: answered 400 below
      try { id = JSON.parse(body).order_id; } catch (e) { /* ignored */ }
      if (size > 65536 || typeof id !== 'string' || id === '') return reply(400, { error: 'body must be {"order_id": "<non-empty string>"}' });
      enqueue(id).then((jobId) => reply(200, { job_id: String(jobId) }),
        (e) => { log('enqueue', id, 'failed:', e.message); reply(503, { error: String(e.message) }); });
    });
  });
  server.on('error', (e) => { log(`port ${port}:`, e.message); process.exit(1); });
  server.listen(Number(port), '127.0.0.1');
}

function handoff() {
  // Fail fast when Redis is away (503, the intake delivers again) instead of queueing the add offline, and never
  // resend an unanswered add after a reconnect. An add that times out (Redis slow, or paused) may still run later:
  // a job for a 503, i.e. a duplicate delivery once the intake hands the order off again.
  const queue = new Queue(QUEUE, { connection: redisOptions({ enableOfflineQueue: false, autoResendUnfulfilledCommands: false }) });
  queue.on('error', (e) => log('queue error:', e.message));
  const backoff = cfg.backoff_type || cfg.backoff_delay_ms !== undefined
    ? { type: cfg.backoff_type || 'fixed', delay: cfg.backoff_delay_ms || 0 } : undefined;
  const jobOpts = defined({ attempts: cfg.attempts, backoff, removeOnComplete: true });
  let ready = false;
  const enqueue = async (orderId) => {
    // Before the first connection an add would wait for it and could run after its 503: refuse it outright.
    if (!ready) throw new Error('not connected to Redis yet');
    let timer;
    const late = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`enqueue: no answer from Redis in ${STAGE_MS} ms`)), STAGE_MS);
    });
    try { return (await Promise.race([queue.add('order', { order_id: orderId }, jobOpts), late])).id; } finally { clearTimeout(timer); }
  };
  serve(need('QSIM_HANDOFF_PORT'), () => ready, enqueue);
  if (env.QSIM_HEALTH_PORT && env.QSIM_HEALTH_PORT !== env.QSIM_HANDOFF_PORT) serve(env.QSIM_HEALTH_PORT, () => ready);
  queue.waitUntilReady().then(() => { ready = true; log('ready: queue', QUEUE, 'job options', JSON.stringify(jobOpts)); },
    (e) => { log('redis:', e.message); process.exit(1); });
  return () => queue.close();
}

// One HTTP POST with an overall deadline; status 0 is no answer (refused, reset, timed out).
function post(base, path, body, headers = {}) {
  return new Promise((resolve) => {
    const done = (r) => { clearTimeout(timer); resolve(r); };
    const req = http.request(new URL(path, base), { method: 'POST', agent: false, headers: Object.assign(
      { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) }, headers) }, (res) => {
      let data = '';
      res.setEncoding('utf8').on('data', (c) => { data += c; });
      res.on('end', () => done({ status: res.statusCode, body: data }));
      res.on('error', (e) => done({ status: 0, error: e.message }));
    });
    const timer = setTimeout(() => req.destroy(new Error(`timed out after ${STAGE_MS} ms`)), STAGE_MS);
    req.on('error', (e) => done({ status: 0, error: e.message }));
    req.end(body);
  });
}

// 2xx: done; no answer, 5xx or 429: transient (a plain Error, retried per attempts/backoff); else permanent.
async function stage(name, base, path, body, headers) {
  const r = await post(base, path, body, headers);
  if (r.status >= 200 && r.status < 300) return;
  const what = `${name}: ${r.status ? `HTTP ${r.status}${name === 'finalize' ? ` ${r.body}` : ''}` : r.error}`;
  throw r.status === 0 || r.status >= 500 || r.status === 429 ? new Error(what) : new UnrecoverableError(what);
}

function loadSecret() {
  if (env.QSIM_FINALIZE_SECRET) return env.QSIM_FINALIZE_SECRET;
  const line = fs.readFileSync(need('QSIM_FINALIZE_SECRET_FILE'), 'utf8').split('\n')[0].replace(/[\r ]+$/, '');
  if (!line) throw new Error('the finalize secret file is empty'); return line;
}

function worker() {
  const BASE = need('QSIM_STORE_BASE'), COMPONENT = need('QSIM_COMPONENT'), WORKER_ID = need('QSIM_WORKER_ID');
  const WORLD = need('QSIM_WORLD_URL'), FINALIZE = need('QSIM_FINALIZE_URL'), SECRET = loadSecret();
  // The task store's own connection, with the C++ store's timeouts: a store error is transient.
  const store = new IORedis(redisOptions({ connectTimeout: 1000, commandTimeout: 2000, maxRetriesPerRequest: 1 }));
  store.on('error', () => {}); // surfaced by the failing command
  store.defineCommand('qsimMove', { numberOfKeys: 2, lua: need('QSIM_STORE_TRANSITION') }); // EVALSHA, EVAL fallback
  const storeErr = (e) => { throw new Error(`store: ${e.message}`); };
  const move = (id, from, to, error = '') => store.qsimMove(`${BASE}order:${id}`, `${BASE}store_queries`,
    BASE, COMPONENT, id, to, `${WORKER_ID}#${process.pid}`, error, ...from).then((r) => r === 1, storeErr);
  const readStatus = (id) => store.multi().hget(`${BASE}order:${id}`, 'status').hincrby(`${BASE}store_queries`, COMPONENT, 1)
    .exec().then((r) => { if (r[0][0] || r[1][0]) throw r[0][0] || r[1][0]; return r[0][1]; }).catch(storeErr);
  const world = (api, id) => stage(api, WORLD, `/api/${api}`, JSON.stringify({ order_id: id, key: `${api}:${id}` }));
  const finalize = (id) => {
    const body = JSON.stringify({ order_id: id }), ts = String(Math.floor(Date.now() / 1000));
    const sig = crypto.createHmac('sha256', SECRET).update(`${ts}.${body}`).digest('hex');
    return stage('finalize', FINALIZE, '/webhooks/finalize', body, { 'X-Qsim-Timestamp': ts, 'X-Qsim-Signature': `sha256=${sig}` });
  };

  // The order job (README "What the job must do"); the return value is only BullMQ's job result.
  async function processOrder(job) {
    const id = job.data && job.data.order_id;
    if (typeof id !== 'string' || !id) throw new UnrecoverableError('job without an order_id');
    for (let look = 0; ; ++look) {
      const status = await readStatus(id);
      if (status === null) throw new UnrecoverableError(`no order '${id}' in the task store`);
      if (status === 'completed') return 'already completed'; // redelivered after finalize
      if (status === 'finalizing') { await finalize(id); return 'finalized'; } // never pulled back from finalize
      if (await move(id, ['paid', 'processing', 'downloading', 'uploading'], 'processing')) break;
      if (look === 1) throw new UnrecoverableError(`order '${id}' is ${status}, not payable work`);
    }
    // A move refused here: another delivery of the order took it over; stop without an error.
    if (!(await move(id, ['processing'], 'downloading'))) return 'superseded';
    await world('download', id);
    if (!(await move(id, ['downloading'], 'uploading'))) return 'superseded';
    await world('upload', id);
    if (!(await move(id, ['uploading'], 'finalizing'))) return 'superseded';
    await finalize(id);
    return 'finalized';
  }

  // QSIM_BENCH=1 (README "Benchmark mode"): the no-op job, which records its pickup delay and counts itself.
  const benchJob = (job) => {
    const m = store.multi(), sent = job.data && job.data.enqueued_us;
    if (sent > 0) m.rpush(`${QUEUE}:bench:pickup_us`, nowUs() - sent);
    return m.incr(`${QUEUE}:bench:done`).exec().then(() => 'bench');
  };
  const w = new Worker(QUEUE, env.QSIM_BENCH === '1' ? benchJob : processOrder, defined({
    connection: redisOptions(), name: WORKER_ID, concurrency: cfg.concurrency, lockDuration: cfg.lock_duration_ms,
    stalledInterval: cfg.stalled_interval_ms, maxStalledCount: cfg.max_stalled_count, drainDelay: cfg.drain_delay_s,
  }));
  w.on('error', (e) => log('worker error:', e.message));
  // 'failed' is emitted after moveToFailed, for a retry too: only a job that BullMQ gave up on (last attempt,
  // UnrecoverableError, or the stalled limit, which fails as UnrecoverableError at the next pickup) kills the order.
  // A stale delivery whose lock was taken over never gets here: its moveToFailed is refused for the lock.
  const IN_FLIGHT = ['paid', 'processing', 'downloading', 'uploading', 'finalizing'];
  w.on('failed', (job, err) => {
    const id = job && job.data && job.data.order_id;
    const final = job && (job.finishedOn || (err && err.name === 'UnrecoverableError') || job.attemptsMade >= (job.opts.attempts || 1));
    if (typeof id !== 'string' || !final) return;
    (async () => { // a few tries: the store may be briefly unreachable
      for (let i = 0; i < 5; ++i) {
        try { return await move(id, IN_FLIGHT, 'dead', String((err && err.message) || err)); }
        catch (e) { log('dead', id, e.message); await new Promise((r) => setTimeout(r, 500)); }
      }
    })();
  });
  let ready = false;
  serve(need('QSIM_HEALTH_PORT'), () => ready);
  w.waitUntilReady().then(() => { ready = true; log('ready: queue', QUEUE, 'options', JSON.stringify(cfg)); },
    (e) => { log('redis:', e.message); process.exit(1); });
  return () => w.close().then(() => store.quit());
}

// bench-fill N: N no-op jobs, one add each; bench-pickup N RATE: the same at RATE a second, carrying their enqueue time.
function bench() {
  const n = Number(process.argv[3]), rate = mode === 'bench-pickup' ? Number(process.argv[4]) : 0;
  if (!Number.isInteger(n) || n < 0 || !(rate >= 0) || (mode === 'bench-pickup' && !(rate > 0))) usage();
  const queue = new Queue(QUEUE, { connection: redisOptions() });
  (async () => {
    await queue.waitUntilReady();
    const start = performance.now();
    for (let i = 0; i < n; ++i) {
      const wait = rate ? start + (i * 1000) / rate - performance.now() : 0;
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      await queue.add('bench', rate ? { enqueued_us: nowUs() } : {}, { removeOnComplete: true });
    }
    await queue.close();
  })().then(() => process.exit(0), (e) => { log(e.message); process.exit(1); });
  return () => queue.close();
}

process.on('unhandledRejection', (e) => log('unhandled:', e && e.message));
const modes = { handoff, worker, 'bench-fill': bench, 'bench-pickup': bench };
function usage() { console.error('usage: node qsim_bullmq.js handoff|worker|bench-fill N|bench-pickup N RATE'); process.exit(2); }
if (!modes[mode]) usage();
const stop = modes[mode]();
// SIGTERM/SIGINT: close gracefully (a worker waits for its jobs in flight), but exit after 10 s regardless.
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => {
  setTimeout(() => process.exit(0), 10000).unref();
  stop().catch((e) => log('close:', e.message)).finally(() => process.exit(0));
});
