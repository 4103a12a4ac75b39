"""Document consumer rules (SPEC §5, client side: find ITI-67, retrieve ITI-68, care relationship,
refusals), judged on the requests a client run sent and on what it did after the platform's answers."""

from __future__ import annotations

import json
import re

import pytest

from eqlab.checks import ClientRequest, ClientRun, Target
from suites.client.dsp.documents import (
    WRITES,
    Listed,
    base_path,
    documents_listed,
    fhir_path,
    names,
    reference_key,
    report,
    resources_answered,
    subject_key,
    token_purpose,
)
from suites.client.support import nothing_to_judge, token_requests

PURPOSES = {"TREAT", "EMERGENCY"}
PATIENT_PARAMETERS = {"patient", "subject"}
REFUSED = (403, 404)


def _searches(client_run: ClientRun, target: Target) -> list[ClientRequest]:
    """DocumentReference searches: ``GET DocumentReference?…`` and ``POST DocumentReference/_search``."""
    base = re.escape(base_path(target))
    return client_run.where(
        keep=lambda r: (
            (r.method == "GET" and re.fullmatch(rf"{base}/DocumentReference/?", r.path) is not None)
            or (r.method == "POST" and re.fullmatch(rf"{base}/DocumentReference/_search", r.path) is not None)
        )
    )


def _searched_patients(request: ClientRequest) -> set[str]:
    """The patients a search names (``Patient/<id>``, or the raw value of a chained search)."""
    found = set()
    for key, value in [*request.query, *(request.form or [])]:
        name = key.partition(":")[0].partition(".")[0]
        if name in PATIENT_PARAMETERS and value:
            found |= {reference_key(v if "/" in v else f"Patient/{v}") or v for v in value.split(",")}
    return found


@pytest.mark.requirement("dsp@70")
def test_documents_are_found_for_a_patient_with_a_purpose_of_use(client_run: ClientRun, target: Target) -> None:
    """DocumentReference searches name the patient, with a user's token granted for TREAT or EMERGENCY"""
    searches = _searches(client_run, target)
    if not searches:
        nothing_to_judge("DocumentReference search")
    problems = []
    for search in searches:
        if not _searched_patients(search):
            problems.append((search, "a document search naming no patient (patient= or subject=)"))
        purpose, why = token_purpose(client_run, search)
        if purpose not in PURPOSES:
            problems.append(
                (search, f"searched with {why or f'a token granted for {purpose}'}, not TREAT or EMERGENCY")
            )
    assert not problems, report(client_run, problems)


def _document_accesses(client_run: ClientRun, target: Target) -> list[tuple[ClientRequest, set[str]]]:
    """Each search or read of documents, with the patients it concerns (empty when not known)."""
    accesses = []
    searches = {r.n for r in _searches(client_run, target)}
    for request in client_run.requests:
        path = fhir_path(request, target)
        if path is None or request.method not in ("GET", "POST"):
            continue
        if request.n in searches:
            accesses.append((request, _searched_patients(request)))
        elif (
            request.method == "GET"
            and (key := reference_key(path))
            and key.split("/")[0] in ("DocumentReference", "Binary")
        ):
            listed = list(documents_listed(client_run, request.n))
            patients = {d.patient for d in listed if d.patient and (d.document == key or key in d.binaries)}
            accesses.append((request, patients))
    return accesses


def _care_teams_declared(client_run: ClientRun, target: Target, request: ClientRequest) -> set[str]:
    """The patients of the active CareTeams the client created, or found, before ``request`` in its scenario."""
    declared = set()
    for earlier in client_run.requests:
        if earlier.scenario != request.scenario or earlier.n >= request.n:
            continue
        path = fhir_path(earlier, target) or ""
        if not path.startswith("CareTeam") or earlier.status is None or not 200 <= earlier.status < 300:
            continue
        created = [earlier.json_body] if earlier.method in ("POST", "PUT") and not path.endswith("_search") else []
        for team in [*created, *resources_answered(earlier)]:
            if isinstance(team, dict) and team.get("resourceType") == "CareTeam" and team.get("status") == "active":
                declared |= {k for k in [subject_key(team)] if k}
    return declared


@pytest.mark.requirement("dsp@71")
def test_a_care_relationship_is_declared_before_reading(client_run: ClientRun, target: Target) -> None:
    """an active CareTeam for the patient, created or found in the scenario, before its documents are read"""
    accesses = _document_accesses(client_run, target)
    if not accesses:
        nothing_to_judge("document search or read")
    problems = []
    for access, patients in accesses:
        declared = _care_teams_declared(client_run, target, access)
        missing = sorted(patients - declared) if patients else ([] if declared else ["the patient"])
        if missing:
            problems.append((access, f"documents of {', '.join(missing)} read with no care relationship declared"))
    assert not problems, report(client_run, problems)


def _accept_admits(accept: str, media_type: str) -> bool:
    wanted = media_type.split(";", maxsplit=1)[0].strip().lower()
    for media_range in accept.split(","):
        essence, *parameters = (part.strip().lower() for part in media_range.split(";"))
        if any(p.replace(" ", "") in ("q=0", "q=0.0", "q=0.00", "q=0.000") for p in parameters):
            continue
        if essence in ("*/*", wanted) or (essence.endswith("/*") and wanted.startswith(essence[:-1])):
            return True
    return False


@pytest.mark.requirement("dsp@72")
def test_content_is_retrieved_with_its_media_type(client_run: ClientRun, target: Target) -> None:
    """GET Binary/<id> of a listed document: Accept admits the attachment's contentType"""
    problems, judged = [], 0
    for request in client_run.where("GET"):
        key = reference_key(fhir_path(request, target) or "")
        if key is None or not key.startswith("Binary/"):
            continue
        media_types = {d.binaries[key] for d in documents_listed(client_run, request.n) if d.binaries.get(key)}
        if not media_types:
            continue
        judged += 1
        accept = request.headers.get("accept", "*/*")
        if not any(_accept_admits(accept, media_type) for media_type in media_types):
            problems.append((request, f"Accept {accept!r} for a document of type {' or '.join(sorted(media_types))}"))
    if not judged:
        nothing_to_judge("retrieve (GET Binary/<id>) of a document the platform listed")
    assert not problems, report(client_run, problems)


def _same(request: ClientRequest, other: ClientRequest) -> bool:
    def shape(r: ClientRequest) -> tuple[str, str, list[tuple[str, str]], str, list[tuple[str, str]] | None]:
        return r.method, r.path, sorted(r.query), json.dumps(r.json_body, sort_keys=True), r.form

    return shape(request) == shape(other)


def _changes_the_decision(request: ClientRequest, target: Target, tokens: set[int]) -> bool:
    """A write to the FHIR API (a care relationship declared...) or a new token may change a 403."""
    path = fhir_path(request, target)
    is_write = path is not None and request.method in WRITES and not path.endswith("_search") and bool(path)
    return is_write or request.n in tokens


@pytest.mark.requirement("dsp@73")
def test_a_403_is_not_retried_as_if_transient(client_run: ClientRun, target: Target) -> None:
    """after a 403, the same request again only once a write or a new token came in between"""
    refused = [r for r in client_run.requests if r.status == 403 and fhir_path(r, target) is not None]
    if not refused:
        nothing_to_judge("403 answer of the FHIR API")
    tokens = {r.n for r in token_requests(client_run)}
    problems = []
    for answer in refused:
        for later in client_run.requests:
            if later.scenario != answer.scenario or later.n <= answer.n:
                continue
            if _changes_the_decision(later, target, tokens):
                break
            if _same(later, answer):
                problems.append((later, f"sent again after the 403 of {client_run.cite(answer)}"))
                break
    assert not problems, report(client_run, problems)


def _refused_documents(client_run: ClientRun, target: Target, answer: ClientRequest) -> set[str]:
    """The documents (and their Binaries) a 403/404 answer refused: the one read, or the one whose content it is."""
    key = reference_key(fhir_path(answer, target) or "")
    if answer.method != "GET" or answer.status not in REFUSED or key is None:
        return set()
    listed: list[Listed] = list(documents_listed(client_run, answer.n))
    if key.startswith("DocumentReference/"):
        return {key} | {b for d in listed if d.document == key for b in d.binaries}
    if key.startswith("Binary/"):
        return {key} | {d.document for d in listed if key in d.binaries}
    return set()


@pytest.mark.requirement("dsp@74")
def test_a_refused_document_is_never_used_again(client_run: ClientRun, target: Target) -> None:
    """after a 403/404 on a document or its content, no later request of the scenario names either"""
    refusals = [(r, gone) for r in client_run.requests if (gone := _refused_documents(client_run, target, r))]
    if not refusals:
        nothing_to_judge("document read or retrieve answered 403 or 404")
    problems = []
    for answer, gone in refusals:
        later = [r for r in client_run.requests if r.scenario == answer.scenario and r.n > answer.n]
        used = next(((r, k) for r in later for k in sorted(gone) if names(r, k)), None)
        if used:
            problems.append((used[0], f"{used[1]} used after {client_run.cite(answer)} refused it"))
    assert not problems, report(client_run, problems)
