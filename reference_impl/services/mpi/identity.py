"""The patient index's rules on every Patient write (SPEC section 3, IHE PMIR ITI-104 feed).

A Patient's identifiers are the matricule (checked digit by digit), the platform id (assigned here)
and the local ids of institutions. A local id system ``urn:oid:1.3.182.2.4.2.<n>`` exists only while
the directory holds an active Organization with directory code ``<n>``: a feed from an institution
the directory does not know would put ids nobody can resolve into the index. Records of the same
person keep their own Patient resources (each institution updates its own) and share one platform
id, which is how PIXm finds all of them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from reference_impl.faults import declare
from reference_impl.fhir.errors import FhirError, Issue
from reference_impl.naming import LOCAL_ID_PREFIX, NATIONAL_ID, ORGANIZATION_ID, PLATFORM_ID
from reference_impl.rest.handler import Context
from reference_impl.services.mpi import matricule
from reference_impl.store import resources as store
from reference_impl.store.resources import StoredResource
from reference_impl.store.search_run import run_search

MATRICULE_LUHN_ONLY = declare(
    "matricule-luhn-only",
    "a matricule is checked by its Luhn digit only: a wrong Verhoeff digit or birth date passes",
    ("mpi@1",),
)
MATRICULE_UNCHECKED = declare("matricule-unchecked", "matricules are stored without any check", ("mpi@1",))
UNREGISTERED_SYSTEM_ACCEPTED = declare(
    "feed-unregistered-system-accepted",
    "Patients naming a local id system of no institution in the directory are stored",
    ("mpi@4",),
)
PERSON_SYSTEMS = "the matricule, the platform id and the local ids of registered institutions"
MAX_LINKED = 50  # records of one person looked at when linking; a person has a handful


def identifiers(patient: dict[str, Any]) -> list[dict[str, Any]]:
    return [i for i in patient.get("identifier") or () if isinstance(i, dict)]


def directory_code(system: str) -> str | None:
    """``<n>`` of a local id system ``urn:oid:1.3.182.2.4.2.<n>``, or None when ``system`` is not one."""
    if not system.startswith(LOCAL_ID_PREFIX):
        return None
    code = system[len(LOCAL_ID_PREFIX) :]
    return code if code.isascii() and code.isdigit() and len(code) <= 18 else ""


def is_registered(ctx: Context, system: str) -> bool:
    """Whether ``system`` is the local id system of an active institution of the directory.

    The platform's own lookup: the directory is read in full whatever the caller may read.
    """
    code = directory_code(system)
    if not code:
        return False
    return bool(search(ctx, "Organization", [("identifier", f"{ORGANIZATION_ID}|{code}"), ("active", "true")], 1))


def is_known_system(ctx: Context, system: str) -> bool:
    """A patient identifier domain of the platform: matricule, platform id or a registered local system."""
    return system in (NATIONAL_ID, PLATFORM_ID) or is_registered(ctx, system)


def search(ctx: Context, type_name: str, params: list[tuple[str, str]], count: int) -> list[StoredResource]:
    """Current resources matching ``params`` as the platform itself sees them (nothing hidden)."""
    request = ctx.parser().parse(type_name, params, strict=True)
    request.count = count
    return run_search(ctx.conn, request, with_total=False).matches


def token(identifier: dict[str, Any]) -> str:
    """``system|value`` as a token search value (commas escaped: a comma ORs values)."""
    return f"{identifier.get('system', '')}|{identifier.get('value', '')}".replace(",", "\\,")


def check_identifiers(ctx: Context, patient: dict[str, Any]) -> None:
    """Valid matricules and registered local systems only: 422 naming each faulty identifier."""
    issues = []
    for i, identifier in enumerate(identifiers(patient)):
        system, value = str(identifier.get("system", "")), str(identifier.get("value", ""))
        where = (f"Patient.identifier[{i}]",)
        if system == NATIONAL_ID and not ctx.faults.on(MATRICULE_UNCHECKED):
            why = matricule.luhn_problem(value) if ctx.faults.on(MATRICULE_LUHN_ONLY) else matricule.problem(value)
            if why is not None:
                issues.append(Issue(f"invalid matricule {value!r}: {why}", "value", expression=where))
        elif (
            directory_code(system) is not None
            and not ctx.faults.on(UNREGISTERED_SYSTEM_ACCEPTED)
            and not is_registered(ctx, system)
        ):
            issues.append(
                Issue(
                    f"the local id system {system} is not registered: a local system {LOCAL_ID_PREFIX}<n> needs an "
                    f"active Organization with identifier {ORGANIZATION_ID}|<n> in the directory",
                    "value",
                    expression=where,
                )
            )
    if issues:
        raise FhirError(422, issues)


def link_person(ctx: Context, patient: dict[str, Any]) -> None:
    """Give a Patient without a platform id the one of its person, or a new one.

    The person is found by the record's own earlier version, then by the records sharing its
    matricule or one of its local ids (the active ones first): each institution's record stays its
    own resource, and all of them carry the person's platform id.
    """
    own = identifiers(patient)
    if any(i.get("system") == PLATFORM_ID for i in own):
        return
    found = _platform_id_of(_earlier_version(ctx, patient)) or _platform_id_of_person(ctx, patient, own)
    patient["identifier"] = [*own, {"use": "official", "system": PLATFORM_ID, "value": found or str(uuid.uuid4())}]


def _earlier_version(ctx: Context, patient: dict[str, Any]) -> list[StoredResource]:
    interaction = ctx.interaction
    res_id = patient.get("id") or (interaction.res_id if interaction.type_name == "Patient" else None)
    current = store.current(ctx.conn, "Patient", res_id) if isinstance(res_id, str) else None
    return [current] if current is not None and current.content else []


def _platform_id_of_person(ctx: Context, patient: dict[str, Any], own: list[dict[str, Any]]) -> str | None:
    linking = [i for i in own if i.get("value") and _links(str(i.get("system", "")))]
    if not linking:
        return None
    records = [r for r in search(ctx, "Patient", [("identifier", ",".join(map(token, linking)))], MAX_LINKED)]
    others = [r for r in records if r.id != patient.get("id")]
    others.sort(key=lambda r: r.parsed().get("active") is False)
    return _platform_id_of(others)


def _links(system: str) -> bool:
    """Identifier systems that name one person: the matricule and the institutions' local ids."""
    return system == NATIONAL_ID or bool(directory_code(system))


def _platform_id_of(records: Iterable[StoredResource]) -> str | None:
    for record in records:
        for identifier in identifiers(record.parsed()):
            if identifier.get("system") == PLATFORM_ID and identifier.get("use") != "old" and identifier.get("value"):
                return str(identifier["value"])
    return None
