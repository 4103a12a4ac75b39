"""Group commit of the audit trail: the AuditEvents of many read-only accesses in one transaction.

A read changes nothing, so its AuditEvent need not share the read's transaction; but its answer
must not leave before the event is durable, or a crash in between would disclose patient data
without a trace. Each read hands its records to the ``AuditLog`` and waits. One writer at a time
commits everything waiting, so under load many requests share one commit (one WAL flush, one fsync
on PostgreSQL), as databases do for their own logs; a lone request is committed at once (no timer,
no added latency). A change (create, update, delete...) keeps its audit records in its own
transaction: the change and its trace commit together or not at all.

If the commit fails, every request of the group fails with it (an error answer, never data without
its audit record).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial

from sqlalchemy import Connection

from reference_impl.audit import balp
from reference_impl.audit.balp import AuditRecord
from reference_impl.fhir.searchparams import SearchParamRegistry
from reference_impl.store.database import Database


@dataclass
class _Group:
    """The records waiting on one event loop, and the task committing them."""

    waiting: list[tuple[Sequence[AuditRecord], asyncio.Future[None]]] = field(default_factory=list)
    committer: asyncio.Task[None] | None = None


class AuditLog:
    def __init__(self, db: Database, registry: SearchParamRegistry) -> None:
        self.db = db
        self.registry = registry
        # Per event loop: an app may be served from several loops in turn (tests, embedded servers).
        self._groups: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Group] = weakref.WeakKeyDictionary()

    async def record(self, records: Sequence[AuditRecord]) -> None:
        """Return once ``records`` are committed (raises what the commit raised)."""
        if not records:
            return
        loop = asyncio.get_running_loop()
        group = self._groups.setdefault(loop, _Group())
        committed: asyncio.Future[None] = loop.create_future()
        group.waiting.append((records, committed))
        if group.committer is None:
            group.committer = loop.create_task(self._commit_waiting(group))
        await asyncio.shield(committed)  # a caller that goes away does not take its records with it

    async def _commit_waiting(self, group: _Group) -> None:
        try:
            while group.waiting:
                taken, group.waiting = group.waiting, []
                records = [record for waiting, _ in taken for record in waiting]
                try:
                    await self.db.run_async(partial(self._write, records=records), write=True)
                except Exception as exc:  # every waiting request fails with its group
                    for _, committed in taken:
                        committed.set_exception(exc)
                else:
                    for _, committed in taken:
                        committed.set_result(None)
        finally:
            group.committer = None

    def _write(self, conn: Connection, records: list[AuditRecord]) -> None:
        balp.write_all(conn, self.registry, records)
