"""SQLite's write-ahead log copied into the database file from a thread of its own (``Database``'s
SQLite writer never checkpoints on commit)."""

from __future__ import annotations

import contextlib
import logging
import threading

from sqlalchemy import Engine

log = logging.getLogger(__name__)
CHECKPOINT_INTERVAL_S = 0.5
LOG_FRAMES_KEPT = 4096  # pages (16 MiB of 4 KiB pages) the log may hold before it is emptied
TRUNCATE_WAIT_MS = 100  # how long emptying the log waits for the readers inside it (writers wait meanwhile)


class WalCheckpointer:
    """Copies SQLite's write-ahead log into the database file from a thread of its own.

    SQLite checkpoints on the commit that makes the log long enough (every 1,000 pages), so one
    request in a few hundred paid for writing back and syncing everyone's pages: measured, that
    doubled the wall time of the audit trail's group commits. The writer no longer checkpoints;
    this thread does, every ``CHECKPOINT_INTERVAL_S`` once the store has been written to, in
    PASSIVE mode (never waiting for, nor holding up, a reader or the writer).

    A PASSIVE checkpoint writes pages back but never starts the log over: SQLite rewinds it only when
    a writer begins after a complete checkpoint with no reader still inside the log, and under steady
    load some reader always is. The log then grew without end, and every page read searched a longer
    log index: 1.4 GB of log for a 104 MB store after 6,000 access-log searches on SQLite, each costing
    2.1 ms of CPU at first and 3.3 ms by then (``benchmarks/fhir_core.py``'s reads grew the same way).
    So once the log holds more than ``LOG_FRAMES_KEPT`` pages, the round is a TRUNCATE checkpoint: it
    waits up to ``TRUNCATE_WAIT_MS`` for the readers inside the log to finish, holding writers back
    meanwhile, then empties the log (or leaves it to the next round).
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._starting = threading.Lock()

    def start(self) -> None:
        if self._thread is None:
            with self._starting:
                if self._thread is None and not self._stopped.is_set():
                    self._thread = threading.Thread(target=self._run, name="sqlite-wal-checkpoint", daemon=True)
                    self._thread.start()

    def checkpoint(self) -> None:
        with self._engine.connect() as conn:
            driver = conn.connection.dbapi_connection
            _, log_frames, _ = driver.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()  # type: ignore[union-attr]
            if log_frames > LOG_FRAMES_KEPT:
                # Writers wait while it waits for the readers: not for long (a slow search would hold up
                # every audited read's commit), and if the readers are not done by then, next round.
                patience = driver.execute("PRAGMA busy_timeout").fetchone()[0]  # type: ignore[union-attr]
                driver.execute(f"PRAGMA busy_timeout={TRUNCATE_WAIT_MS}")  # type: ignore[union-attr]
                try:
                    driver.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[union-attr]
                finally:
                    driver.execute(f"PRAGMA busy_timeout={int(patience)}")  # type: ignore[union-attr]

    def _run(self) -> None:
        while not self._stopped.wait(CHECKPOINT_INTERVAL_S):
            try:
                self.checkpoint()
            except Exception:  # a busy or vanished file: the next round tries again
                log.debug("WAL checkpoint failed", exc_info=True)

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with contextlib.suppress(Exception):
            self.checkpoint()  # leave the log written back
