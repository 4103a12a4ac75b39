"""The live progress display: what a user watches while a run works."""

from __future__ import annotations

import io

from rich.console import Console

from eqlab.pytest_plugin.events import Collected, CollectedItem, Event, ItemFinished, Stopping
from eqlab.results import ItemResult
from eqlab.runner.progress import RunProgress


def _screen(events: list[Event]) -> str:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100, color_system=None)
    with RunProgress(live=True, console=console) as progress:
        for event in events:
            progress(event)
        assert progress._bar is not None
        progress._bar.refresh()
    return out.getvalue()


def test_collecting_says_so_instead_of_an_unknown_count() -> None:
    screen = _screen([])
    assert "collecting checks…" in screen
    assert "0/?" not in screen and "0/None" not in screen


def test_once_collected_the_count_of_checks_shows() -> None:
    item = CollectedItem(id="a", name="A check", suite="contract", requirements=["fhir@1"])
    result = ItemResult(**item.model_dump(), outcome="pass")
    screen = _screen([Collected(items=[item, item.model_copy(update={"id": "b"})]), ItemFinished(result=result)])
    assert "1/2" in screen


def test_a_stop_request_is_acknowledged_on_screen() -> None:
    screen = _screen([Stopping(signal="SIGINT")])
    assert "SIGINT: stopping the checks" in screen
