#!/usr/bin/python3
"""APScheduler 3.9 on the workload of scheduler_bench: N interval jobs, every second, start
times spread evenly over the second, a no-op job, MemoryJobStore + ThreadPoolExecutor.
Prints one line: `fires_per_second=<x> lateness_p50_ms=<x> lateness_p99_ms=<x> add_seconds=<x>`.
Usage: apscheduler_fires.py N SECONDS"""
import sys
import threading
import time
from datetime import datetime, timedelta, timezone

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

n = int(sys.argv[1])
seconds = float(sys.argv[2])
lock = threading.Lock()
lateness = []
count = [0]


def job(fire_time):
    late = (datetime.now(timezone.utc) - fire_time).total_seconds()
    with lock:
        count[0] += 1
        if len(lateness) < 200000:
            lateness.append(late)


class Job:
    """Passes each run its own scheduled fire time (APScheduler hands jobs no context)."""

    def __init__(self, start, period):
        self.start, self.period = start, period

    def __call__(self):
        now = datetime.now(timezone.utc)
        k = int((now - self.start) / self.period)
        job(self.start + k * self.period)


sched = BackgroundScheduler(
    executors={"default": ThreadPoolExecutor(20)},
    job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
    timezone="UTC",
)
period = timedelta(seconds=1)
start = datetime.now(timezone.utc) + timedelta(seconds=3)
t = time.perf_counter()
for i in range(n):
    s = start + timedelta(microseconds=i * 1_000_000 // n)
    sched.add_job(Job(s, period), "interval", seconds=1, start_date=s, id=str(i))
add_seconds = time.perf_counter() - t
sched.start()
while datetime.now(timezone.utc) < start + timedelta(seconds=2):
    time.sleep(0.05)
with lock:
    c0 = count[0]
    lateness.clear()
t0 = time.perf_counter()
time.sleep(seconds)
with lock:
    c1 = count[0]
    lat = sorted(lateness)
elapsed = time.perf_counter() - t0
sched.shutdown(wait=False)


def pct(p):
    return lat[min(len(lat) - 1, int(p * len(lat)))] * 1000 if lat else float("nan")


print(f"fires_per_second={(c1 - c0) / elapsed:.1f} lateness_p50_ms={pct(0.5):.3f} "
      f"lateness_p99_ms={pct(0.99):.3f} add_seconds={add_seconds:.3f}", flush=True)
