"""The events of ``events.jsonl``: what the plugin (in the child pytest) tells the runner, one JSON line each.

The plugin writes them (``event_line``) as they happen; the runner follows the file as it grows and
reads each line back (``read_event``) into the same models. ``Stopping`` is the runner's own: its
listeners see it, the file never holds it.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from eqlab.results import ItemResult

EVENTS_FILE = "events.jsonl"  # in the run folder


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CollectedItem(Strict):
    """A check as collected, before it runs: enough to report it should it never finish."""

    id: str
    name: str
    suite: str
    requirements: list[str]


class Collected(Strict):
    event: Literal["collected"] = "collected"
    items: list[CollectedItem]


class CollectionError(Strict):
    """A suite's file or folder that could not be loaded: its checks are missing from ``Collected``."""

    event: Literal["collection_error"] = "collection_error"
    where: str
    message: str


class ItemStarted(Strict):
    event: Literal["item_started"] = "item_started"
    id: str


class ItemFinished(Strict):
    event: Literal["item_finished"] = "item_finished"
    result: ItemResult


class SessionFinished(Strict):
    event: Literal["session_finished"] = "session_finished"
    exitstatus: int


class Stopping(Strict):
    """The run was asked to stop (SIGINT, SIGTERM): the runner is stopping the child."""

    event: Literal["stopping"] = "stopping"
    signal: str | None


PluginEvent = Annotated[
    Collected | CollectionError | ItemStarted | ItemFinished | SessionFinished, Field(discriminator="event")
]
Event = PluginEvent | Stopping  # what the runner's listeners see
_PLUGIN_EVENT: TypeAdapter[PluginEvent] = TypeAdapter(PluginEvent)


class UnreadableEvent(ValueError):
    """A line of the event file that is no event: not JSON, an unknown kind, or a kind without its fields."""


def event_line(event: PluginEvent) -> str:
    return event.model_dump_json() + "\n"


def read_event(line: str) -> PluginEvent:
    try:
        return _PLUGIN_EVENT.validate_json(line)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'line'}: {e['msg']}" for e in exc.errors()[:3])
        raise UnreadableEvent(problems) from None
