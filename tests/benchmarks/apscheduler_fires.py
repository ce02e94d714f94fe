#!/usr/bin/python3
"""APScheduler 3.9 on the workload of scheduler_bench.cpp: N interval jobs with their start times
spread evenly over one period, a no-op job, MemoryJobStore, APScheduler's default executor (a
ThreadPoolExecutor of 10 threads), coalesce on, no misfire grace limit. Prints one JSON line.

  apscheduler_fires.py ceiling N ROUNDS    every job every 1 s; a fake clock moved 1 s per round
                                           and the scheduler's own _process_jobs() called, then
                                           waiting until every run of the round has finished:
                                           fires/s with no waiting in between
  apscheduler_fires.py realtime N RATE SECONDS
                                           BackgroundScheduler on the real clock, RATE fires/s in
                                           all; lateness = run start - scheduled time, for every
                                           run that starts in the SECONDS measured after a 1 s
                                           warm-up; fires/s = those runs / SECONDS

Lateness is taken where APScheduler starts a run (its executors.pool.run_job, wrapped), from the
run time APScheduler itself passes there, so it stays right even when runs are more than a
period late. Run with /usr/bin/python3 (python3-apscheduler).
"""
import datetime as _dt
import json
import os
import sys
import threading
import time

import apscheduler
import apscheduler.executors.pool as aps_pool
import apscheduler.schedulers.base as aps_base
from apscheduler.events import EVENT_JOB_EXECUTED
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler

UTC = _dt.timezone.utc
JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": None}

lock = threading.Lock()
runs = [0]
finished = [0]
lateness = []
window = [None, None]  # real-clock window in which run starts are measured
original_run_job = aps_pool.run_job


def timed_run_job(job, jobstore_alias, run_times, logger_name):
    """APScheduler's run_job, recording when the run starts."""
    now = _dt.datetime.now(UTC)
    with lock:
        runs[0] += 1
        if window[0] is not None and window[0] <= now < window[1]:
            lateness.append((now - run_times[-1]).total_seconds())
    return original_run_job(job, jobstore_alias, run_times, logger_name)


aps_pool.run_job = timed_run_job


def noop():
    pass


def count_finished(_event):
    with lock:
        finished[0] += 1


def percentile(values, p):
    if not values:
        return 0.0
    return values[min(len(values) - 1, int(p * len(values)))] * 1000.0


class ManualScheduler(BaseScheduler):
    """A scheduler without a thread of its own: the benchmark calls _process_jobs() itself."""

    def wakeup(self):
        pass

    def shutdown(self, wait=True):
        super().shutdown(wait)


class FakeDatetime(_dt.datetime):
    """What APScheduler's scheduler module sees as `datetime`: now() is the fake clock."""

    current = _dt.datetime(2026, 1, 1, tzinfo=UTC)

    @classmethod
    def now(cls, tz=None):
        return cls.current.astimezone(tz) if tz else cls.current


def ceiling(n, rounds):
    t0 = FakeDatetime.current
    aps_base.datetime = FakeDatetime
    sched = ManualScheduler(timezone=UTC, job_defaults=JOB_DEFAULTS)
    # Counted when APScheduler has released the run (so the next round may start the job again).
    sched.add_listener(count_finished, EVENT_JOB_EXECUTED)
    for i in range(n):
        start = t0 + _dt.timedelta(microseconds=i * 1_000_000 // n)
        sched.add_job(noop, "interval", seconds=1, start_date=start, id=str(i))
    sched.start()
    fires = 0
    begin = time.perf_counter()
    for r in range(rounds):
        FakeDatetime.current = t0 + _dt.timedelta(seconds=r, microseconds=999_999)
        sched._process_jobs()
        fires += n
        while True:
            with lock:
                if finished[0] >= fires:
                    break
            if time.perf_counter() - begin > 600:
                raise SystemExit("ceiling: runs did not finish (%d of %d)" % (finished[0], fires))
            time.sleep(0.0005)
    elapsed = time.perf_counter() - begin
    sched.shutdown()
    return {"part": "ceiling", "schedules": n, "fires": finished[0], "seconds": round(elapsed, 4),
            "fires_per_second": round(finished[0] / elapsed, 1)}


def realtime(n, rate, seconds):
    period = n / rate
    sched = BackgroundScheduler(timezone=UTC, job_defaults=JOB_DEFAULTS)
    # Adding costs tens of microseconds per job; runs before all are added are warm-up anyway.
    base = _dt.datetime.now(UTC) + _dt.timedelta(seconds=0.2 + n * 30e-6)
    add_start = time.perf_counter()
    for i in range(n):
        start = base + _dt.timedelta(seconds=period * i / n)
        sched.add_job(noop, "interval", seconds=period, start_date=start, id=str(i))
    add_seconds = time.perf_counter() - add_start
    sched.start()
    ready = _dt.datetime.now(UTC)
    window[0] = max(base, ready) + _dt.timedelta(seconds=1)
    window[1] = window[0] + _dt.timedelta(seconds=seconds)
    while _dt.datetime.now(UTC) < window[1]:
        time.sleep(0.02)
    sched.shutdown(wait=False)
    with lock:
        lat = sorted(lateness)
    return {"part": "realtime", "schedules": n, "rate": rate, "seconds": seconds, "runs": len(lat),
            "fires_per_second": round(len(lat) / seconds, 1),
            "lateness_p50_ms": round(percentile(lat, 0.5), 4),
            "lateness_p99_ms": round(percentile(lat, 0.99), 4),
            "lateness_max_ms": round(lat[-1] * 1000.0 if lat else 0.0, 4),
            "add_seconds": round(add_seconds, 3)}


def main():
    args = sys.argv[1:]
    if len(args) == 3 and args[0] == "ceiling":
        result = ceiling(int(args[1]), int(args[2]))
    elif len(args) == 4 and args[0] == "realtime":
        result = realtime(int(args[1]), float(args[2]), float(args[3]))
    else:
        raise SystemExit(__doc__)
    result["peer"] = "APScheduler " + apscheduler.__version__
    print(json.dumps(result), flush=True)
    # An overloaded thread pool still holds queued runs, which a normal exit would wait for.
    os._exit(0)


if __name__ == "__main__":
    main()
