"""``eqlab serve --workers N`` as a user runs it: N processes on one port and one store, stopped together."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager

import httpx
import psutil  # type: ignore[import-untyped]  # locust's own dependency
import pytest
from click.testing import CliRunner

from eqlab.cli import main
from eqlab.commands.serving import HEALTHCHECK_SECONDS
from tests.eqlab.test_cli import demo_patients
from tests.support.servers import ServerProcess

pytestmark = pytest.mark.slow

WORKERS = 2
PATIENT = {"resourceType": "Patient", "name": [{"family": "Parallel"}], "gender": "unknown"}
# uvicorn's supervisor pings each worker every 0.5 s; a worker killed after a ping was sent and before it
# answered is noticed only when that ping times out (HEALTHCHECK_SECONDS: the pipe stays open in the
# supervisor), then its replacement is started: a CI run saw no replacement 60 s after the kill.
REPLACED_WITHIN_S = HEALTHCHECK_SECONDS + 15


@contextmanager
def serving(db_url: str, *options: str) -> Iterator[ServerProcess]:
    served = ServerProcess(db_url, extra=("--workers", str(WORKERS), *options))
    served.start()
    try:
        yield served
    finally:
        served.stop()


@pytest.fixture
def server(db_url: str) -> Iterator[ServerProcess]:
    with serving(db_url, "--seed", "demo") as served:
        yield served


@pytest.fixture
def unseeded_server(sqlite_db_url: str) -> Iterator[ServerProcess]:
    with serving(sqlite_db_url) as served:
        yield served


def workers_of(server: ServerProcess) -> list[psutil.Process]:
    """The serving processes (multiprocessing also starts a resource tracker, which serves nothing)."""
    assert server.process is not None
    return [child for child in psutil.Process(server.process.pid).children() if "spawn_main" in command_line(child)]


def command_line(process: psutil.Process) -> str:
    try:
        return " ".join(process.cmdline())
    except psutil.Error:  # it exited meanwhile (a killed worker is a zombie until it is reaped)
        return ""


def accepted_by(workers: list[psutil.Process], port: int) -> set[int]:
    """The workers holding an accepted connection on ``port``: the ones answering requests."""
    return {
        worker.pid
        for worker in workers
        for connection in worker.net_connections("tcp")
        if connection.laddr and connection.laddr.port == port and connection.status == psutil.CONN_ESTABLISHED
    }


def stops_with_all_its_workers(server: ServerProcess, workers: list[psutil.Process]) -> None:
    assert server.process is not None
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=30) == 0, server.output()[-3000:]
    _, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive, f"orphaned workers: {alive}"


def test_workers_share_the_port_and_the_store_and_stop_together(server: ServerProcess) -> None:
    workers = workers_of(server)
    assert len(workers) == WORKERS, server.output()[-3000:]
    auth = {**server.auth(), "Accept": "application/fhir+json"}
    counted = httpx.get(f"{server.base}/Patient", params={"_summary": "count"}, headers=auth, timeout=30)
    assert counted.json()["total"] == demo_patients(), "seeded once, by the parent, before the workers started"

    with ExitStack() as clients:
        # Keep-alive clients writing and reading at once: each connection stays with the worker that
        # accepted it, so while they are open the workers' sockets show who served (no debug header).
        opened: list[httpx.Client] = []

        def write_then_read(client: httpx.Client) -> tuple[int, int]:
            created = client.post("Patient", json=PATIENT)
            read = client.get(f"Patient/{created.json()['id']}") if created.status_code == 201 else created
            return created.status_code, read.status_code

        deadline = time.monotonic() + 30
        while accepted_by(workers, server.port) != {w.pid for w in workers} and time.monotonic() < deadline:
            batch = [clients.enter_context(httpx.Client(base_url=server.base + "/", headers=auth)) for _ in range(8)]
            opened += batch
            with ThreadPoolExecutor(len(batch)) as pool:
                answers = list(pool.map(write_then_read, batch * 3))
            assert answers == [(201, 200)] * len(answers), "writes from both processes, reads of the other's"
        assert accepted_by(workers, server.port) == {w.pid for w in workers}, f"{len(opened)} connections"
        names = httpx.get(f"{server.base}/Patient", params={"family": "Parallel", "_summary": "count"}, headers=auth)
        assert names.json()["total"] == 3 * len(opened)

    assert all(worker.is_running() for worker in workers)
    stops_with_all_its_workers(server, workers)


def test_a_worker_that_dies_is_replaced(unseeded_server: ServerProcess) -> None:
    server = unseeded_server
    started = time.monotonic() + 60
    while server.output().count("Application startup complete.") < WORKERS:  # both serving: each answers pings
        assert time.monotonic() < started, server.output()[-3000:]
        time.sleep(0.2)
    first, second = workers_of(server)
    first.kill()
    deadline = time.monotonic() + REPLACED_WITHIN_S
    while {w.pid for w in workers_of(server)} in ({first.pid, second.pid}, {second.pid}):
        assert time.monotonic() < deadline, server.output()[-3000:]
        time.sleep(0.2)
    replacement = next(w for w in workers_of(server) if w.pid not in (first.pid, second.pid))
    assert f"Child process [{first.pid}] died" in server.output()
    for _ in range(10):
        assert httpx.get(f"{server.base}/metadata", timeout=30).status_code == 200
    stops_with_all_its_workers(server, [second, replacement])


@pytest.mark.parametrize("workers", ["0", "-1", "many", "65"])
def test_a_bad_number_of_workers_is_a_clear_error(workers: str) -> None:
    result = CliRunner().invoke(main, ["serve", "--workers", workers])
    assert result.exit_code == 2
    assert "Invalid value for '--workers'" in result.output
    assert "Traceback" not in result.output
