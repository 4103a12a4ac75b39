"""Which access tokens were revoked, known in each server process's memory on PostgreSQL.

Every request with a token asks whether it was revoked, and asking the store is a round trip: on
PostgreSQL about a quarter of the server's CPU for a small token-checked read (``benchmarks/fhir_core.py``,
the ValueSet read with and without a token). So each server process on a PostgreSQL store listens
(``LISTEN``) on the store's revocation channel, and a revocation notifies every process on the store
(``pg_notify``, delivered when the revoking transaction commits).

A process remembers the tokens it looked up and found issued and not revoked, and answers them from
memory until a revocation names them. Everything else is asked of the store, as on SQLite: a token
first seen (it must be one this server issued), and every token while the listener is not connected.
When it (re)connects it forgets what it remembered, since notifications may have been missed in between.

The process that revokes knows at once: the jtis are marked before its transaction commits (if that
rolls back, this process refuses a token that is still valid, never the reverse). Other processes know
when the notification arrives, within milliseconds on one machine. RFC 7009 (section 2.2) allows such
a propagation delay: a client must not use a token once its revocation was answered.

SQLite needs none of this: the store is in the process, and the lookup costs microseconds.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

CHANNEL_PREFIX = "eqlab_revoked_"
NOTIFY_PAYLOAD_BYTES = 7900  # PostgreSQL refuses a payload of 8,000 bytes or more
RECONNECT_S = 1.0
# How often the listener looks up from its wait to see whether it should stop: a server's shutdown waits
# up to this long for it. A look up is a timed-out select() on its idle socket, nothing sent to the store.
STOP_POLL_S = 0.05


def channel_for(schema: str | None) -> str:
    """The store's channel: one per schema (channels are per database, and names at most 63 bytes)."""
    return CHANNEL_PREFIX + hashlib.sha256((schema or "public").encode()).hexdigest()[:16]


def notify_payloads(jtis: Iterable[str]) -> list[str]:
    """``jtis`` as space-separated payloads, each small enough for one notification."""
    payloads: list[str] = []
    current = ""
    for jti in jtis:
        if current and len(current) + 1 + len(jti) > NOTIFY_PAYLOAD_BYTES:
            payloads.append(current)
            current = ""
        current = f"{current} {jti}" if current else jti
    if current:
        payloads.append(current)
    return payloads


class RevocationWatch:
    """The listener thread and what it lets this process answer from memory."""

    def __init__(self, connect: Callable[[], psycopg.Connection[Any]], channel: str, capacity: int) -> None:
        self._connect = connect
        self.channel = channel
        self.capacity = capacity
        self._lock = threading.Lock()
        self._unrevoked: OrderedDict[str, int] = OrderedDict()  # jti -> when the token expires (epoch s)
        self._generation = 0  # moves on every revocation heard and every change of the listener's state
        self._live = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def live(self) -> bool:
        return self._live

    @property
    def generation(self) -> int:
        """Read before a lookup and handed to ``remember_unrevoked`` after it."""
        return self._generation

    def knows_unrevoked(self, jti: str) -> bool:
        with self._lock:
            return self._live and jti in self._unrevoked

    def remember_unrevoked(self, jti: str, expires_at: int, looked_up_at_generation: int) -> None:
        """Remember a lookup's "issued, not revoked", unless something was heard since it started
        (a revocation that committed after the lookup read the row must not be overwritten)."""
        with self._lock:
            if not self._live or self._generation != looked_up_at_generation:
                return
            while len(self._unrevoked) >= self.capacity:  # the oldest remembered goes: expired first
                self._unrevoked.popitem(last=False)  # O(1): a dict steps over its deleted keys to its first
            self._unrevoked[jti] = expires_at

    def revoked(self, jtis: Iterable[str]) -> None:
        with self._lock:
            self._generation += 1
            for jti in jtis:
                self._unrevoked.pop(jti, None)

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._listen, name="eqlab-revocations", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=STOP_POLL_S * 4)
            self._thread = None

    def _set_live(self, live: bool) -> None:
        with self._lock:
            self._live = live
            self._generation += 1
            self._unrevoked.clear()

    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                with self._connect() as conn:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
                    self._set_live(True)
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=STOP_POLL_S):
                            self.revoked(note.payload.split())
            except (psycopg.Error, OSError) as exc:
                log.warning(
                    "the revocation listener lost the store (%s); every token is looked up until it is back", exc
                )
            finally:
                self._set_live(False)
            self._stop.wait(RECONNECT_S)
