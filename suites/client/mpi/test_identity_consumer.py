"""Identity consumer rules (SPEC §3, client side: PIXm ITI-83, PDQm ITI-78, merged records), judged
on the queries a client run sent and on what it did after the platform's answers."""

from __future__ import annotations

import re
from typing import Any

import pytest

from eqlab.checks import ClientRequest, ClientRun, Target
from suites.client.mpi.identity import (
    ABSOLUTE_URI,
    SHOWN,
    base_path,
    link_parameters,
    names_patient,
    patient_searches,
    patients_answered,
    search_parameters,
)
from suites.client.support import nothing_to_judge

PIX_PARAMETERS = {"sourceIdentifier", "targetSystem", "_format"}
STRING_PARAMETERS = {"family", "given", "name", "address-postalcode"}
PDQM_PARAMETERS = STRING_PARAMETERS | {"birthdate", "gender", "identifier", "telecom", "active", "_id"}
RESULT_PARAMETERS = {"_count", "_sort", "_elements", "_summary", "_format"}
STRING_MODIFIERS = {"exact", "contains"}
IDENTIFYING = {"identifier", "_id", "family", "given", "name", "telecom"}  # what names the person sought


def _report(client_run: ClientRun, problems: list[tuple[ClientRequest, str]]) -> str:
    shown = [f"{why}: {client_run.cite(r)}" for r, why in problems[:SHOWN]]
    more = [f"and {len(problems) - SHOWN} more"] if len(problems) > SHOWN else []
    return "; ".join(shown + more)


def _pix_problem(request: ClientRequest) -> str | None:
    parameters = search_parameters(request)
    unknown = sorted({name for name, _ in parameters} - PIX_PARAMETERS)
    if unknown:
        return f"$ihe-pix with parameters {unknown} (PIXm knows {sorted(PIX_PARAMETERS)})"
    sources = [value for name, value in parameters if name == "sourceIdentifier"]
    if len(sources) != 1:
        return f"{len(sources)} sourceIdentifier parameters, not one"
    system, bar, value = sources[0].partition("|")
    if not bar or not value or not ABSOLUTE_URI.fullmatch(system):
        return f"sourceIdentifier={sources[0]!r} is not <system>|<value> with an absolute system URI"
    bad_targets = [
        v
        for name, value in parameters
        if name == "targetSystem"
        for v in value.split(",")
        if not ABSOLUTE_URI.fullmatch(v)
    ]
    if bad_targets:
        return f"targetSystem {bad_targets} is not an absolute URI"
    return None


@pytest.mark.requirement("mpi@70")
def test_pixm_queries_name_one_source_identifier_as_system_and_value(client_run: ClientRun, target: Target) -> None:
    """$ihe-pix: one sourceIdentifier=<system>|<value>, targetSystem URIs, no other parameter"""
    queries = client_run.where(path=re.escape(base_path(target)) + r"/Patient/\$ihe-pix")
    if not queries:
        nothing_to_judge("PIXm query ($ihe-pix)")
    problems = [(r, why) for r in queries if (why := _pix_problem(r)) is not None]
    assert not problems, _report(client_run, problems)


def _pdqm_problem(request: ClientRequest, paging: set[str]) -> str | None:
    problems = []
    for key, value in search_parameters(request):
        name, _, modifier = key.partition(":")
        if name in paging and not modifier:
            continue
        if name not in PDQM_PARAMETERS | RESULT_PARAMETERS:
            problems.append(f"unknown parameter {key}")
        elif modifier and (modifier not in STRING_MODIFIERS or name not in STRING_PARAMETERS):
            problems.append(f"modifier {key} (only :exact and :contains, on {sorted(STRING_PARAMETERS)})")
        elif not value:
            problems.append(f"empty {key}")
    return "; ".join(problems) or None


@pytest.mark.requirement("mpi@71")
def test_pdqm_searches_use_pdqm_parameters_and_modifiers(client_run: ClientRun, target: Target) -> None:
    """Patient searches: PDQm parameters, :exact/:contains on strings only, no empty value"""
    searches = patient_searches(client_run, target)
    if not searches:
        nothing_to_judge("Patient search")
    problems = [(r, why) for r in searches if (why := _pdqm_problem(r, link_parameters(client_run, r.n))) is not None]
    assert not problems, _report(client_run, problems)


@pytest.mark.requirement("mpi@72")
def test_every_patient_search_names_the_person_sought(client_run: ClientRun, target: Target) -> None:
    """a Patient search has an identifier, _id, a name or a telecom: never a fishing search"""
    searches = patient_searches(client_run, target)
    if not searches:
        nothing_to_judge("Patient search")
    fishing = [
        r for r in searches if not {key.partition(":")[0] for key, value in search_parameters(r) if value} & IDENTIFYING
    ]
    problems = [
        (r, f"a search for anybody ({'&'.join(f'{k}={v}' for k, v in search_parameters(r)) or 'no criterion'})")
        for r in fishing
    ]
    assert not problems, _report(client_run, problems)


def _replaced_by(patient: dict[str, Any]) -> str | None:
    """The id of the replacing Patient when ``patient`` was merged away (active=false, link replaced-by)."""
    if patient.get("active") is not False:
        return None
    for link in patient.get("link") or []:
        other = link.get("other", {}).get("reference", "") if isinstance(link, dict) else ""
        if link.get("type") == "replaced-by" and (found := re.search(r"(?:^|/)Patient/([^/]+)$", str(other))):
            return found[1]
    return None


@pytest.mark.requirement("mpi@73")
def test_a_merged_patient_is_left_for_the_one_that_replaces_it(client_run: ClientRun, target: Target) -> None:
    """after a replaced-by Patient: no later request names it, and a read of it is followed to the replacing one"""
    read_by_id = re.escape(base_path(target)) + r"/Patient/([^/$][^/]*)"
    merged = [
        (request, str(patient.get("id", "")), replacing)
        for request in client_run.requests
        for patient in patients_answered(request)
        if (replacing := _replaced_by(patient)) is not None and patient.get("id")
    ]
    if not merged:
        nothing_to_judge("Patient merged away (active=false, link replaced-by)")
    problems = []
    for answer, old, new in merged:
        later = [r for r in client_run.requests if r.scenario == answer.scenario and r.n > answer.n]
        still = [r for r in later if names_patient(r, old)]
        if still:
            problems.append(
                (
                    still[0],
                    f"Patient/{old} used again after {client_run.cite(answer)} said it is replaced by Patient/{new}",
                )
            )
        read = re.fullmatch(read_by_id, answer.path)
        if answer.method == "GET" and read and read[1] == old and not any(names_patient(r, new) for r in later):
            problems.append((answer, f"Patient/{old} is replaced by Patient/{new}, which the client never asked for"))
    assert not problems, _report(client_run, problems)
