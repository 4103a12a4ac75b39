"""Identity source rules (SPEC §3, client side: the feed ITI-104), judged on the Patients a client
run sent to the platform."""

from __future__ import annotations

import pytest

from eqlab.checks import ClientRun, Target
from suites.client.mpi.identity import (
    LOCAL_ID_PREFIX,
    NATIONAL_ID,
    ORGANIZATION_ID,
    PLATFORM_ID,
    SHOWN,
    PatientWrite,
    identifiers,
    local_system_code,
    matricule_problem,
    patient_writes,
    platform_ids_answered,
)
from suites.client.support import nothing_to_judge


def _writes(client_run: ClientRun, target: Target) -> list[PatientWrite]:
    writes = patient_writes(client_run, target)
    if not writes:
        nothing_to_judge("Patient write")
    return writes


def _report(client_run: ClientRun, problems: list[tuple[PatientWrite, str]]) -> str:
    shown = [f"{why}{w.where()}: {client_run.cite(w.request)}" for w, why in problems[:SHOWN]]
    more = [f"and {len(problems) - SHOWN} more"] if len(problems) > SHOWN else []
    return "; ".join(shown + more)


def _institution(resource: dict[str, object]) -> str | None:
    """The directory code of the managingOrganization, when the Patient names it by identifier."""
    organization = resource.get("managingOrganization")
    identifier = organization.get("identifier") if isinstance(organization, dict) else None
    if isinstance(identifier, dict) and identifier.get("system") == ORGANIZATION_ID and identifier.get("value"):
        return str(identifier["value"])
    return None


def _feed_problem(write: PatientWrite) -> str | None:
    if write.search is None:
        how = "a create (POST Patient)" if write.method == "POST" else "an update by id"
        return f"{how}, not the ITI-104 conditional update PUT Patient?identifier=<local-system>|<id>"
    keys = [value for name, value in write.search if name == "identifier"]
    if len(write.search) != 1 or len(keys) != 1 or "|" not in keys[0]:
        shown = "&".join(f"{k}={v}" for k, v in write.search)
        return f"the conditional update searches {shown!r}, not one identifier=<local-system>|<id>"
    system, value = keys[0].split("|", 1)
    code = local_system_code(system)
    if code is None:
        return f"keyed on {system}, not on a local id system {LOCAL_ID_PREFIX}<n>"
    institution = _institution(write.resource)
    if institution is None:
        return f"the Patient names no managingOrganization by identifier {ORGANIZATION_ID}|<n>"
    if institution != code:
        return f"keyed on institution {code}'s local system {system}, the Patient managed by institution {institution}"
    if (system, value) not in identifiers(write.resource):
        return f"the Patient does not carry the identifier {system}|{value} it is fed under"
    return None


@pytest.mark.requirement("mpi@60")
def test_feeds_are_conditional_updates_on_the_institutions_own_local_system(
    client_run: ClientRun, target: Target
) -> None:
    """PUT Patient?identifier=<own local system>|<id>, the Patient managed by that institution and carrying the id"""
    problems = [(w, why) for w in _writes(client_run, target) if (why := _feed_problem(w)) is not None]
    assert not problems, _report(client_run, problems)


@pytest.mark.requirement("mpi@61")
def test_every_matricule_sent_is_valid(client_run: ClientRun, target: Target) -> None:
    """each urn:oid:1.3.182.4.4 identifier: 13 digits, a birth date, Luhn and Verhoeff check digits"""
    sent = [
        (w, value)
        for w in _writes(client_run, target)
        for system, value in identifiers(w.resource)
        if system == NATIONAL_ID
    ]
    if not sent:
        nothing_to_judge("matricule")
    problems = [(w, f"invalid matricule {value} ({why})") for w, value in sent if (why := matricule_problem(value))]
    assert not problems, _report(client_run, problems)


def _missing_demographics(resource: dict[str, object]) -> list[str]:
    names = resource.get("name")
    named = isinstance(names, list) and any(
        isinstance(n, dict) and n.get("family") and isinstance(n.get("given"), list) and any(n["given"]) for n in names
    )
    missing = [] if named else ["name (family and given)"]
    return missing + [element for element in ("birthDate", "gender") if not resource.get(element)]


@pytest.mark.requirement("mpi@62")
def test_every_patient_fed_carries_name_birth_date_and_gender(client_run: ClientRun, target: Target) -> None:
    """a family and a given name, birthDate and gender on every Patient sent"""
    problems = [
        (w, f"no {', '.join(missing)}")
        for w in _writes(client_run, target)
        if (missing := _missing_demographics(w.resource))
    ]
    assert not problems, _report(client_run, problems)


def _person_keys(resource: dict[str, object]) -> set[tuple[str, str]]:
    """The identifiers naming one person in the index: the matricule and the local ids."""
    return {
        (system, value)
        for system, value in identifiers(resource)
        if value and (system == NATIONAL_ID or local_system_code(system) is not None)
    }


@pytest.mark.requirement("mpi@63")
def test_a_person_already_fed_is_updated_not_created_again(client_run: ClientRun, target: Target) -> None:
    """no plain POST Patient carrying a local id or matricule that an earlier accepted write already fed"""
    fed: dict[tuple[str, str], PatientWrite] = {}
    problems = []
    for write in _writes(client_run, target):
        keys = _person_keys(write.resource)
        again = sorted(keys & fed.keys())
        if write.method == "POST" and not write.conditional_create and again:
            first = fed[again[0]]
            problems.append(
                (
                    write,
                    f"created again with {again[0][0]}|{again[0][1]}, fed before by {client_run.cite(first.request)}",
                )
            )
        if write.accepted:
            for key in keys:
                fed.setdefault(key, write)
    assert not problems, _report(client_run, problems)


@pytest.mark.requirement("mpi@64")
def test_the_platform_id_is_never_sent_as_the_sources_own(client_run: ClientRun, target: Target) -> None:
    """no feed keyed on the platform id; a platform id sent is one the platform answered earlier"""
    answered: set[str] = set()
    problems = []
    writes = _writes(client_run, target)
    by_request = {w.request.n: [x for x in writes if x.request.n == w.request.n] for w in writes}
    for request in client_run.requests:
        for write in by_request.get(request.n, []):
            keys = [value for name, value in write.search or [] if name == "identifier"]
            if any(key.startswith(PLATFORM_ID + "|") for key in keys):
                problems.append((write, f"a feed keyed on the platform id ({PLATFORM_ID}), not on a local id"))
            invented = sorted(v for s, v in identifiers(write.resource) if s == PLATFORM_ID and v not in answered)
            if invented:
                problems.append((write, f"platform id {invented[0]} sent, never answered by the platform"))
        answered |= platform_ids_answered(request.response_json)
    assert not problems, _report(client_run, problems)
