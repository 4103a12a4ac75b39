"""Distributed load: one locust master, N workers (processes here, or on other machines), one result.

One Python process drives one core; a lab whose load generator saturates before the system under
test measures itself. So a load suite with ``workers: N`` (or ``eqlab run --load-workers N``) runs
a locust master in the load child and N workers, by default processes on this machine started by
the master and listening to it on loopback. Locust merges the workers' statistics at the master:
the SLOs are judged on that one merged result, exactly as for a single process.

With ``master_bind: HOST:PORT`` the master starts no worker: it listens there and waits for N
workers an operator starts elsewhere (``python -m eqlab.runner.load_worker --master HOST:PORT``).

Around locust's own protocol the lab adds a handshake of its own, so that nothing is left to hope:

* ``eqlab_listening`` (each worker -> master), once its handlers of the lab's messages are in place:
  locust drops a message its worker has no handler for, and a worker can register them only once
  connected, so the master sends nothing of its own before every worker has said this;
* ``eqlab_setup`` (master -> each worker): the target and the user classes; the worker refuses
  (``eqlab_refused``) a non-loopback target unless its own operator allowed one
  (``EQLAB_ALLOW_REMOTE_LOAD=1``), a loopback one when it reached the master over the network (the
  target would be its own machine), or a scenario it does not have; else answers ``eqlab_ready``;
* ``eqlab_token`` (master -> each ready worker started elsewhere): the access token, which this
  machine's workers inherit in their environment; a worker that refused never gets it;
* ``eqlab_finish`` (master -> each worker) at the end: the worker stops its users, sends its last
  statistics and then ``eqlab_finished`` with what it counted itself, so the master knows the merge
  is complete (the channel keeps each worker's messages in order).

A worker that exits, goes silent (no heartbeat for ``worker_silence_s``), refuses or never connects
ends the measurement with a ``LoadFailure`` naming it, within the configuration's time limits: never
a hang.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import gevent
import locust
from locust import User
from locust.env import Environment
from locust.exception import RPCError
from locust.rpc.protocol import Message
from locust.runners import HEARTBEAT_LIVENESS, MasterRunner

from eqlab.evidence.redaction import text as redacted
from eqlab.runner.load_locust import LoadFailure, summarize
from eqlab.runner.options import LOOPBACK, REMOTE_LOAD_ENV

TOKEN_ENV = "EQLAB_LOAD_ACCESS_TOKEN"  # the name eqlab.runner.load and the locustfiles use
SETUP, READY, REFUSED, TOKEN = "eqlab_setup", "eqlab_ready", "eqlab_refused", "eqlab_token"
LISTENING = "eqlab_listening"  # a worker's first word: its handlers of the lab's messages are in place
FINISH, FINISHED = "eqlab_finish", "eqlab_finished"
POLL_S = 0.1
SETUP_S = 30.0  # for connected workers to answer the setup
QUIT_S = 5.0  # for local workers to exit once told to quit
QUIT_AFTER_FAILURE_S = 1.0  # the same when one failed: a hung one will not quit
LAST_WORDS_S = 0.5  # for the messages of a worker that exited to arrive
OUTPUT_TAIL = 600  # characters of a failed worker's output quoted in the error


@dataclass
class LocalWorker:
    number: int
    process: subprocess.Popen[bytes]
    output: IO[bytes]  # standard output and error, read back when the worker fails

    def tail(self) -> str:
        self.output.seek(0)
        return redacted(self.output.read().decode(errors="replace").strip()[-OUTPUT_TAIL:])


@dataclass
class Handshake:
    """What the workers answered the lab, by locust client id."""

    listening: set[str] = field(default_factory=set)
    ready: set[str] = field(default_factory=set)
    refused: dict[str, str] = field(default_factory=dict)
    finished: dict[str, dict[str, int]] = field(default_factory=dict)
    reported: dict[str, int] = field(default_factory=dict)  # requests in the statistics each worker sent

    def on_listening(self, environment: Environment, msg: Message) -> None:
        self.listening.add(msg.node_id)

    def on_ready(self, environment: Environment, msg: Message) -> None:
        self.ready.add(msg.node_id)

    def on_refused(self, environment: Environment, msg: Message) -> None:
        self.refused[msg.node_id] = str(msg.data["why"])

    def on_finished(self, environment: Environment, msg: Message) -> None:
        self.finished[msg.node_id] = {"requests": int(msg.data["requests"]), "failures": int(msg.data["failures"])}

    def on_report(self, client_id: str, data: dict[str, Any]) -> None:
        self.reported[client_id] = self.reported.get(client_id, 0) + int(data["stats_total"]["num_requests"])


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise LoadFailure(f"'{address}' is not HOST:PORT")
    return host.strip("[]"), int(port)


@dataclass
class Crew:
    """The master's view of its workers while it waits: any failure among them ends the wait."""

    runner: MasterRunner
    local: list[LocalWorker]
    handshake: Handshake
    silence_s: float  # a worker without a heartbeat for this long is lost
    loading: int = 0  # how many workers carry the load, once it started

    def active(self) -> int:
        clients = self.runner.clients
        return len(clients.ready) + len(clients.spawning) + len(clients.running)

    def check(self) -> None:
        self._check_refusals()
        for worker in self.local:
            code = worker.process.poll()
            if code is not None:
                gevent.sleep(LAST_WORDS_S)  # its last messages may still be on their way
                self._check_refusals()
                said = worker.tail()
                raise LoadFailure(f"load worker {worker.number} exited (status {code})" + (f": {said}" if said else ""))
        if self.loading:
            self._check_lost()

    def _check_lost(self) -> None:
        """A worker that quit, or has been silent for ``silence_s``. Locust calls one that missed three
        heartbeats missing and lets it heal: a worker starved of CPU for a few seconds is no failure."""
        clients = self.runner.clients
        quit_ = self.loading - len(clients.all)
        silent = [c for c in clients.missing if HEARTBEAT_LIVENESS - c.heartbeat >= self.silence_s]
        if quit_ > 0:
            raise LoadFailure(f"{quit_} load worker(s) quit during the load")
        if silent:
            hosts = ", ".join(_host(c.id) for c in silent)
            raise LoadFailure(f"{len(silent)} load worker(s) ({hosts}) sent no heartbeat for {self.silence_s:.0f} s")

    def _check_refusals(self) -> None:
        if self.handshake.refused:
            client_id, why = next(iter(self.handshake.refused.items()))
            raise LoadFailure(f"load worker {_host(client_id)} refused the load: {why}")

    def wait_for(self, count: Callable[[], int], wanted: int, seconds: float, what: str) -> None:
        ends = time.monotonic() + seconds
        while count() < wanted:
            self.check()
            if time.monotonic() >= ends:
                raise LoadFailure(f"only {count()} of {wanted} load workers {what} in {seconds:.0f} s")
            gevent.sleep(POLL_S)

    def hold(self, seconds: float) -> None:
        ends = time.monotonic() + seconds
        while time.monotonic() < ends:
            self.check()
            gevent.sleep(POLL_S)


def run_master(env: Environment, config: dict[str, Any]) -> dict[str, Any]:
    expected = int(config["workers"])
    remote = config.get("master_bind") is not None
    host, port = split_address(str(config["master_bind"])) if remote else ("127.0.0.1", 0)
    try:
        runner = env.create_master_runner(master_bind_host=host, master_bind_port=port)
    except (RPCError, SystemExit) as exc:  # locust exits when the port is taken
        raise LoadFailure(f"the locust master could not listen on {host}:{port}: {exc or 'address in use'}") from None
    handshake = Handshake()
    for kind, listener in (
        (LISTENING, handshake.on_listening),
        (READY, handshake.on_ready),
        (REFUSED, handshake.on_refused),
        (FINISHED, handshake.on_finished),
    ):
        runner.register_message(kind, listener)
    env.events.worker_report.add_listener(handshake.on_report)  # type: ignore[no-untyped-call]
    local = [] if remote else _start_local_workers(expected, runner.server.port, config)
    crew = Crew(runner, local, handshake, float(config["worker_silence_s"]))
    duration = float(config["duration"])
    measured = False
    try:
        # Connected is not enough (eqlab_listening above): a CPU-starved worker lost the setup that way.
        crew.wait_for(
            lambda: len(handshake.listening), expected, float(config["worker_connect_s"]), "connected to the master"
        )
        runner.send_message(SETUP, {"host": env.host, "classes": [c.__name__ for c in env.user_classes]})
        crew.loading = crew.active()
        crew.wait_for(lambda: len(handshake.ready), crew.loading, SETUP_S, "answered the setup")
        if remote and os.environ.get(TOKEN_ENV):  # other machines' workers have no other way to get it
            for client_id in handshake.ready:
                runner.send_message(TOKEN, {"token": os.environ[TOKEN_ENV]}, client_id=client_id)
        runner.start(int(config["users"]), spawn_rate=float(config["spawn_rate"]))
        crew.hold(duration)
        runner.send_message(FINISH)
        wanted = crew.loading
        crew.loading = 0  # from here on workers leave, as they are told to
        crew.wait_for(
            lambda: len(handshake.finished), wanted, float(config["worker_finish_s"]), "sent their last statistics"
        )
        measured = True
    finally:
        runner.quit()  # tells every worker, here or elsewhere, to quit
        _stop_local_workers(crew.local, QUIT_S if measured else QUIT_AFTER_FAILURE_S)
    by_worker: list[dict[str, Any]] = [
        {
            "worker": runner.worker_indexes[client_id] + 1,
            "host": _host(client_id),
            "requests_sent": counts["requests"],
            "requests_reported": handshake.reported.get(client_id, 0),
        }
        for client_id, counts in sorted(handshake.finished.items(), key=lambda item: runner.worker_indexes[item[0]])
    ]
    return {**summarize(env.stats, duration), "workers": len(by_worker), "by_worker": by_worker}


def _host(client_id: str) -> str:
    """The machine of a locust client id (hostname_uuid)."""
    return client_id.rsplit("_", 1)[0]


def _start_local_workers(count: int, port: int, config: dict[str, Any]) -> list[LocalWorker]:
    """Worker processes on this machine. They inherit the environment (the access token: never on a
    command line) and stay in this process's group, so the lab's stop reaches them too."""
    command = [sys.executable, "-m", "eqlab.runner.load_worker", "--master", f"127.0.0.1:{port}"]
    command += ["--locustfile", str(Path(config["locustfile"]))]
    if config.get("scenario"):
        command += ["--scenario", str(config["scenario"])]
    workers = []
    for number in range(1, count + 1):
        output = tempfile.TemporaryFile()  # noqa: SIM115 - closed by _stop_local_workers
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        workers.append(LocalWorker(number, process, output))
    return workers


def _stop_local_workers(workers: list[LocalWorker], grace_s: float) -> None:
    """Told to quit, they get ``grace_s`` together to do so; then they are killed."""
    ends = time.monotonic() + grace_s
    for worker in workers:
        try:
            worker.process.wait(timeout=max(0.0, ends - time.monotonic()))
        except subprocess.TimeoutExpired:
            worker.process.kill()
            worker.process.wait()
        worker.output.close()


def run_worker(master: str, classes: list[type[User]]) -> None:
    """Be one worker of the master at ``master`` (HOST:PORT) until it says the load is over."""
    host, port = split_address(master)
    env = Environment(user_classes=classes, events=locust.events)  # as the master's (load_worker.run)
    counted = {"requests": 0, "failures": 0}

    def count(exception: BaseException | None = None, **_: Any) -> None:
        counted["requests"] += 1
        counted["failures"] += exception is not None

    env.events.request.add_listener(count)  # type: ignore[no-untyped-call]
    try:
        runner = env.create_worker_runner(host, port)
    except ConnectionError:
        raise LoadFailure(f"no locust master answered at {master}") from None

    def on_setup(environment: Environment, msg: Message) -> None:
        refusal = _refusal(msg.data, classes, host)
        if refusal:
            runner.send_message(REFUSED, {"why": refusal})
            runner.quit()
            return
        runner.send_message(READY)

    def on_token(environment: Environment, msg: Message) -> None:
        os.environ[TOKEN_ENV] = str(msg.data["token"])  # where the scenario reads it, as on the lab's machine

    def on_finish(environment: Environment, msg: Message) -> None:
        runner.stop()
        runner._send_stats()  # locust's own last report, before the lab's last word
        runner.send_message(FINISHED, dict(counted))

    runner.register_message(SETUP, on_setup)
    runner.register_message(TOKEN, on_token)
    runner.register_message(FINISH, on_finish)
    runner.send_message(LISTENING)
    runner.greenlet.join()


def _refusal(setup: dict[str, Any], classes: list[type[User]], master_host: str) -> str | None:
    target = urlsplit(str(setup["host"])).hostname or ""
    if target in LOOPBACK and master_host not in LOOPBACK:
        return (
            f"the target {target} is a loopback address: the lab's machine for the lab, this machine for this worker, "
            f"which reached the lab at {master_host}; give the lab the target's network address"
        )
    if target not in LOOPBACK and os.environ.get(REMOTE_LOAD_ENV) != "1":
        return (
            f"load only targets loopback addresses, not {target}; the operator of this worker "
            f"who means it sets {REMOTE_LOAD_ENV}=1"
        )
    missing = sorted(set(setup["classes"]) - {c.__name__ for c in classes})
    if missing:
        return f"this worker's locustfile has no {', '.join(missing)} (start it with the master's --locustfile)"
    return None
