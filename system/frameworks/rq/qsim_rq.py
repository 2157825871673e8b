#!/usr/bin/python3
"""RQ 1.13 under qsim (system/frameworks/README.md):
    /usr/bin/python3 system/frameworks/rq/qsim_rq.py handoff | worker | bench-fill N | bench-pickup N RATE
(an RQ job names its function: bench-fill and bench-pickup enqueue the no-op qsim_order.bench_job,
so a worker started with QSIM_BENCH=1 runs it with nothing more to do).

SIGKILL mid-job, as read in /usr/lib/python3/dist-packages/rq: a killed work horse is seen at once
by its worker (worker.py Worker.monitor_work_horse -> handle_job_failure), which re-enqueues the job
if it has retries left (Retry) and otherwise fails it (on_horse_killed below marks the order dead);
a killed worker (with its horse) leaves the job in StartedJobRegistry until registry.py
StartedJobRegistry.cleanup sees its heartbeat expire (min(job timeout, 30) + 60 s after the last
one) on a Worker.clean_registries run (at start-up and every 10 min, at most once per 899 s per queue:
queue.py acquire_cleaning_lock), which retries it if retries are left, else fails it with no hook
(the order stays where it was).

QSIM_CONFIG keys (RQ's defaults otherwise): worker_class "Worker" | "SimpleWorker"; job_timeout_s
(180; RQ's death penalty is signal.alarm, whole seconds: rounded up, at least 1); retry_max (0 = no
Retry); retry_interval_s (a number or a list, 0; RQ schedules retries at whole Unix seconds and its
scheduler polls every 1 s); with an interval > 0 the worker runs its scheduler (with_scheduler=True).
Only one worker holds a queue's scheduler lock (rq:scheduler-lock:<queue>, 61 s TTL); after it is
SIGKILLed, scheduled retries wait until a worker takes the lock at its start or its 10-minute
maintenance (scheduler.py RQScheduler.acquire_locks, worker.py run_maintenance_tasks).
"""
import math
import os
import signal
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import qsim_order  # noqa: E402  (the job is qsim_order.run_order, importable in the work horse)
from rq import Queue, Retry, SimpleWorker, Worker  # noqa: E402
from rq.job import JobStatus  # noqa: E402

CFG = qsim_order.config()
QUEUE = os.environ["QSIM_QUEUE"]
RETRY_MAX = int(CFG.get("retry_max", 0))
# Retry takes an int or a list; a list may hold fractions (get_retry_interval returns them as given).
_iv = CFG.get("retry_interval_s", 0)
INTERVALS = list(_iv) if isinstance(_iv, list) else [_iv]


def _enqueuer(fn, **timeouts):
    q = Queue(QUEUE, connection=qsim_order.redis_client(**timeouts))
    opts = {"job_timeout": max(1, math.ceil(float(CFG.get("job_timeout_s", 180))))}
    if RETRY_MAX > 0:
        opts["retry"] = Retry(max=RETRY_MAX, interval=INTERVALS)
    return lambda *args: q.enqueue(fn, *args, **opts).id


def handoff():
    # Short socket timeouts: the intake waits 5 s for the hand-off; an enqueue must fail (503) before.
    qsim_order.serve_handoff(_enqueuer(qsim_order.run_order, socket_connect_timeout=1, socket_timeout=2))


def bench():  # README "Benchmark mode": the no-op job, enqueued like an order's
    enqueue = _enqueuer(qsim_order.bench_job)
    qsim_order.bench_enqueue(sys.argv[1:], lambda us: enqueue() if us is None else enqueue(us))


def on_exception(job, exc_type, exc, tb):
    # Worker.perform_job calls the exception handlers after handle_job_failure, which left the job
    # FAILED only when no retry remains (else QUEUED or SCHEDULED). Runs in the work horse (or in
    # the SimpleWorker). RQ cannot tell a PermanentError apart: Retry retries every exception.
    if job.get_status(refresh=False) == JobStatus.FAILED:
        qsim_order.mark_dead(job.args[0], f"{exc_type.__name__}: {exc}")


def on_horse_killed(job, retpid, ret_val, rusage):
    # Called by Worker.monitor_work_horse (in the worker) just before handle_job_failure, which
    # retries iff job.retries_left > 0; neither the job's failure callback nor the exception handlers
    # run on this path.
    if not (job.retries_left and job.retries_left > 0):
        qsim_order.mark_dead(job.args[0], f"work horse terminated unexpectedly; waitpid returned {ret_val}")


def worker():
    wid = os.environ.get("QSIM_WORKER_ID", "rq")
    cls = {"Worker": Worker, "SimpleWorker": SimpleWorker}[CFG.get("worker_class", "Worker")]
    # The name carries the pid: a restarted worker must not clash with the registration of a
    # SIGKILLed one (register_birth refuses a live-looking name; it expires only after 480 s).
    w = cls([QUEUE], connection=qsim_order.redis_client(), name=f"{wid}.{os.getpid()}",
            exception_handlers=[on_exception], work_horse_killed_handler=on_horse_killed)
    qsim_order.start_health()
    w.work(with_scheduler=RETRY_MAX > 0 and any(float(i) > 0 for i in INTERVALS), logging_level="INFO")
    # work() returns after SIGTERM/SIGINT (RQ's request_stop then arms request_force_stop) and also
    # on an unhandled error ("found an unhandled exception, quitting"): exit non-zero for the latter.
    sys.exit(0 if signal.getsignal(signal.SIGTERM) == w.request_force_stop else 1)


if __name__ == "__main__":
    qsim_order.main("rq", handoff, worker, bench)
