#!/usr/bin/python3
"""The seed failure of issue 13, reproduced: APScheduler 3.9's BackgroundScheduler with a
SQLAlchemyJobStore on PostgreSQL, when the server drops the connection inside update_job.

One job runs every second and records each run (wall time and scheduled time, in this process).
After BEFORE seconds the fault is injected: a trigger BEFORE UPDATE on the job table calls
pg_terminate_backend(pg_backend_pid()) for the next KILLS updates (counted by a SEQUENCE, whose
nextval survives the backend's death where a counter row would be rolled back). The fault ends
(the trigger is dropped) once KILLS updates were killed or after DURING seconds, whichever comes
first; then the script watches AFTER more seconds and prints one JSON line:

  fires_before / fires_during / fires_after   runs that started in each phase
  loop_alive         scheduler._thread.is_alive() at the end
  reported_running   scheduler.running at the end (and reported_running_during, in the fault)
  duplicates         scheduled times that ran more than once
  errors             records of WARNING or worse logged by APScheduler, plus uncaught thread
                     exceptions; error_samples holds the first lines of a few of them
  kills              updates the trigger terminated

Everything lives in its own schema (aps_outage_<pid>), dropped at the end.

Usage: /usr/bin/python3 tests/benchmarks/pg_outage_apscheduler.py [URL] [--before S] [--kills K]
       [--during S] [--after S]
URL defaults to $PUNCTUAL_TEST_POSTGRES_URL. Needs python3-apscheduler (3.9), python3-sqlalchemy
(1.4) and python3-psycopg2.
"""
import argparse
import collections
import datetime as _dt
import json
import logging
import os
import sys
import threading
import time

import apscheduler
import psycopg2
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler

runs = []  # (wall time, scheduled run time) of every run, appended by the executor's threads
runs_lock = threading.Lock()
errors = []  # first lines of every error APScheduler logged or its thread died of


def tick():
    """The job: does nothing; its runs are recorded by on_event."""


def on_event(event):
    with runs_lock:
        runs.append((time.time(), event.scheduled_run_time))


class ErrorCounter(logging.Handler):
    def emit(self, record):
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            text += ": " + str(record.exc_info[1]).strip().splitlines()[0]
        errors.append(text)


def on_thread_exception(args):
    """threading.excepthook: the scheduler thread dying of an exception counts as an error."""
    first = str(args.exc_value).strip().splitlines()
    errors.append("thread %s died: %s: %s" % (args.thread.name if args.thread else "?",
                                              args.exc_type.__name__, first[0] if first else ""))
    previous_excepthook(args)


previous_excepthook = threading.excepthook


def sqlalchemy_url(url):
    # SQLAlchemy 1.4 accepts only the postgresql:// spelling (psycopg2 is its default driver).
    return "postgresql://" + url[len("postgres://"):] if url.startswith("postgres://") else url


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("url", nargs="?", default=os.environ.get("PUNCTUAL_TEST_POSTGRES_URL"))
    ap.add_argument("--before", type=float, default=5, help="seconds before the fault")
    ap.add_argument("--kills", type=int, default=3, help="updates to terminate")
    ap.add_argument("--during", type=float, default=5, help="longest the fault lasts, seconds")
    ap.add_argument("--after", type=float, default=10, help="seconds watched after the fault")
    args = ap.parse_args()
    if not args.url:
        sys.exit("pg_outage_apscheduler: give a PostgreSQL URL or set PUNCTUAL_TEST_POSTGRES_URL")
    schema = "aps_outage_%d" % os.getpid()

    admin = psycopg2.connect(args.url)
    admin.autocommit = True
    cur = admin.cursor()
    cur.execute("CREATE SCHEMA %s" % schema)
    handler = ErrorCounter(logging.WARNING)
    logging.getLogger("apscheduler").addHandler(handler)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    threading.excepthook = on_thread_exception
    try:
        scheduler = BackgroundScheduler(timezone=_dt.timezone.utc)
        scheduler.add_jobstore(SQLAlchemyJobStore(url=sqlalchemy_url(args.url), tableschema=schema))
        scheduler.add_listener(on_event, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
        scheduler.start()
        scheduler.add_job(tick, "interval", seconds=1, id="every_second", coalesce=True,
                          misfire_grace_time=30, max_instances=1)

        t_fault = time.time() + args.before
        time.sleep(max(0.0, t_fault - time.time()))
        cur.execute("CREATE SEQUENCE %s.kills" % schema)
        cur.execute("""
            CREATE FUNCTION %(s)s.kill_updater() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF nextval('%(s)s.kills') <= %(k)d THEN
                PERFORM pg_terminate_backend(pg_backend_pid());
              END IF;
              RETURN NEW;
            END $$""" % {"s": schema, "k": args.kills})
        cur.execute("CREATE TRIGGER kill_updater BEFORE UPDATE ON %s.apscheduler_jobs "
                    "FOR EACH ROW EXECUTE FUNCTION %s.kill_updater()" % (schema, schema))
        t_fault = time.time()

        def kills():
            cur.execute("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM %s.kills" % schema)
            return min(cur.fetchone()[0], args.kills)

        while kills() < args.kills and time.time() < t_fault + args.during:
            time.sleep(0.05)
        reported_running_during = scheduler.running
        killed = kills()
        cur.execute("DROP TRIGGER kill_updater ON %s.apscheduler_jobs" % schema)
        t_heal = time.time()
        time.sleep(args.after)
        t_end = time.time()

        loop_alive = scheduler._thread.is_alive()
        reported_running = scheduler.running
        with runs_lock:
            snapshot = list(runs)
        per_scheduled = collections.Counter(scheduled for _, scheduled in snapshot)
        result = {
            "scheduler": "APScheduler %s BackgroundScheduler + SQLAlchemyJobStore" % apscheduler.__version__,
            "before_s": args.before, "during_s": round(t_heal - t_fault, 2), "after_s": args.after,
            "kills": killed,
            "fires_before": sum(1 for t, _ in snapshot if t < t_fault),
            "fires_during": sum(1 for t, _ in snapshot if t_fault <= t < t_heal),
            "fires_after": sum(1 for t, _ in snapshot if t_heal <= t <= t_end),
            "loop_alive": loop_alive,
            "reported_running_during": reported_running_during,
            "reported_running": reported_running,
            "duplicates": sum(1 for n in per_scheduled.values() if n > 1),
            "errors": len(errors),
            "error_samples": errors[:3],
        }
        scheduler.shutdown(wait=False)
    finally:
        threading.excepthook = previous_excepthook
        cur.execute("DROP SCHEMA %s CASCADE" % schema)
        admin.close()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
