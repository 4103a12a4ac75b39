"""A serving process freezes what its application's startup made (``serving.frozen_after_startup``)."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from eqlab.commands.serving import frozen_after_startup


class Held:
    """What a startup keeps for the process's life (definitions, caches)."""


def in_collected_generations(thing: object) -> bool:
    return any(thing is obj for generation in range(3) for obj in gc.get_objects(generation))


@pytest.fixture
def unfrozen_after() -> Iterator[None]:
    assert gc.get_freeze_count() == 0, "an earlier test left objects frozen"
    try:
        yield
    finally:
        gc.unfreeze()  # back to the oldest generation: the test process collects them as before


def app_holding(held: list[object]) -> Starlette:
    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        held.append(Held())
        yield

    async def frozen(_request: Request) -> JSONResponse:
        return JSONResponse({"frozen": gc.get_freeze_count(), "held_collected": in_collected_generations(held[0])})

    return Starlette(routes=[Route("/frozen", frozen)], lifespan=lifespan)


def served(app: Starlette) -> dict[str, object]:
    return asyncio.run(_served(app))


async def _served(app: Starlette) -> dict[str, object]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            answer: dict[str, object] = (await client.get("/frozen")).json()
            return answer


@pytest.mark.usefixtures("unfrozen_after")
def test_what_the_startup_made_is_out_of_the_collectors_reach_while_serving() -> None:
    held: list[object] = []
    answer = served(frozen_after_startup(app_holding(held)))
    assert answer["frozen"] > 0
    assert answer["held_collected"] is False  # frozen after the startup had made it, not before


@pytest.mark.usefixtures("unfrozen_after")
def test_an_application_served_otherwise_freezes_nothing() -> None:
    held: list[object] = []
    answer = served(app_holding(held))
    assert answer == {"frozen": 0, "held_collected": True}


@pytest.mark.usefixtures("unfrozen_after")
def test_the_startups_own_garbage_is_collected_not_frozen() -> None:
    collected: list[str] = []

    class Cycle:
        def __init__(self) -> None:
            self.me = self

        def __del__(self) -> None:
            collected.append("cycle")

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        Cycle()  # unreachable at once, but only the cyclic collector can free it
        yield

    async def start() -> None:
        app = frozen_after_startup(Starlette(lifespan=lifespan))
        async with app.router.lifespan_context(app):
            assert collected == ["cycle"]

    asyncio.run(start())
