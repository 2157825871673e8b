"""Shared by the RQ and Celery adapters (system/frameworks/README.md, which this follows exactly):
the environment, the order job, mark_dead, and the health and hand-off HTTP servers.
Logs go to stderr only; the finalize secret is never logged."""
import hashlib
import hmac
import http.client
import json
import logging
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import redis
import redis.sentinel

log = logging.getLogger("qsim")
IN_FLIGHT = ("paid", "processing", "downloading", "uploading", "finalizing")
RESTARTABLE = ("paid", "processing", "downloading", "uploading")


class TransientError(Exception):
    """5xx or 429, a timeout, a refused connection, an unreachable store: the framework may retry."""


class PermanentError(Exception):
    """No order, not payable work, any other non-2xx: not worth retrying."""


def env(name, default=None):
    v = os.environ.get(name)
    return v if v else default


def config():
    return json.loads(env("QSIM_CONFIG", "{}"))


def setup_logging(tag):
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format=f"%(asctime)s {tag} %(name)s %(levelname)s: %(message)s")


def main(framework, handoff, worker, bench):
    """The adapter's command line: handoff | worker | bench-fill N | bench-pickup N RATE."""
    commands = {"handoff": (handoff, 0), "worker": (worker, 0), "bench-fill": (bench, 1), "bench-pickup": (bench, 2)}
    if len(sys.argv) < 2 or sys.argv[1] not in commands or len(sys.argv) != 2 + commands[sys.argv[1]][1]:
        sys.exit(f"usage: qsim_{framework}.py handoff | worker | bench-fill N | bench-pickup N RATE")
    # A handler on the root logger also keeps RQ from adding its own (which writes INFO to stdout).
    setup_logging(os.environ.get("QSIM_WORKER_ID", f"{framework}-{sys.argv[1]}"))
    commands[sys.argv[1]][0]()


def finalize_secret():
    if env("QSIM_FINALIZE_SECRET"):
        return env("QSIM_FINALIZE_SECRET")
    path = env("QSIM_FINALIZE_SECRET_FILE")
    if not path:
        raise RuntimeError("set QSIM_FINALIZE_SECRET or QSIM_FINALIZE_SECRET_FILE")
    with open(path) as f:  # the first line, trailing '\r' and ' ' dropped (as security::load_secret)
        line = f.readline().rstrip("\n").rstrip("\r ")
    if not line:
        raise RuntimeError("the secret file named by QSIM_FINALIZE_SECRET_FILE is empty")
    return line


SENTINEL_SCHEME = "redis+sentinel://"


def sentinel_url(url):
    """QSIM_REDIS_URL in its failover form redis+sentinel://HOST:PORT[,HOST:PORT...]/MASTERNAME:
    ([(host, port), ...], master name). None for any other URL (redis://..., used as it is)."""
    if not url.startswith("redis+sentinel:"):
        return None
    hosts, _, name = url[len(SENTINEL_SCHEME):].partition("/")
    try:
        sentinels = [(h, int(p)) for h, _, p in (a.rpartition(":") for a in hosts.split(","))]
    except ValueError:
        sentinels = []
    if not (url.startswith(SENTINEL_SCHEME) and name and "/" not in name and sentinels and all(h for h, _ in sentinels)):
        raise ValueError(f"QSIM_REDIS_URL: want {SENTINEL_SCHEME}HOST:PORT[,HOST:PORT...]/MASTERNAME, got {url!r}")
    return sentinels, name


def redis_client(**kwargs):
    """A redis-py client for QSIM_REDIS_URL. In the Sentinel form, redis-py's own Sentinel support: every
    new connection asks a Sentinel for the primary (SentinelManagedConnection), and an idle pooled
    connection is dropped once the Sentinels name another one, so after a failover the next command
    (or the framework's retry of it) reaches the promoted primary."""
    url = os.environ["QSIM_REDIS_URL"]
    sentinel = sentinel_url(url)
    if sentinel is None:
        return redis.Redis.from_url(url, **kwargs)
    # Own short timeouts for the Sentinels (else redis-py takes kwargs' socket_* ones, or none at all).
    return redis.sentinel.Sentinel(sentinel[0], sentinel_kwargs={"socket_connect_timeout": 1, "socket_timeout": 1}) \
        .master_for(sentinel[1], **kwargs)


_store = None  # per process; redis-py drops inherited connections after a fork (pid check)


def _redis():
    global _store
    if _store is None:  # the C++ store's timeouts: connect 1 s, command 2 s
        r = redis_client(socket_connect_timeout=1, socket_timeout=2)
        _store = (r, r.register_script(os.environ["QSIM_STORE_TRANSITION"]))  # EVALSHA, EVAL fallback
    return _store


def _move(order_id, to, frm, error=""):
    r, script = _redis()
    base = os.environ["QSIM_STORE_BASE"]
    return script(keys=[f"{base}order:{order_id}", f"{base}store_queries"],
                  args=[base, env("QSIM_COMPONENT", "worker"), order_id, to, env("QSIM_WORKER_ID", "") + "#" + str(os.getpid()),
                        error, *frm]) == 1


def _status(order_id):
    r, _ = _redis()
    base = os.environ["QSIM_STORE_BASE"]
    p = r.pipeline(transaction=False)
    p.hget(f"{base}order:{order_id}", "status").hincrby(f"{base}store_queries", env("QSIM_COMPONENT", "worker"), 1)
    status = p.execute()[0]
    return status.decode() if status is not None else None


def _post(url, path, body, headers=None):
    u = urlsplit(url)
    what = path.rsplit("/", 1)[-1]
    # http.client, not urllib: no proxy from the environment. The timeout bounds each socket operation.
    conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=float(env("QSIM_STAGE_TIMEOUT_S", "10")))
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json", **(headers or {})})
        resp = conn.getresponse()
        text = resp.read().decode(errors="replace")[:200]
    except (OSError, http.client.HTTPException) as e:  # refused, reset, timeout (socket.timeout is OSError)
        raise TransientError(f"{what}: {type(e).__name__}: {e}") from None
    finally:
        conn.close()
    if 200 <= resp.status < 300:
        return
    transient = resp.status >= 500 or resp.status == 429
    raise (TransientError if transient else PermanentError)(f"{what}: HTTP {resp.status} {text}")


def _finalize(order_id):
    body = json.dumps({"order_id": order_id}, separators=(",", ":")).encode()
    ts = str(int(time.time()))
    mac = hmac.new(finalize_secret().encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    _post(os.environ["QSIM_FINALIZE_URL"], "/webhooks/finalize", body,
          {"X-Qsim-Timestamp": ts, "X-Qsim-Signature": "sha256=" + mac})


def _run(order_id):
    for look in (0, 1):
        status = _status(order_id)
        if status is None:
            raise PermanentError(f"no order '{order_id}' in the task store")
        if status == "completed":
            return "completed"  # redelivered after finalize: done
        if status == "finalizing":  # the upload is done: never pull an order back from finalize
            _finalize(order_id)
            return "completed"
        if _move(order_id, "processing", RESTARTABLE):
            break
        if look == 1:  # read once more: it may just have moved on to finalizing
            raise PermanentError(f"order '{order_id}' is {status}, not payable work")
    for frm, to, api in (("processing", "downloading", "download"), ("downloading", "uploading", "upload"),
                         ("uploading", "finalizing", None)):
        if not _move(order_id, to, (frm,)):  # another delivery of this order took it over: stop, no error
            log.warning("order %s left %s meanwhile: another delivery has taken it over", order_id, frm)
            return "superseded"
        if api:
            body = json.dumps({"order_id": order_id, "key": f"{api}:{order_id}"}).encode()
            _post(os.environ["QSIM_WORLD_URL"], f"/api/{api}", body)
    _finalize(order_id)
    return "completed"


def run_order(order_id):
    """The job (README "What the job must do"). Raises TransientError or PermanentError."""
    try:
        return _run(order_id)
    except redis.RedisError as e:  # the store unreachable or timing out: transient, like the C++ job
        raise TransientError(f"store: {type(e).__name__}: {e}") from None


def mark_dead(order_id, error):
    """The framework gave up on the order's job: move it to dead from any in-flight status. Never raises."""
    try:
        moved = _move(order_id, "dead", IN_FLIGHT, str(error)[:500] or "gave up")
        log.warning("order %s: given up (%s)%s", order_id, error, "" if moved else "; not in flight, left as is")
    except Exception as e:
        log.error("order %s: could not mark it dead: %s", order_id, e)


def bench_job(enqueued_us=None):
    """The benchmark's no-op job (README "Benchmark mode"): the pickup delay, then one more done."""
    r, _ = _redis()
    q = os.environ["QSIM_QUEUE"]
    p = r.pipeline(transaction=False)
    if enqueued_us is not None:
        p.rpush(f"{q}:bench:pickup_us", time.time_ns() // 1000 - int(enqueued_us))
    p.incr(f"{q}:bench:done")
    p.execute()


def bench_enqueue(args, enqueue_fn):
    """`bench-fill N`: enqueue_fn(None) N times; `bench-pickup N RATE`: enqueue_fn(<now in Unix
    microseconds>) N times at a steady RATE per second. One framework call per job."""
    n = int(args[1])
    if args[0] == "bench-fill":
        for _ in range(n):
            enqueue_fn(None)
        return
    rate, t0 = float(args[2]), time.monotonic()
    for i in range(n):
        delay = t0 + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        enqueue_fn(time.time_ns() // 1000)


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _send(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self._send(*((200, {"status": "ok"}) if self.path.split("?")[0] == "/health" else (404, {"error": "not found"})))

    def do_POST(self):
        enqueue = getattr(self.server, "enqueue", None)
        if self.path != "/enqueue" or enqueue is None:
            return self._send(404, {"error": "not found"})
        try:
            n = int(self.headers.get("Content-Length") or 0)
            order_id = json.loads(self.rfile.read(n) if 0 < n <= 65536 else b"")["order_id"]
            if not isinstance(order_id, str) or not order_id:
                raise ValueError
        except Exception:
            return self._send(400, {"error": 'want a JSON body {"order_id": "<non-empty string>"}'})
        try:
            job_id = enqueue(order_id)
        except Exception as e:
            log.warning("enqueue %s failed: %s: %s", order_id, type(e).__name__, e)
            return self._send(503, {"error": f"{type(e).__name__}: {e}"})
        self._send(200, {"job_id": str(job_id)})


def _server(port, enqueue=None):
    srv = ThreadingHTTPServer(("127.0.0.1", int(port)), _Handler)
    srv.daemon_threads, srv.enqueue = True, enqueue
    # A forked child (RQ's work horse and scheduler, Celery's pool processes) must not keep the
    # listening socket: it would hold the port after its parent was killed.
    os.register_at_fork(after_in_child=srv.socket.close)
    return srv


_health = []


def start_health():
    """Answer GET /health on QSIM_HEALTH_PORT from a daemon thread (call once the process is ready)."""
    if env("QSIM_HEALTH_PORT") and not _health:
        _health.append(_server(env("QSIM_HEALTH_PORT")))
        threading.Thread(target=_health[0].serve_forever, daemon=True, name="health").start()


def serve_handoff(enqueue_fn):
    """The hand-off server on 127.0.0.1:QSIM_HANDOFF_PORT: POST /enqueue, GET /health. Never returns."""
    srv = _server(os.environ["QSIM_HANDOFF_PORT"], enqueue_fn)
    if env("QSIM_HEALTH_PORT") not in (None, os.environ["QSIM_HANDOFF_PORT"]):
        start_health()
    log.info("hand-off listening on 127.0.0.1:%s", os.environ["QSIM_HANDOFF_PORT"])
    srv.serve_forever()
