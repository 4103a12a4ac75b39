"""Run the reference implementation inside another program (``eqlab demo``, tests) on loopback."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI

START_TIMEOUT_S = 60
GRACE_S = 3  # at exit, requests still running after this are cut (a stuck client must not hold us)


@contextmanager
def serve_in_thread(app: FastAPI, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve ``app`` with uvicorn from a thread on a free port; yields the FHIR base URL."""
    listener = socket.socket()
    listener.bind((host, 0))
    port = listener.getsockname()[1]
    config = uvicorn.Config(
        app, log_level="warning", lifespan="on", access_log=False, timeout_graceful_shutdown=GRACE_S
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True, name="eqlab-reference")
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    try:
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the embedded reference implementation did not start")
            time.sleep(0.01)
        yield f"http://{host}:{port}/fhir"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        listener.close()
