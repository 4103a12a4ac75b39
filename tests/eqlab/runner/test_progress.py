"""The live progress display: what a user watches while a run works."""

from __future__ import annotations

import io

from rich.console import Console

from eqlab.runner.progress import RunProgress


def _screen(events: list[dict[str, object]]) -> str:
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
    item = {"id": "a", "name": "A check", "requirements": ["fhir@1"], "outcome": "pass"}
    screen = _screen([{"event": "collected", "items": [item, {**item, "id": "b"}]},
                      {"event": "item_finished", "result": item}])  # fmt: skip
    assert "1/2" in screen


def test_a_stop_request_is_acknowledged_on_screen() -> None:
    screen = _screen([{"event": "stopping", "signal": "SIGINT"}])
    assert "SIGINT: stopping the checks" in screen
