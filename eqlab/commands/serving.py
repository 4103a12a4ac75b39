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

This module knows ASGI and uvicorn, not the reference implementation: ``eqlab/cli.py`` hands it
the application factory (picklable: the spawned workers build their own application).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

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


def serve_processes(make_app: Callable[[], Starlette], listener: socket.socket, workers: int) -> int:
    """Serve on ``listener`` with ``workers`` processes, each running ``make_app()``, until stopped.

    Returns the exit status: 0 when stopped by a signal, ``STARTUP_FAILURE`` when a worker could not
    start. ``make_app`` must pickle (a module-level function, or a ``functools.partial`` of one).
    """
    config = uvicorn.Config(
        make_app,
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
