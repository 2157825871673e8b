#!/usr/bin/python3
"""Celery 5.2 (Redis broker) under qsim (system/frameworks/README.md):
    /usr/bin/python3 system/frameworks/celery/qsim_celery.py handoff | worker | bench-fill N | bench-pickup N RATE
(bench-fill and bench-pickup send the no-op task qsim.bench, which every worker knows, so a worker
started with QSIM_BENCH=1 runs it with nothing more to do).

SIGKILL mid-job, as read in /usr/lib/python3/dist-packages: a killed pool child is found by the
pool's maintain_pool (celery/concurrency/asynpool.py, a 5 s timer), whose on_job_process_lost fails
its job with WorkerLostError at once (no billiard worker_lost_wait); celery/worker/request.py
Request.on_failure then, by default (the message was acked when the child accepted it,
Request.on_accepted), fails the task for good (task_failure: marked dead here), and with acks_late +
task_reject_on_worker_lost rejects it with requeue, back at the head of the queue at once. A killed
worker (main process) loses its running task by default (already acked); with acks_late the task
stays in kombu's unacked hash and is redelivered only once older than visibility_timeout
(kombu/transport/redis.py QoS.restore_visible, at a consumer's start and then every ~100 s), like
the prefetched and countdown (eta) messages the killed worker held, whatever acks_late says.

QSIM_CONFIG keys (Celery's defaults otherwise): concurrency (1 here), acks_late (false),
task_reject_on_worker_lost (false), visibility_timeout_s (3600), prefetch_multiplier (4),
max_retries (3), retry_backoff_s (0 = retry at once), retry_backoff_max_s (600), retry_jitter (false).
"""
import os
import random
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import qsim_order  # noqa: E402
from celery import Celery, signals  # noqa: E402

CFG = qsim_order.config()
QUEUE = os.environ["QSIM_QUEUE"]
WID = os.environ.get("QSIM_WORKER_ID", "celery")
BACKOFF = float(CFG.get("retry_backoff_s", 0))
BACKOFF_MAX = float(CFG.get("retry_backoff_max_s", 600))
JITTER = bool(CFG.get("retry_jitter", False))
TRANSPORT = {"visibility_timeout": float(CFG.get("visibility_timeout_s", 3600)),
             # kombu's ack-emulation keys, namespaced by the queue (default "unacked", shared)
             "unacked_key": f"{QUEUE}:unacked", "unacked_index_key": f"{QUEUE}:unacked_index",
             "unacked_mutex_key": f"{QUEUE}:unacked_mutex"}
BROKER = os.environ["QSIM_REDIS_URL"]
if (SENTINEL := qsim_order.sentinel_url(BROKER)) is not None:
    # redis+sentinel://H:P,H:P/NAME -> kombu's own Sentinel transport: sentinel://H:P;sentinel://H:P and the
    # master's name in the transport options (kombu/transport/redis.py SentinelChannel). Every connection
    # it opens asks a Sentinel for the primary first (redis-py's SentinelManagedConnection).
    BROKER = ";".join(f"sentinel://{host}:{port}" for host, port in SENTINEL[0])
    TRANSPORT.update(master_name=SENTINEL[1], sentinel_kwargs={"socket_connect_timeout": 1, "socket_timeout": 1})

app = Celery("qsim", broker=BROKER)
app.conf.update(
    task_default_queue=QUEUE,
    task_ignore_result=True,  # no result backend: the task store is the record
    task_acks_late=bool(CFG.get("acks_late", False)),
    task_reject_on_worker_lost=bool(CFG.get("task_reject_on_worker_lost", False)),
    worker_concurrency=int(CFG.get("concurrency", 1)),
    worker_prefetch_multiplier=int(CFG.get("prefetch_multiplier", 4)),
    broker_transport_options=TRANSPORT,
    # Off: remote control (the pidbox: a fanout exchange over Redis PUB/SUB, one more connection),
    # and, on the command line, mingle (waits ~1 s at start-up for peers' replies), gossip and
    # event heartbeats (worker events nothing here reads). None of them acks, prefetches or restores.
    worker_enable_remote_control=False,
    worker_log_format=f"[%(asctime)s: %(levelname)s/%(processName)s {WID}] %(message)s",
    worker_task_log_format=f"[%(asctime)s: %(levelname)s/%(processName)s {WID}] %(task_name)s[%(task_id)s]: %(message)s",
)


@app.task(bind=True, name="qsim.run_order", max_retries=int(CFG.get("max_retries", 3)))
def run_order(self, order_id):
    try:
        return qsim_order.run_order(order_id)
    except qsim_order.TransientError as e:
        # What autoretry_for=(TransientError,) with retry_backoff does (celery/app/autoretry.py,
        # celery.utils.time.get_exponential_backoff_interval: min(max, factor * 2**retries), full
        # jitter), but in float seconds: autoretry int()s retry_backoff, so 0.5 s would become 0 and
        # then mean Celery's default_retry_delay (180 s). 0 retries at once (countdown 0, no eta).
        # Measured floor: a countdown > 0 (an eta message, held by the worker) reaches the pool up
        # to ~1 s late (0.3 s ran after ~1.05 s, 1.5 s after ~2.07 s, 1 and 2 s on time).
        # Past max_retries, Task.retry re-raises e: the task fails (task_failure below).
        countdown = min(BACKOFF_MAX, BACKOFF * 2 ** self.request.retries)
        raise self.retry(exc=e, countdown=random.uniform(0, countdown) if JITTER else countdown)
    # PermanentError and anything else: not retried.


@app.task(name="qsim.bench")
def bench_task(enqueued_us=None):  # README "Benchmark mode"
    qsim_order.bench_job(enqueued_us)


@signals.task_failure.connect
def given_up(sender=None, exception=None, args=None, **_):
    # Sent in the pool child when the task fails for good (celery/app/trace.py handle_failure), and
    # in the worker for WorkerLostError unless the message was requeued (Request.on_failure).
    if getattr(sender, "name", None) == "qsim.run_order" and args:
        qsim_order.mark_dead(args[0], f"{type(exception).__name__}: {exception}")


@signals.worker_ready.connect
def ready(**_):
    qsim_order.start_health()  # the consumer is started: connected and consuming


def handoff():
    # The intake waits 5 s for an answer. Celery's client alone can take longer: kombu's connect
    # retries (2 s apart within broker_connection_timeout, 4 s) and publish's own 3 retries, each
    # waiting on the socket. Here: short socket timeouts, one reconnect, one publish retry
    # (measured: ~0.2 s on a refused connection, ~2-3 s on a Redis that does not answer).
    app.conf.broker_connection_timeout = 1
    app.conf.task_publish_retry_policy = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2,
                                          "interval_max": 0.2}
    app.conf.broker_transport_options = {**TRANSPORT, "socket_timeout": 1, "socket_connect_timeout": 1,
                                         "max_retries": 1, "interval_start": 0.2}
    qsim_order.serve_handoff(lambda order_id: run_order.apply_async(args=[order_id]).id)


def bench():
    qsim_order.bench_enqueue(sys.argv[1:], lambda us: bench_task.apply_async(args=[] if us is None else [us]))


def worker():
    # --quiet: no start-up banner (it goes to stdout); the worker still logs to stderr.
    app.worker_main(["--quiet", "worker", "--pool=prefork", "--loglevel=INFO", f"--hostname={WID}@%h",
                     "--without-mingle", "--without-gossip", "--without-heartbeat"])


if __name__ == "__main__":
    qsim_order.main("celery", handoff, worker, bench)
