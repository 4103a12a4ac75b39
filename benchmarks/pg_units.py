"""What running a PostgreSQL unit of work from the server's event loop costs, by where it runs.

A request's units (its read, the audit group's commit) are synchronous functions of a connection
(ARCHITECTURE.md, "Units of work are synchronous functions"). From async code a PostgreSQL unit can
run in a worker thread (``anyio.to_thread``, what eqlab did first) or on the event loop's own thread
as a greenlet over psycopg's asyncio connection (SQLAlchemy's asyncio bridge: each wait on the network
yields to the loop), which is what ``Database.run_async`` does. The same one-query read unit, one at a
time and 16 at once, prints the client's CPU time per unit (what the server spends; PostgreSQL's own
work is the same for all) and the wall time:

* on the calling thread, blocking (``Database.run``: the floor, but it stops the loop while it waits);
* the bare hand-off to a worker thread and back, with no unit;
* the unit in a worker thread;
* the unit on the loop (``Database.run_async``).

    python -m benchmarks.pg_units [--units 3000] [--db postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import time
from collections.abc import Awaitable, Callable

import anyio.to_thread
from sqlalchemy import Connection

from reference_impl.store.database import Database
from reference_impl.store.driver import DriverStatement

ONE_ROW = DriverStatement("SELECT 1 WHERE 1 = ?")
CONCURRENT = 16


def read_unit(conn: Connection) -> object:
    return ONE_ROW.first(conn, (1,))


def cpu_s() -> float:
    used = resource.getrusage(resource.RUSAGE_SELF)
    return used.ru_utime + used.ru_stime


async def measure(label: str, call: Callable[[], Awaitable[object]], units: int, concurrent: int) -> None:
    async def caller(count: int) -> None:
        for _ in range(count):
            await call()

    await caller(200)  # warm: connections opened, statements prepared
    cpu, wall = cpu_s(), time.perf_counter()
    await asyncio.gather(*(caller(units // concurrent) for _ in range(concurrent)))
    done = units // concurrent * concurrent
    print(
        f"  {label:40s} {concurrent:3d} at once   CPU {1e6 * (cpu_s() - cpu) / done:5.0f} µs/unit"
        f"   wall {1e6 * (time.perf_counter() - wall) / done:5.0f} µs/unit"
    )


async def main(db: Database, units: int) -> None:
    async def blocking() -> object:
        return db.run(read_unit, write=False)

    async def hand_off_only() -> object:
        return await anyio.to_thread.run_sync(lambda: None)

    async def in_a_worker_thread() -> object:
        return await anyio.to_thread.run_sync(db.run, read_unit, False)

    async def on_the_loop() -> object:
        return await db.run_async(read_unit, write=False)

    await measure("blocking, on the calling thread", blocking, units, 1)  # 16 at once would wait in turn
    for concurrent in (1, CONCURRENT):
        await measure("hand-off to a worker thread, no unit", hand_off_only, units, concurrent)
        await measure("unit in a worker thread", in_a_worker_thread, units, concurrent)
        await measure("unit on the loop (Database.run_async)", on_the_loop, units, concurrent)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--units", type=int, default=3000)
    parser.add_argument("--db", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    database = Database(args.db)
    print(f"one-query read units on PostgreSQL, {args.units} per figure (client side: the server's share)")
    try:
        asyncio.run(main(database, args.units))
    finally:
        database.dispose()
