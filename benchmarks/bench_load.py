"""Do verdicts depend on how busy the machine is? Near-limit solutions, idle and with a CPU hog per core.

Workload: CPU-bound solutions calibrated on this machine to need 30%, 60%, 90% and 150% of a 1 s limit
(`--copies` distinct copies of each, so nothing is deduplicated), judged in `fast` mode. Each is run on
an idle machine and with a busy loop on every core, under the wall clock and under the CPU clock, each
with and without the idle re-check of timeouts. A verdict that differs from the same configuration on the
idle machine is a verdict the load changed.

Run: .venv/bin/python benchmarks/bench_load.py [--copies 6] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections import Counter

from utscale.sandbox import Executor, Pair, SandboxSettings, run_pairs

TEST = "import unittest\nclass T(unittest.TestCase):\n    def test(self):\n        self.assertEqual(add(2, 3), 5)\n"
FRACTIONS = (0.3, 0.6, 0.9, 1.5)


def cpu_seconds_per_iteration() -> float:
    started = time.process_time()
    n = 0
    for i in range(3_000_000):
        n += i
    return (time.process_time() - started) / 3_000_000


def workload(copies: int, limit: float) -> list[Pair]:
    per = cpu_seconds_per_iteration()
    pairs = []
    for fraction in FRACTIONS:
        loops = int(fraction * limit / per)
        for copy in range(copies):
            solution = (f"def add(a, b):\n    n = {copy}\n    for i in range({loops}):\n        n += i\n"
                        "    return a + b\n")  # distinct copies (n starts at the copy number): no dedup
            pairs.append(Pair(f"{fraction:.0%}|{copy}", solution, TEST))
    return pairs


def judge(pairs: list[Pair], clock: str, recheck: bool, workers: int, limit: float) -> tuple[dict[str, str], float]:
    settings = SandboxSettings(timeout=limit, clock=clock, recheck_timeouts=recheck)
    started = time.perf_counter()
    with Executor(workers=workers, settings=settings) as ex:
        got = {v.id: v.status for v in run_pairs(pairs, ex)}
    return got, time.perf_counter() - started


def hogs(count: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--copies", type=int, default=6)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--limit", type=float, default=1.0)
    args = parser.parse_args()
    pairs = workload(args.copies, args.limit)
    cores = os.cpu_count() or 1
    print(f"{len(pairs)} pairs: solutions needing {', '.join(f'{f:.0%}' for f in FRACTIONS)} of a {args.limit:g} s "
          f"limit; {args.workers} workers; busy = one busy loop on each of {cores} cores")
    for clock in ("wall", "cpu"):
        for recheck in ((False, True) if clock == "wall" else (False,)):  # cpu-clock timeouts are not re-checked
            idle, t_idle = judge(pairs, clock, recheck, args.workers, args.limit)
            running = hogs(cores)
            try:
                busy, t_busy = judge(pairs, clock, recheck, args.workers, args.limit)
            finally:
                for hog in running:
                    hog.kill()
                    hog.wait()
            changed = [p.id for p in pairs if idle[p.id] != busy[p.id]]
            summary = {f: Counter(s for i, s in busy.items() if i.startswith(f"{f:.0%}|")) for f in FRACTIONS}
            print(f"clock {clock:<4} re-check {'on ' if recheck else 'off'}: idle {t_idle:5.1f} s, busy {t_busy:5.1f} s; "
                  f"verdicts changed by load: {len(changed)}/{len(pairs)}"
                  + "".join(f"; {f:.0%}: {dict(c)}" for f, c in summary.items()), flush=True)


if __name__ == "__main__":
    main()
