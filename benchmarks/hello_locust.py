"""Load scenarios on the trivial endpoint (benchmarks/hello_app.py) for benchmarks/load_generator.py.

``LabHello`` is a lab load scenario like any other (``LabHttpUser``: bounded reads, no redirect),
with no think time: what the lab's generator costs per request. ``PlainHello`` is locust's own
``FastHttpUser``, for comparison (the lab refuses to run it; the benchmark runs it with locust).

Each process that runs a load writes the CPU time it spent while the load ran (``test_start`` to
``test_stop``: imports and start-up excluded) to ``$EQLAB_BENCH_CPU_DIR/<pid>.json``, and says
when its load started (``<pid>.started``).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from locust import FastHttpUser, constant, events, task

from eqlab.checks.load import LabHttpUser

CPU_DIR_ENV = "EQLAB_BENCH_CPU_DIR"
_started: dict[str, float] = {}


@events.test_start.add_listener  # type: ignore[untyped-decorator]
def _measure_from(**_: Any) -> None:
    _started.update(cpu=time.process_time(), wall=time.perf_counter())
    folder = os.environ.get(CPU_DIR_ENV)
    if folder:
        (Path(folder) / f"{os.getpid()}.started").touch()  # the benchmark times the load from here


@events.test_stop.add_listener  # type: ignore[untyped-decorator]
def _measure_to(**_: Any) -> None:
    folder = os.environ.get(CPU_DIR_ENV)
    if folder and _started:
        spent = {"cpu_s": time.process_time() - _started["cpu"], "wall_s": time.perf_counter() - _started["wall"]}
        (Path(folder) / f"{os.getpid()}.json").write_text(json.dumps(spent), encoding="utf-8")


class LabHello(LabHttpUser):
    wait_time = constant(0)

    @task
    def hello(self) -> None:
        self.client.get("hello")


class PlainHello(FastHttpUser):
    wait_time = constant(0)

    @task
    def hello(self) -> None:
        self.client.get("hello")
