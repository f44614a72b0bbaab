"""Runs the end-to-end suite a few test classes at a time, each class in a
process of its own, and exits 1 if any failed.

Each call of an AWS CLI is a second of one core's work (Python starting
up), and the suite makes hundreds: run one class at a time, a 2-core
machine left its other core idle for five minutes. The classes share
nothing but the binary: each starts its own servers, on ports and in
folders of their own.

Usage: python3 e2e/parallel.py [WORKERS]  (default: the machine's cores)
"""

import concurrent.futures
import os
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))


def classes(suite):
    """The test classes of suite, as names unittest takes; a module that
    failed to import is named by itself, so that its run shows why."""
    for test in suite:
        if isinstance(test, unittest.TestSuite):
            yield from classes(test)
        elif isinstance(test, unittest.loader._FailedTest):
            yield test.id().rsplit(".", 1)[-1]
        else:
            yield f"{type(test).__module__}.{type(test).__qualname__}"


def run(name):
    start = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "unittest", "-v", name], cwd=HERE,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return name, p.returncode, p.stdout, time.monotonic() - start


def main():
    workers = int(sys.argv[1]) if len(sys.argv) > 1 else os.cpu_count() or 1
    names = list(dict.fromkeys(classes(unittest.TestLoader().discover(HERE, top_level_dir=HERE))))
    # The CLI classes take longest (a CLI call is a second of Python, and
    # they make the most): started first, the shorter classes fill in
    # beside them rather than after (193 s against 207 s here).
    names.sort(key=lambda name: not name.startswith("test_cli."))
    if not names:
        print("no end-to-end tests found", file=sys.stderr)
        return 1
    failed = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        for name, code, out, took in pool.map(run, names):
            print(f"--- {name} ({took:.0f} s)\n{out}", flush=True)
            if code != 0:
                failed.append(name)
    print(f"{len(names)} test classes, {len(failed)} failed" + (": " + ", ".join(failed) if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
