"""``eqlab serve --workers N``: N server processes on one store and one listening socket.

One uvicorn process runs Python on one core at a time; a multi-core machine serves more with
several. The parent binds the socket once (so every worker accepts on the same port), runs the
application's startup once (migrations, terminology, demo data) and only then starts the workers,
each with an application whose startup finds everything in place: N workers never race to create
the same resources, and a store that cannot start fails once, before any worker exists.

The workers are supervised by uvicorn's own ``Multiprocess`` (what ``uvicorn --workers`` runs),
which is well tried, rather than by a hand-written loop: the workers are spawned (not forked:
nothing of the parent's engines, threads or event loop is inherited), SIGINT and SIGTERM stop them
all and wait for them, a worker that dies while serving is logged ("Child process [pid] died") and
replaced, and a worker that fails at startup stops the server, which then exits non-zero
(``STARTUP_FAILURE``), as the same failure would on every restart.

A serving process, one or each of N, freezes what its application's startup made (``gc.freeze``,
``frozen_after_startup``): Python's cyclic collector then no longer walks those objects at each of
its full collections, which stopped every request in flight.

This module knows ASGI and uvicorn, not the reference implementation: ``eqlab/cli.py`` hands it
the application, or its factory (picklable: the spawned workers build their own application).
"""

from __future__ import annotations

import asyncio
import functools
import gc
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from starlette.applications import Starlette
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

# How long a worker may take to answer the supervisor's ping before it counts as hung and is
# replaced. uvicorn's 5 s is shorter than a worker's start on a busy machine (importing the platform
# took 4 s with the 2 cores shared), which had workers replaced again and again before they served.
# A worker answers from a thread of its own, so a busy event loop does not delay the answer.
HEALTHCHECK_SECONDS = 60


def start_once(app: Starlette) -> None:
    """Run ``app``'s startup and shutdown once, in this process, before any worker starts."""

    async def startup_and_shutdown() -> None:
        async with app.router.lifespan_context(app):
            pass

    asyncio.run(startup_and_shutdown())


def frozen_after_startup(app: Starlette) -> Starlette:
    """``app``, whose startup ends by freezing every object the process holds then (``gc.freeze``).

    A started server holds a few hundred thousand long-lived objects (the FHIR definitions, compiled
    searches, caches) that are never garbage. Python's cyclic collector walked them all at each full
    collection: 110 ms every 1.2-1.4 s under load, every request in flight stopped meanwhile (the
    national flows' p99 was 119-172 ms; 26-67 ms frozen, docs/performance.md). Frozen, they are out
    of its reach, and a full collection walks only what came after. The garbage of the startup itself
    is collected first, not frozen with the rest.
    """
    started = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[Any]:
        async with started(app) as state:
            gc.collect()
            gc.freeze()
            yield state

    app.router.lifespan_context = lifespan
    return app


def serve_process(app: Starlette, listener: socket.socket) -> None:
    """Serve ``app`` on ``listener`` in this process until stopped."""
    config = uvicorn.Config(frozen_after_startup(app), log_level="info", access_log=False, lifespan="on")
    uvicorn.Server(config).run(sockets=[listener])


def _frozen_app(make_app: Callable[[], Starlette]) -> Starlette:
    return frozen_after_startup(make_app())


def serve_processes(make_app: Callable[[], Starlette], listener: socket.socket, workers: int) -> int:
    """Serve on ``listener`` with ``workers`` processes, each running ``make_app()``, until stopped.

    Returns the exit status: 0 when stopped by a signal, ``STARTUP_FAILURE`` when a worker could not
    start. ``make_app`` must pickle (a module-level function, or a ``functools.partial`` of one).
    """
    config = uvicorn.Config(
        functools.partial(_frozen_app, make_app),
        factory=True,
        workers=workers,
        log_level="info",
        access_log=False,
        lifespan="on",
        timeout_worker_healthcheck=HEALTHCHECK_SECONDS,
    )
    supervisor = Multiprocess(config, sockets=[listener])
    supervisor.run()
    failed = [process.pid for process in supervisor.processes if process.exitcode == STARTUP_FAILURE]
    return STARTUP_FAILURE if failed else 0
