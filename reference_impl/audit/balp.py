"""The audit trail: one BALP-shaped AuditEvent per access to patient data, refused attempts included.

IHE Basic Audit Log Patterns (BALP): a RESTful event (``type`` rest, ``subtype`` the interaction),
``action`` C/R/U/D/E, ``outcome`` 0/4/8, ``purposeOfEvent``, the requesting person and the client
application as ``agent``s, and the patient, the resources touched and (for a search) the query as
``entity``s. Events are stored as ordinary AuditEvent resources (so they are searchable by
``patient``, ``agent``, ``date``...), written in the same transaction as the access they record.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from sqlalchemy import Connection

from reference_impl.fhir.dates import now_instant
from reference_impl.fhir.searchparams import SearchParamRegistry
from reference_impl.naming import NATIONAL_ID
from reference_impl.store import resources as store

Action = Literal["C", "R", "U", "D", "E"]
Outcome = Literal["0", "4", "8", "12"]  # success, minor failure (refused), serious failure, major failure
SUCCESS: Outcome = "0"
REFUSED: Outcome = "4"
FAILED: Outcome = "8"
EVENT_TYPES = {
    "rest": ("http://terminology.hl7.org/CodeSystem/audit-event-type", "rest", "RESTful Operation"),
    "login": ("http://dicom.nema.org/resources/ontology/DCM", "110114", "User Authentication"),
}
INTERACTION_SYSTEM = "http://hl7.org/fhir/restful-interaction"
AGENT_TYPE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
PURPOSE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
BREAK_THE_GLASS = {"system": PURPOSE_SYSTEM, "code": "BTG", "display": "break the glass"}
OBSERVER = "eqlab reference platform"


class Agent(Protocol):
    """Who acted, as an AuditEvent names them (the authorization server's Principal is one)."""

    @property
    def client_id(self) -> str: ...
    @property
    def subject(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def jti(self) -> str: ...
    @property
    def person_id(self) -> str | None: ...
    @property
    def fhir_user(self) -> str | None: ...
    @property
    def purpose_of_use(self) -> str | None: ...
    @property
    def is_system(self) -> bool: ...


@dataclass(frozen=True)
class AuditRecord:
    """What happened, by whom, to what: the input of one AuditEvent."""

    action: Action
    subtype: str  # a RESTful interaction code (read, search-type...) or an auth step (token, authorize)
    outcome: Outcome
    description: str
    principal: Agent | None = None
    client_id: str | None = None  # when there is no valid token, the client that tried (if known)
    username: str | None = None  # when there is no valid token, the user that tried (if known)
    patients: tuple[str, ...] = ()  # "Patient/x" references
    entities: tuple[str, ...] = ()  # other resources touched
    query: str | None = None
    network_address: str | None = None
    request_id: str | None = None
    event_type: str = "rest"
    extra_agents: list[dict[str, object]] = field(default_factory=list)
    break_glass: bool = False  # an emergency access: labelled so the patient's access log shows it


def audit_event(record: AuditRecord, recorded: str) -> dict[str, object]:
    system, code, display = EVENT_TYPES[record.event_type]
    event: dict[str, object] = {
        "resourceType": "AuditEvent",
        "type": {"system": system, "code": code, "display": display},
        "subtype": [{"system": INTERACTION_SYSTEM if record.event_type == "rest" else system, "code": record.subtype}],
        "action": record.action,
        "recorded": recorded,
        "outcome": record.outcome,
        "outcomeDesc": record.description[:1000],
        "agent": _agents(record),
        "source": {
            "observer": {"display": OBSERVER},
            "type": [{"system": "http://terminology.hl7.org/CodeSystem/security-source-type", "code": "4"}],
        },
    }
    if record.break_glass:
        event["meta"] = {"security": [BREAK_THE_GLASS]}
    purpose = record.principal.purpose_of_use if record.principal else None
    if purpose:
        event["purposeOfEvent"] = [{"coding": [{"system": PURPOSE_SYSTEM, "code": purpose}]}]
    entities = _entities(record)
    if entities:
        event["entity"] = entities
    return event


def _agents(record: AuditRecord) -> list[dict[str, object]]:
    principal = record.principal
    person: dict[str, object] = {
        "type": {"coding": [{"system": AGENT_TYPE, "code": "IRCP", "display": "information recipient"}]},
        "requestor": True,
    }
    who: dict[str, object] = {}
    if principal is not None and not principal.is_system:
        if principal.fhir_user:
            who["reference"] = principal.fhir_user
        if principal.person_id:
            who["identifier"] = {"system": NATIONAL_ID, "value": principal.person_id}
        who["display"] = principal.subject
        person["role"] = [{"coding": [{"system": "urn:eqlab:subject-role", "code": principal.role}]}]
        person["policy"] = [principal.jti]
    elif record.username:
        who["display"] = record.username
    else:
        who["display"] = "unidentified caller" if principal is None else f"system client {principal.client_id}"
    person["who"] = who
    if record.network_address:
        person["network"] = {"address": record.network_address, "type": "2"}
    client_id = principal.client_id if principal else record.client_id
    agents = [person]
    if client_id:
        agents.append(
            {
                "type": {
                    "coding": [
                        {
                            "system": "http://dicom.nema.org/resources/ontology/DCM",
                            "code": "110150",
                            "display": "Application",
                        }
                    ]
                },
                "who": {"identifier": {"system": "urn:eqlab:client", "value": client_id}, "display": client_id},
                "requestor": principal is not None and principal.is_system,
            }
        )
    return [*agents, *record.extra_agents]


def _entities(record: AuditRecord) -> list[dict[str, object]]:
    entities: list[dict[str, object]] = [
        {
            "what": {"reference": ref},
            "type": {"system": ENTITY_TYPE, "code": "1"},
            "role": {"system": OBJECT_ROLE, "code": "1"},
        }
        for ref in dict.fromkeys(record.patients)
    ]
    entities += [
        {
            "what": {"reference": ref},
            "type": {"system": ENTITY_TYPE, "code": "2"},
            "role": {"system": OBJECT_ROLE, "code": "4"},
        }
        for ref in dict.fromkeys(record.entities)
        if ref not in record.patients
    ]
    if record.query is not None:
        query = base64.b64encode(record.query.encode()).decode()
        entities.append(
            {
                "type": {"system": ENTITY_TYPE, "code": "2"},
                "role": {"system": OBJECT_ROLE, "code": "24"},
                "query": query,
            }
        )
    if record.request_id:
        entities.append(
            {"type": {"system": ENTITY_TYPE, "code": "4"}, "description": f"X-Request-Id {record.request_id}"}
        )
    return entities


def write(conn: Connection, registry: SearchParamRegistry, record: AuditRecord) -> str:
    """Store the AuditEvent of ``record`` in the transaction of ``conn``; returns its id."""
    (res_id,) = write_all(conn, registry, [record])
    return res_id


def write_all(conn: Connection, registry: SearchParamRegistry, records: Sequence[AuditRecord]) -> list[str]:
    """Store the AuditEvents of ``records`` in the transaction of ``conn`` (one statement per table for
    all of them); returns their ids."""
    _, recorded = now_instant()
    events = [(audit_event(record, recorded), store.new_id()) for record in records]
    store.create_all(conn, registry, events)
    return [res_id for _, res_id in events]
