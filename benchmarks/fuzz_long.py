"""The long fuzz run: N malformed inputs per kind (tests/fuzz_inputs.py), in-process, several workers.
Counts every outcome; any exit code other than 2, any stdout, any traceback or a multi-line message is a
failure and is printed with its input.

    python benchmarks/fuzz_long.py --total 100000 [--workers 2] [--seed 1]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import multiprocessing as mp
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


def _work(job: tuple[str, int, int]) -> tuple[Counter, list[str]]:
    from fuzz_inputs import GENERATORS

    from costsim.cli import main

    kind, seed, n = job
    rng = random.Random(f"{kind}-{seed}")
    outcomes: Counter = Counter()
    failures: list[str] = []
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(n):
            args = GENERATORS[kind](rng, Path(folder))
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main(args)
            ok = code == 2 and not out.getvalue() and err.getvalue().count("\n") == 1 \
                and "Traceback" not in err.getvalue() and "internal error" not in err.getvalue()
            outcomes["ok" if ok else "failed"] += 1
            if not ok and len(failures) < 20:
                failures.append(f"{kind}: costsim {' '.join(args)!r} -> {code} {err.getvalue()[:200]!r}")
            for extra in Path(folder).iterdir():
                extra.unlink()
    return outcomes, failures


def main() -> None:
    from fuzz_inputs import GENERATORS

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--total", type=int, default=100_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    per_job = 500
    jobs = []
    per_kind = a.total // len(GENERATORS)
    for kind in GENERATORS:
        for j in range(max(per_kind // per_job, 1)):
            jobs.append((kind, a.seed * 100_000 + j, min(per_job, per_kind)))
    start = time.perf_counter()
    totals: Counter = Counter()
    by_kind: Counter = Counter()
    failures: list[str] = []
    with mp.Pool(a.workers) as pool:
        for (kind, _, n), (outcome, fails) in zip(jobs, pool.imap(_work, jobs), strict=True):
            totals.update(outcome)
            by_kind[kind] += n
            failures += fails
    elapsed = time.perf_counter() - start
    print(f"inputs {sum(totals.values()):,} in {elapsed:,.0f} s ({a.workers} workers): {dict(totals)}; "
          f"per kind {dict(by_kind)}")
    for f in failures[:20]:
        print("FAILED", f)
    sys.exit(1 if totals["failed"] else 0)


if __name__ == "__main__":
    main()
