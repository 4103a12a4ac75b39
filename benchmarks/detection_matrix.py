"""What ``eqlab detection`` (``make detection``) costs: one fault's run, and the whole matrix.

1. One fault's run (``no-etag``, the checks of fhir@15) as the matrix makes it: the store seeded once
   and copied, against starting from an empty store seeded by the server; one check process with and
   without pytest-xdist workers (``--workers``). Each figure is the median of ``--repeat`` runs.
2. The whole matrix: ``eqlab detection --jobs N`` for each N of ``--jobs`` (default: the number of
   CPUs), its wall time and exit status, with the load average before and after (other work on the
   machine slows it down: say what was running when quoting a figure).

Not part of ``make test`` or ``make bench``: the matrix alone takes minutes.

    python benchmarks/detection_matrix.py [--jobs 1,2] [--faults a,b] [--repeat 3] [--no-matrix]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

# The repository, not this script's folder: there benchmarks/fhir_core.py would hide the fhir_core package
# that fhir.resources (imported by the reference implementation) needs.
if (here := str(Path(__file__).resolve().parent)) in sys.path:  # run as a script; not there under -m
    sys.path.remove(here)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eqlab.commands.detection import detect, reference_faults, seed_store
from eqlab.commands.store_admin import demo_secrets
from eqlab.signing import LabKey
from reference_impl.app import create_app
from reference_impl.embedded import serve_in_thread
from reference_impl.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
FAULT = "no-etag"


def median_s(repeat: int, action: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def one_run(folder: Path, repeat: int) -> None:
    key = folder / "lab.pem"
    LabKey.load_or_create(key)
    seeded = seed_store(folder)
    empty = folder / "empty"

    def server_start(seeded_store: Path | None) -> None:
        empty.mkdir(exist_ok=True)
        store = empty / "reference.sqlite3"
        store.unlink(missing_ok=True)
        if seeded_store:
            store.write_bytes(seeded_store.read_bytes())
        with demo_secrets(), serve_in_thread(create_app(Settings(db_url=f"sqlite:///{store}", seed="demo"))):
            pass

    def fault_run(workers: int, seeded_store: Path | None) -> None:
        breaks = reference_faults()[FAULT].breaks
        found = detect(frozenset({FAULT}), folder / "out", workers, key, ("contract",), breaks, seeded_store)
        assert found.caught, (found.verdict, found.failed)

    print(f"one fault's run ({FAULT}), median of {repeat}:")
    print(f"  server start, empty store seeded:     {median_s(repeat, lambda: server_start(None)):6.2f} s")
    print(f"  server start, copy of a seeded store: {median_s(repeat, lambda: server_start(seeded)):6.2f} s")
    print(f"  run, seeded copy, 1 check process:    {median_s(repeat, lambda: fault_run(1, seeded)):6.2f} s")
    print(f"  run, seeded copy, --workers 2:        {median_s(repeat, lambda: fault_run(2, seeded)):6.2f} s")
    print(f"  run, empty store, 1 check process:    {median_s(repeat, lambda: fault_run(1, None)):6.2f} s")


def matrix(folder: Path, jobs: list[int], faults: str | None) -> None:
    scope = f"--faults {faults}" if faults else f"all {len(reference_faults())} faults and the client table"
    print(f"eqlab detection ({scope}) on {os.cpu_count()} CPUs:")
    for n in jobs:
        command = [sys.executable, "-m", "eqlab.cli", "detection", "--jobs", str(n), "--out", str(folder / "out")]
        command += ["--key", str(folder / "lab.pem"), *(["--faults", faults] if faults else [])]
        before = os.getloadavg()[0]
        started = time.perf_counter()
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - started
        summary = [line for line in done.stdout.splitlines() if "caught" in line and ":" in line[:20]]
        print(f"  --jobs {n}: {wall:6.1f} s wall ({wall / 60:.1f} min), exit {done.returncode}")
        print(f"           load average before {before:.2f}, after {os.getloadavg()[0]:.2f}; {'; '.join(summary)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", default=str(os.cpu_count() or 1), help="comma-separated --jobs values to time")
    parser.add_argument("--faults", default=None, help="only these faults (default: the whole matrix)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per single-run figure")
    parser.add_argument("--no-matrix", action="store_true", help="only the single-run figures")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="eqlab-bench-detection-") as folder:
        one_run(Path(folder), args.repeat)
        if not args.no_matrix:
            matrix(Path(folder), [int(n) for n in args.jobs.split(",")], args.faults)


if __name__ == "__main__":
    main()
