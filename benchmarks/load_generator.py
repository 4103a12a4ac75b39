"""How much load the lab's load generator can make, next to wrk, on the same trivial endpoint.

A lab whose load generator saturates before the system under test measures itself. One run, one
server (benchmarks/hello_app.py: one route on FastAPI + uvicorn, a separate process), each generator
in turn for the same time with the same number of connections (a closed loop: no think time):

* wrk (``wrk -t1 -c16 -d10s``, Debian package ``wrk``): the reference of a cheap HTTP client;
* the lab, exactly as ``eqlab run`` runs a load suite (``python -m eqlab.runner.load_worker``,
  a ``LabHttpUser`` scenario: bounded reads, no redirect), in one process and as a locust master
  with ``--workers`` worker processes on this machine;
* plain locust (its own ``FastHttpUser`` client, the ``locust`` command, one process): what the lab
  made before it had its own client (``eqlab.runner.load_http``).

The server takes a core of its own, so on a small machine wall-clock requests/s mostly measure the
server. What measures a generator is its requests per CPU-second ("per core"): wrk's CPU time is
the child's rusage; locust's is what each of its processes spent between ``test_start`` and
``test_stop`` (benchmarks/hello_locust.py; imports and start-up excluded). The ratio to wrk per
core is the figure issue 15 asks for (target >= 0.5).

    python -m benchmarks.load_generator [--seconds 10] [--connections 16] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.machine import describe
from benchmarks.servers import hello_server

HERE = Path(__file__).resolve().parent
SCENARIO = HERE / "hello_locust.py"
WRK_INSTALL = "wrk is not installed: `sudo apt-get install wrk` (Debian/Ubuntu) to compare the lab with it"


@dataclass(frozen=True)
class Measured:
    generator: str
    requests: int
    seconds: float
    cpu_s: float
    failures: int = 0

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    @property
    def per_core(self) -> float:
        return self.requests / self.cpu_s if self.cpu_s else float("nan")


def run_wrk(url: str, seconds: int, connections: int) -> Measured | None:
    if shutil.which("wrk") is None:
        print(WRK_INSTALL)
        return None
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", url], capture_output=True, text=True, check=True
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    found = re.search(r"(\d+) requests in ([\d.]+)(m?s)", done.stdout)
    if found is None:
        raise RuntimeError(f"cannot read wrk's output:\n{done.stdout}")
    elapsed = float(found.group(2)) / (1000 if found.group(3) == "ms" else 1)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", done.stdout)
    return Measured("wrk -t1", int(found.group(1)), elapsed, cpu, int(errors.group(1)) if errors else 0)


def _spent(folder: Path) -> tuple[float, float]:
    """The CPU seconds the load processes recorded (hello_locust.py, one file per process) and the
    longest time one of them carried load (locust's own clock for the rate: its --run-time may
    end a run early after slow imports)."""
    records = [json.loads(f.read_text(encoding="utf-8")) for f in folder.glob("*.json")]
    return sum(r["cpu_s"] for r in records), max(r["wall_s"] for r in records)


def run_lab(base: str, seconds: int, connections: int, workers: int) -> Measured:
    """The lab's load child, as `eqlab run` starts it."""
    with tempfile.TemporaryDirectory() as cpu_dir:
        config = {
            "base_url": base,
            "locustfile": str(SCENARIO),
            "scenario": "LabHello",
            "users": connections,
            "spawn_rate": 1000,
            "duration": seconds,
            "workers": workers,
            "worker_connect_s": 30,
            "worker_finish_s": 15,
            "worker_silence_s": 10,
        }
        config_file = Path(cpu_dir) / "config.json.in"
        config_file.write_text(json.dumps(config), encoding="utf-8")
        done = subprocess.run(
            [sys.executable, "-m", "eqlab.runner.load_worker", str(config_file)],
            capture_output=True,
            text=True,
            env={**os.environ, "EQLAB_BENCH_CPU_DIR": cpu_dir},
            check=False,  # the lab says why on its last line
        )
        stats = json.loads(done.stdout.strip().splitlines()[-1])
        if "error" in stats:
            raise RuntimeError(f"the lab could not measure: {stats['error']}")
        label = f"lab, master + {workers} workers" if workers else "lab, one process"
        cpu, wall = _spent(Path(cpu_dir))
        return Measured(label, stats["requests"], wall, cpu, stats["failures"])


def run_plain_locust(base: str, seconds: int, connections: int) -> Measured:
    """Locust's own FastHttpUser and command, without the lab's rules, in one process. Stopped by
    SIGTERM ``seconds`` after its load began: its --run-time counts from before slow imports end."""
    with tempfile.TemporaryDirectory() as cpu_dir, tempfile.TemporaryDirectory() as out_dir:
        command = [sys.executable, "-m", "locust", "-f", str(SCENARIO), "PlainHello", "--headless", "--host", base]
        command += ["-u", str(connections), "-r", "1000", "--only-summary", "--json-file", f"{out_dir}/stats"]
        env = {**os.environ, "EQLAB_BENCH_CPU_DIR": cpu_dir}
        locust = subprocess.Popen(command, env=env, cwd=HERE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not list(Path(cpu_dir).glob("*.started")):
            if locust.poll() is not None or time.monotonic() > deadline:
                locust.kill()
                raise RuntimeError("plain locust did not start its load")
            time.sleep(0.05)
        time.sleep(seconds)
        locust.send_signal(signal.SIGTERM)
        locust.wait(timeout=30)
        entries = json.loads(Path(out_dir, "stats.json").read_text(encoding="utf-8"))
        requests = sum(e["num_requests"] for e in entries)
        failures = sum(e["num_failures"] for e in entries)
        cpu, wall = _spent(Path(cpu_dir))
        return Measured("plain locust FastHttpUser, one process", requests, wall, cpu, failures)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10, help="per generator (start-up weighs less the longer)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections = locust users")
    parser.add_argument("--workers", type=int, default=2, help="worker processes of the distributed lab run")
    args = parser.parse_args()
    print(f"load generators on one trivial endpoint: {args.seconds} s each, "
          f"{args.connections} connections/users, server: uvicorn, one process")  # fmt: skip
    print(f"machine: {describe()}")
    print(f"machine load (1 min): {os.getloadavg()[0]:.1f}: req/s depend on it, req/s per core hardly")
    with hello_server() as base:
        url = f"{base}/hello"
        wrk = run_wrk(url, args.seconds, args.connections)
        rows = [
            *([wrk] if wrk else []),
            run_lab(base, args.seconds, args.connections, workers=0),
            run_lab(base, args.seconds, args.connections, workers=args.workers),
            run_plain_locust(f"{base}/", args.seconds, args.connections),
        ]
    print(f"  {'generator':<40} {'req/s':>9} {'CPU s':>7} {'req/s per core':>15} {'vs wrk per core':>16} failures")
    for row in rows:
        ratio = f"{row.per_core / wrk.per_core:>16.2f}" if wrk else f"{'(no wrk)':>16}"
        print(
            f"  {row.generator:<40} {row.per_second:>9,.0f} {row.cpu_s:>7.2f} {row.per_core:>15,.0f} {ratio} "
            f"{row.failures}"
        )
    if wrk is None:
        print(WRK_INSTALL)
    else:
        print("  target: the lab >= 0.50 of wrk per core")


if __name__ == "__main__":
    main()
