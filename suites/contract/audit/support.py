"""Reading the audit trail as BALP describes it, and telling a check's own events from everyone else's.

A check accesses data only it has (resources tagged with its ``unique`` value), then reads the
AuditEvents about that data recorded since the server's clock said the check started (``since``,
from the stored data's meta.lastUpdated: the lab's clock may differ from the platform's). Nothing here assumes
more about an AuditEvent than FHIR R4 and IHE BALP say: ``action``, ``outcome``, ``recorded``,
``entity.what`` references, base64 ``entity.query``, ``agent.who`` and ``requestor``, codes in
``agent.role``/``agent.type`` and ``purposeOfEvent``/``agent.purposeOfUse``.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from eqlab.checks import EvidenceClient, LabTokens
from suites.contract.fhir_toolkit import (
    Resource,
    entries,
    last_updated_of,
    pages,
    search,
)

Tokens = LabTokens  # what the ``tokens`` fixture gives
FAILURES = ("4", "8", "12")  # BALP/FHIR AuditEvent.outcome: minor, serious, major failure
SKEW = timedelta(seconds=5)
_REFERENCE = re.compile(r"(?:^|/)([A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")


def since(created: Resource) -> str:
    """A FHIR instant a little before ``created`` was stored, by the server's clock, for date=ge..."""
    stored = last_updated_of(created)
    try:
        when = datetime.fromisoformat(str(stored).replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        when = datetime.now(UTC) - timedelta(minutes=10)  # no usable lastUpdated: a wide window, the lab's clock
    return (when - SKEW).strftime("%Y-%m-%dT%H:%M:%SZ")


def trail_reader(tokens: Tokens, fhir_client: EvidenceClient) -> EvidenceClient:
    """Who reads the trail in checks of what it records: the plan's auditor, else its system client."""
    return tokens.client_for("auditor") if "auditor" in tokens.roles else fhir_client


def trail(client: EvidenceClient, **params: str) -> list[Resource]:
    """Every AuditEvent matching ``params`` (all pages)."""
    first = search(client, "AuditEvent", {**params, "_count": "200"})
    found = [e for bundle in pages(client, first, "the AuditEvent search") for e in entries(bundle)]
    return [e for e in found if e.get("resourceType") == "AuditEvent"]


def references(event: Resource) -> set[str]:
    """``Type/id`` of every entity.what reference (absolute or versioned references reduced)."""
    found = set()
    for entity in event.get("entity") or []:
        what = entity.get("what") if isinstance(entity, dict) else None
        match = _REFERENCE.search(str(what.get("reference", ""))) if isinstance(what, dict) else None
        if match:
            found.add(match.group(1))
    return found


def queries(event: Resource) -> list[str]:
    """The decoded entity.query values (BALP: base64 of the query)."""
    decoded = []
    for entity in event.get("entity") or []:
        value = entity.get("query") if isinstance(entity, dict) else None
        if isinstance(value, str):
            try:
                decoded.append(base64.b64decode(value + "=" * (-len(value) % 4)).decode("utf-8", "replace"))
            except (binascii.Error, ValueError):
                decoded.append(value)
    return decoded


def codes(*concepts: Any) -> set[str]:
    """Every code in Codings, CodeableConcepts or lists of them."""
    found: set[str] = set()
    for concept in concepts:
        if isinstance(concept, list):
            found |= codes(*concept)
        elif isinstance(concept, dict):
            if isinstance(concept.get("code"), str):
                found.add(concept["code"])
            found |= codes(concept.get("coding") or [])
    return found


def identifies(agent: Resource, value: str) -> bool:
    """The agent names ``value`` as its identifier, reference, display, altId or name."""
    who = agent.get("who")
    who = who if isinstance(who, dict) else {}
    identifier = who.get("identifier")
    identifier = identifier if isinstance(identifier, dict) else {}
    named = (identifier.get("value"), who.get("reference"), who.get("display"), agent.get("altId"), agent.get("name"))
    return value in named or any(isinstance(n, str) and n.endswith(f"/{value}") for n in named)


def agents(event: Resource) -> list[Resource]:
    return [a for a in event.get("agent") or [] if isinstance(a, dict)]


def purposes(event: Resource) -> set[str]:
    return codes(event.get("purposeOfEvent") or [], *[a.get("purposeOfUse") or [] for a in agents(event)])


def describe(events: list[Resource]) -> str:
    """A short account of ``events`` for assertion messages."""
    if not events:
        return "none"
    shown_ = [
        f"{e.get('action')}/{'+'.join(sorted(codes(e.get('subtype') or []))) or '-'} outcome {e.get('outcome')} "
        f"about {', '.join(sorted(references(e))) or 'nothing'}"
        for e in events[:6]
    ]
    return "; ".join(shown_) + (f" (and {len(events) - 6} more)" if len(events) > 6 else "")


def one_event(events: list[Resource], what: str) -> Resource:
    """The single event of ``events``: none or several is the failure (one access, one AuditEvent)."""
    assert len(events) == 1, f"{what}: found {len(events)} AuditEvents, expected exactly one ({describe(events)})"
    return events[0]


def shape_problems(event: Resource, action: str, outcomes: tuple[str, ...], started: str) -> list[str]:
    """What keeps ``event`` from being the BALP RESTful event of this access."""
    problems = []
    if "rest" not in codes(event.get("type")):
        problems.append(f"type is {event.get('type')!r}, not the RESTful operation (rest)")
    if event.get("action") != action:
        problems.append(f"action is {event.get('action')!r}, expected {action!r}")
    if event.get("outcome") not in outcomes:
        problems.append(f"outcome is {event.get('outcome')!r}, expected {' or '.join(outcomes)}")
    recorded = str(event.get("recorded", ""))
    if not recorded or recorded.replace("+00:00", "Z")[:19] < started[:19]:
        problems.append(f"recorded is {recorded!r}, not a time after the access began ({started})")
    return problems
