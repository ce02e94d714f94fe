#!/usr/bin/env python3
"""Loading a big crontab into punctual-cron (issue 14, item 6): time to the first fire.

    tests/benchmarks/cron_big_crontab.py BINARY [--entries N] [--runs K]

Writes a crontab of N entries (default 10,000): one `@every 1s` entry whose job prints a
marker, and N - 1 daily entries. Starts `BINARY run` on a fresh SQLite store in a temporary
directory (a first start: every entry is added) and measures, from the spawn:
  - load: until the daemon logs "running N entries" (the crontab is in the store, the
    scheduler started);
  - first fire: until the marker of the every-second job appears on stdout. Its fires are
    aligned to whole seconds, so this is load plus up to 1 s of waiting for the next second;
    first_fire_late is how late the daemon says that first run started (its log line).
Then it stops the daemon (SIGTERM) and starts it again on the same store (a restart: every
entry unchanged) and measures the same. Each figure is printed as one JSON line; nothing is
asserted (figures are reported, never a pass/fail).
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time


def wait_for(path, needle, deadline):
    while time.monotonic() < deadline:
        try:
            with open(path, "r", errors="replace") as f:
                if needle in f.read():
                    return time.monotonic()
        except FileNotFoundError:
            pass
        time.sleep(0.005)
    return None


def start(binary, directory, crontab, tag, timeout):
    out_path = os.path.join(directory, tag + ".out")
    err_path = os.path.join(directory, tag + ".err")
    with open(out_path, "w") as out, open(err_path, "w") as err:
        t0 = time.monotonic()
        p = subprocess.Popen([binary, "run", crontab, "--store", "sqlite:" + os.path.join(directory, "store.db")],
                             cwd=directory, stdout=out, stderr=err)
    deadline = t0 + timeout
    loaded = wait_for(err_path, "punctual-cron: running ", deadline)
    fired = wait_for(out_path, "[tick] first-fire", deadline)
    late = None  # the daemon's own figure: "[tick] job N started for T (12ms late, attempt 1)"
    with open(err_path, "r", errors="replace") as f:
        for line in f:
            if "[tick] job " in line and " started for " in line:
                late = line.split("(", 1)[1].split(" late", 1)[0]
                break
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    return (None if loaded is None else loaded - t0, None if fired is None else fired - t0, late)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("binary")
    ap.add_argument("--entries", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=120.0)
    a = ap.parse_args()
    for run in range(1, a.runs + 1):
        with tempfile.TemporaryDirectory(prefix="punctual-big-crontab-") as d:
            crontab = os.path.join(d, "crontab")
            with open(crontab, "w") as f:
                f.write("#@ id=tick\n@every 1s echo first-fire\n")
                for k in range(1, a.entries):
                    f.write("#@ id=daily-%d\n%d %d * * * true\n" % (k, k % 60, k % 24))
            for tag in ("first-start", "restart"):
                loaded, fired, late = start(a.binary, d, crontab, tag, a.timeout)
                print(json.dumps({"benchmark": "cron_big_crontab", "run": run, "start": tag,
                                  "entries": a.entries, "load_s": loaded, "first_fire_s": fired,
                                  "first_fire_late": late}))
                sys.stdout.flush()


if __name__ == "__main__":
    main()
