"""Distributed load: a locust master and workers give one merged result, judged against the plan's SLOs;
a worker that crashes, refuses or never comes ends as a lab error, never a hang; Ctrl-C stops them all.

The target is the demo reference server (tests/eqlab/conftest.py); the workers are real processes.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil  # type: ignore[import-untyped]  # locust's own dependency
import pytest

from eqlab import paths
from eqlab.catalogue import Catalogue
from eqlab.commands.tokens import system_token
from eqlab.interrupt import ChildRun, StopRequest
from eqlab.plan.loader import load_plan
from eqlab.runner.load import TOKEN_ENV, load_config, run_locust
from eqlab.yamlsource import SourceError
from tests.eqlab.conftest import DEMO_KEY, DemoReference
from tests.eqlab.runner.test_load import PLAN, granted_load_statistics, run_text
from tests.support.runs import eqlab_cli, eqlab_run
from tests.support.servers import free_port

SCENARIOS = Path(__file__).parent / "load_scenarios"  # never imported here: locust would patch this process
CRASH_STATUS = 7  # load_scenarios/crashing.py's exit status
FAST = {
    "users": 4,
    "spawn_rate": 4,
    "duration": 2,
    "worker_connect_s": 20,
    "worker_finish_s": 10,
    "worker_silence_s": 10,
}


@pytest.fixture(scope="module")
def reference(demo_reference: DemoReference) -> str:
    return demo_reference.base_url


def child(config: dict[str, Any], env: dict[str, str] | None = None, stop: StopRequest | None = None) -> ChildRun:
    return run_locust(config, 60, stop or StopRequest(), env or {k: v for k, v in os.environ.items() if k != TOKEN_ENV})


def said(done: ChildRun) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_a_master_and_two_workers_make_one_result_judged_against_the_slos(reference: str, tmp_path: Path) -> None:
    plan = PLAN.replace("duration: 3}}", "duration: 3, workers: 2}}")
    outcome = run_text(
        tmp_path, plan.format(base_url=reference, p95=5000, environment="integration", key_file=DEMO_KEY)
    )
    assert not outcome.results.lab_errors, outcome.results.lab_errors
    stats = granted_load_statistics(outcome)
    assert stats["workers"] == 2 and [w["worker"] for w in stats["by_worker"]] == [1, 2]
    assert all(w["requests_sent"] > 0 for w in stats["by_worker"]), "both workers made load"
    assert stats["requests"] == sum(w["requests_sent"] for w in stats["by_worker"]), "the merge lost nothing"
    assert stats["failures"] == 0  # the workers' requests carried the token the lab handed down
    assert {"GET Patient/[id]", "POST Observation"} <= set(stats["by_request"])
    for written in outcome.run_dir.iterdir():
        if written.is_file():
            assert "eyJ" not in written.read_text(encoding="utf-8", errors="replace"), written.name


def test_load_workers_on_the_command_line_override_the_plan(tmp_path: Path) -> None:
    planned = {"users": 2, "workers": 3}
    assert load_config(planned, None, "http://127.0.0.1:1", tmp_path)["workers"] == 3
    assert load_config(planned, 2, "http://127.0.0.1:1", tmp_path)["workers"] == 2
    single = load_config(planned, 0, "http://127.0.0.1:1", tmp_path)
    assert single["workers"] == 0 and "worker_connect_s" not in single
    remote = load_config({"workers": 2, "master_bind": "0.0.0.0:5557"}, None, "http://127.0.0.1:1", tmp_path)
    assert remote["worker_connect_s"] > load_config(planned, None, "http://127.0.0.1:1", tmp_path)["worker_connect_s"]


def test_a_worker_that_crashes_ends_the_load_as_an_error_without_a_hang(reference: str, tmp_path: Path) -> None:
    plan = PLAN.replace("path: load/fhir", f"path: {SCENARIOS / 'crashing.py'}").replace("duration: 3", "duration: 30")
    began = time.monotonic()
    text = plan.format(base_url=reference, p95=5000, environment="integration", key_file=DEMO_KEY)
    done = eqlab_run(text, tmp_path, "--load-workers", "2")  # the plan has no workers: the option brings them
    assert time.monotonic() - began < 30, "the lab waited for the rest of the load"
    assert done.exit_code == 2, done.printed  # inconclusive: the SLOs were not measured
    results = done.results()
    (error,) = results["lab_errors"]
    assert error.startswith("load suite crashing.py could not be measured: load worker ")
    assert error.endswith(f"exited (status {CRASH_STATUS})")
    assert f"lab error: {error}" in done.printed
    assert all(s["measured"] is None and s["passed"] is None for s in results["slos"])
    assert not list(done.run_dir.glob("load-*.json"))


def test_load_workers_beyond_the_limit_are_a_usage_error(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        PLAN.format(base_url="http://127.0.0.1:9/fhir", p95=100, environment="integration", key_file=DEMO_KEY)
    )
    done = eqlab_cli("run", str(plan), "--load-workers", "65")
    assert done.exit_code == 2
    assert "Invalid value for '--load-workers': 65 is not in the range 0<=x<=64" in done.printed


def test_a_worker_that_hangs_ends_the_load_as_an_error(reference: str, tmp_path: Path) -> None:
    locustfile = tmp_path / "mine.py"  # a path of this test's own: its worker is told apart by it
    locustfile.write_text((SCENARIOS / "patients.py").read_text(encoding="utf-8"), encoding="utf-8")
    config: dict[str, Any] = {**FAST, "duration": 60, "workers": 1, "worker_silence_s": 2}
    config |= {"base_url": reference, "locustfile": str(locustfile)}
    finished: list[ChildRun] = []
    running = threading.Thread(target=lambda: finished.append(child(config)))
    running.start()
    (worker,) = _workers_of(locustfile, expected=1)
    _until_connected(worker, urlsplit(reference).port)  # to the target: the load is on
    worker.suspend()  # SIGSTOP: alive but silent, as a worker stuck in a tight loop or on a frozen machine
    running.join(timeout=30)
    assert not running.is_alive(), "the lab waited for the hung worker"
    assert said(finished[0])["error"] == f"1 load worker(s) ({socket.gethostname()}) sent no heartbeat for 2 s"


def test_a_worker_that_never_connects_ends_the_load_as_an_error(reference: str) -> None:
    config = {**FAST, "workers": 1, "master_bind": f"127.0.0.1:{free_port()}", "worker_connect_s": 2}
    done = child({**config, "base_url": reference, "locustfile": str(SCENARIOS / "patients.py")})
    assert done.exit_code == 3
    assert said(done)["error"] == "only 0 of 1 load workers connected to the master in 2 s"


def test_a_worker_refuses_a_target_that_is_not_loopback() -> None:
    config = {**FAST, "workers": 1, "base_url": "http://10.9.8.7:9/fhir", "locustfile": str(SCENARIOS / "patients.py")}
    done = child(config)
    assert done.exit_code == 3
    assert "refused the load: load only targets loopback addresses, not 10.9.8.7" in said(done)["error"]


def test_a_worker_started_elsewhere_gets_the_token_from_the_master(reference: str) -> None:
    """As on another machine: the operator's command, an environment without the token."""
    port = free_port()
    config = {**FAST, "workers": 1, "master_bind": f"127.0.0.1:{port}", "base_url": reference}
    locustfile = str(SCENARIOS / "patients.py")
    config["locustfile"] = locustfile
    token = system_token(reference, "eqlab-demo-system", DEMO_KEY, "system/*.cruds")
    bare = {k: v for k, v in os.environ.items() if k != TOKEN_ENV}
    command = [sys.executable, "-m", "eqlab.runner.load_worker", "--master", f"127.0.0.1:{port}"]
    worker = subprocess.Popen([*command, "--locustfile", locustfile], env=bare, stdout=subprocess.PIPE)
    try:
        done = child(config, env={**bare, TOKEN_ENV: token})
    finally:
        worker_out, _ = worker.communicate(timeout=10)
    stats = said(done)
    assert stats["workers"] == 1 and stats["requests"] == stats["by_worker"][0]["requests_sent"] > 0
    assert stats["failures"] == 0, stats["errors"]
    assert worker.returncode == 0 and token not in worker_out.decode()


# A worker whose process lets its other greenlets run between connecting and registering the lab's
# handlers, as a worker starved of CPU on a busy machine may: its message loop reads whatever the
# master sent by then, and locust drops a message it has no handler for.
SLOW_TO_LISTEN = """
import sys
import gevent
from locust.env import Environment
connect = Environment.create_worker_runner
def connect_then_wait(self, *args, **kwargs):
    runner = connect(self, *args, **kwargs)
    gevent.sleep(1.0)
    return runner
Environment.create_worker_runner = connect_then_wait
from eqlab.runner.load_worker import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_worker_slow_to_listen_after_connecting_still_gets_the_setup(reference: str) -> None:
    """The master sends its setup once the worker says it listens, not as soon as it connects: sent on
    connection, the setup reached this worker before its handler and was lost (30 s, then a lab error)."""
    port = free_port()
    config = {**FAST, "workers": 1, "master_bind": f"127.0.0.1:{port}", "base_url": reference}
    config["locustfile"] = locustfile = str(SCENARIOS / "patients.py")
    token = system_token(reference, "eqlab-demo-system", DEMO_KEY, "system/*.cruds")
    command = [sys.executable, "-c", SLOW_TO_LISTEN, "--master", f"127.0.0.1:{port}", "--locustfile", locustfile]
    worker = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        done = child(config, env={**os.environ, TOKEN_ENV: token})
    finally:
        worker.wait(timeout=10)
    stats = said(done)
    assert "error" not in stats, stats["error"]
    assert stats["workers"] == 1 and stats["requests"] > 0 and stats["failures"] == 0, stats


def test_a_worker_on_another_machine_refuses_a_loopback_target(reference: str) -> None:
    """From another machine, 127.0.0.1 is that machine: its load would measure nothing of the target."""
    network_address = _network_address()
    port = free_port()
    config = {**FAST, "workers": 1, "master_bind": f"0.0.0.0:{port}", "base_url": reference}
    config["locustfile"] = locustfile = str(SCENARIOS / "patients.py")
    command = [sys.executable, "-m", "eqlab.runner.load_worker", "--master", f"{network_address}:{port}"]
    worker = subprocess.Popen([*command, "--locustfile", locustfile], stdout=subprocess.DEVNULL)
    try:
        done = child(config)
    finally:
        worker.wait(timeout=10)
    assert "refused the load: the target 127.0.0.1 is a loopback address" in said(done)["error"]
    assert f"which reached the lab at {network_address}" in said(done)["error"]


def _network_address() -> str:
    """An IPv4 address of this machine that is not loopback (as another machine would reach it)."""
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family == socket.AF_INET and not address.address.startswith("127."):
                return str(address.address)
    pytest.skip("this machine has no network address besides loopback")


def test_stopping_the_run_stops_the_master_and_its_workers(reference: str, tmp_path: Path) -> None:
    locustfile = tmp_path / "mine.py"  # a path of this test's own: its workers are told apart by it
    locustfile.write_text((SCENARIOS / "patients.py").read_text(encoding="utf-8"), encoding="utf-8")
    config = {**FAST, "duration": 60, "workers": 2, "base_url": reference, "locustfile": str(locustfile)}
    stop = StopRequest()
    finished: list[ChildRun] = []
    running = threading.Thread(target=lambda: finished.append(child(config, stop=stop)))
    running.start()
    workers = _workers_of(locustfile, expected=2)
    stop.request(2)  # SIGINT, as a terminal's Ctrl-C reaches the lab
    running.join(timeout=15)
    assert not running.is_alive() and finished[0].exit_code is None
    _, alive = psutil.wait_procs(workers, timeout=5)
    assert not alive, "a load worker outlived the run"


def _until_connected(process: psutil.Process, port: int | None) -> None:
    ends = time.monotonic() + 30
    while not any(c.raddr and c.raddr.port == port for c in process.net_connections("tcp")):
        assert time.monotonic() < ends, "the worker never connected to the target"
        time.sleep(0.1)


def _workers_of(locustfile: Path, expected: int) -> list[psutil.Process]:
    ends = time.monotonic() + 20
    while time.monotonic() < ends:
        found = [p for p in psutil.process_iter(["cmdline"]) if str(locustfile) in (p.info["cmdline"] or [])]
        if len(found) >= expected:
            return found
        time.sleep(0.1)
    raise AssertionError(f"the {expected} load workers never started")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ("workers: two", "'workers' must be a whole number from 0 (one process) to 64, not 'two'"),
        ("workers: 65", "'workers' must be a whole number from 0 (one process) to 64, not 65"),
        ('master_bind: "0.0.0.0:5557"', "'master_bind' waits for workers started elsewhere: say how many in 'workers'"),
        ('workers: 2, master_bind: "nowhere"', "'master_bind' must be HOST:PORT (e.g. 0.0.0.0:5557), not 'nowhere'"),
    ],
)
def test_a_plan_with_bad_load_distribution_names_the_line_and_key(tmp_path: Path, params: str, message: str) -> None:
    plan = tmp_path / "plan.yaml"
    text = PLAN.replace("{{users: 4, spawn_rate: 4, duration: 3}}", "{{users: 4, " + params + "}}")
    plan.write_text(
        text.format(base_url="http://127.0.0.1:9/fhir", p95=100, environment="integration", key_file=DEMO_KEY)
    )
    with pytest.raises(SourceError) as caught:
        load_plan(plan, Catalogue.load(paths.catalogue_dir()), paths.suites_dir())
    assert f"{plan}:15:5: suites[0].params: {message}" in str(caught.value)
