"""Side doors into other patients' data (issue 9): includes, chains, _has, conditional matching, the
audit trail, the bearer challenge and search values, over real HTTP with tokens from the server's
own endpoints, on SQLite and PostgreSQL.

Each test states what a caller must not learn, and first proves with a system token that the data
it must not learn exists (so a test cannot pass on an empty store). The demo seed: patient1 is
``pat-0001`` (Luc Hoffmann), patient2 ``pat-0002`` (Marc Schroeder, general practitioner
``prac-009``, encounter ``enc-0002`` with ``prac-009``), observations ``obs-<patient>-<n>``.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from reference_impl.seed import accounts
from tests.reference_impl.auth.conftest import AuthLab, new_request_id
from tests.reference_impl.auth.flows import code_for, demo_system_key, practitioner_token, redeem, system_client

PATIENT_SCOPE_RW = "openid fhirUser launch/patient patient/*.cruds"
FHIR_JSON = "application/fhir+json"


def _patient_token(lab: AuthLab, http: httpx.Client, scope: str = PATIENT_SCOPE_RW) -> str:
    code, verifier, _ = code_for(lab, http, scope=scope)
    answer = redeem(lab, http, code, verifier)
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["access_token"]
    return token


def _system_token(lab: AuthLab, scope: str = "system/*.cruds") -> str:
    with system_client(lab, accounts.SYSTEM_CLIENT, demo_system_key(), "ES384", scope) as client:
        token: str = client.fetch_token(lab.token_url, grant_type="client_credentials")["access_token"]
    return token


@pytest.fixture(scope="module")
def patient1(lab: AuthLab) -> str:
    with httpx.Client(timeout=30) as http:
        return _patient_token(lab, http)


@pytest.fixture(scope="module")
def system(lab: AuthLab) -> str:
    return _system_token(lab)


@pytest.fixture
def api(lab: AuthLab) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=lab.fhir_base + "/", timeout=30, headers={"Accept": FHIR_JSON}) as client:
        yield client


def bearer(token: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **headers}


def resources(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text[:500]
    return [e["resource"] for e in response.json().get("entry", []) if e.get("search", {}).get("mode") != "outcome"]


def keys(found: list[dict[str, Any]]) -> set[str]:
    return {f"{r['resourceType']}/{r['id']}" for r in found}


def patients_named(resource: dict[str, Any]) -> set[str]:
    """Every Patient reference anywhere in ``resource`` (the Patient's own id for a Patient)."""
    text = json.dumps(resource)
    found = set(re.findall(r'"(Patient/[A-Za-z0-9.\-]+)"', text))
    if resource["resourceType"] == "Patient":
        found.add(f"Patient/{resource['id']}")
    return found


def comparable(response: httpx.Response, *ids: str) -> tuple[int, str, str]:
    """Status, challenge and body with the given ids and the request id blanked."""
    body = response.text
    for value in ids:
        body = body.replace(value, "<id>")
    body = re.sub(r'"(id|lastUpdated)":"[^"]*"', '"\\1":"-"', body)
    return response.status_code, response.headers.get("www-authenticate", ""), body


# --- 1 and 2: includes --------------------------------------------------------------------------

REVINCLUDES_OF_A_DOCTOR = [
    ("_id", "prac-009"),
    ("_revinclude", "Patient:general-practitioner"),
    ("_revinclude", "Encounter:participant"),
]


def test_revinclude_from_a_directory_type_shows_a_patient_only_the_own_record(
    api: httpx.Client, patient1: str, system: str
) -> None:
    everything = resources(api.get("Practitioner", params=REVINCLUDES_OF_A_DOCTOR, headers=bearer(system)))
    assert {"Patient/pat-0002", "Encounter/enc-0002"} <= keys(everything)  # the data exists
    seen = resources(api.get("Practitioner", params=REVINCLUDES_OF_A_DOCTOR, headers=bearer(patient1)))
    assert "Practitioner/prac-009" in keys(seen)
    assert all(patients_named(r) <= {"Patient/pat-0001"} for r in seen), keys(seen)


def test_revinclude_of_audit_events_shows_a_patient_only_the_own_events(
    lab: AuthLab, api: httpx.Client, patient1: str, system: str
) -> None:
    with httpx.Client(timeout=30) as http:
        doctor = practitioner_token(lab, http)  # PractitionerRole/role-001: the agent of its accesses
    assert api.get("Patient/pat-0002", headers=bearer(doctor)).status_code == 200
    params = [("_id", "role-001"), ("_revinclude", "AuditEvent:agent")]
    events = [r for r in resources(api.get("PractitionerRole", params=params, headers=bearer(system)))]
    assert any("Patient/pat-0002" in patients_named(e) for e in events if e["resourceType"] == "AuditEvent")
    seen = resources(api.get("PractitionerRole", params=params, headers=bearer(patient1)))
    assert all(patients_named(r) <= {"Patient/pat-0001"} for r in seen if r["resourceType"] == "AuditEvent")


INCLUDES_OF_A_PATIENT = [
    ("_revinclude", "Observation:subject"),
    ("_revinclude", "AuditEvent:patient"),
]


@pytest.mark.parametrize("who", ["patient", "system"])
def test_includes_never_reach_types_outside_the_tokens_scopes(
    lab: AuthLab, api: httpx.Client, system: str, who: str
) -> None:
    patient_id = "pat-0001" if who == "patient" else "pat-0002"
    params = [("_id", patient_id), *INCLUDES_OF_A_PATIENT]
    everything = resources(api.get("Patient", params=params, headers=bearer(system)))
    assert {r["resourceType"] for r in everything} == {"Patient", "Observation", "AuditEvent"}  # they exist
    if who == "patient":
        with httpx.Client(timeout=30) as http:
            narrow = _patient_token(lab, http, "openid fhirUser launch/patient patient/Patient.rs")
    else:
        narrow = _system_token(lab, "system/Patient.rs")
    assert api.get("Observation", headers=bearer(narrow)).status_code == 403  # not readable directly...
    answer = api.get("Patient", params=params, headers=bearer(narrow))
    assert [r["resourceType"] for r in resources(answer)] == ["Patient"]  # ...nor through an include
    warnings = [e["resource"] for e in answer.json()["entry"] if e["search"]["mode"] == "outcome"]
    said = " ".join(i["diagnostics"] for w in warnings for i in w["issue"])
    assert "_revinclude=Observation:subject" in said and "_revinclude=AuditEvent:patient" in said


# --- 3: chains and _has -------------------------------------------------------------------------


def test_a_chain_cannot_probe_another_patients_name(api: httpx.Client, patient1: str, system: str) -> None:
    marker = f"side-door-{uuid.uuid4().hex[:10]}"
    observation = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": marker},
        "subject": {"reference": "Patient/pat-0001"},
        "performer": [{"reference": "Patient/pat-0002"}],
    }
    created = api.post("Observation", json=observation, headers=bearer(patient1, **{"Content-Type": FHIR_JSON}))
    assert created.status_code == 201, created.text

    def total(token: str, family: str) -> int:
        params = {"code:text": marker, "performer:Patient.family": family}
        answer = api.get("Observation", params=params, headers=bearer(token))
        assert answer.status_code == 200, answer.text
        count: int = answer.json()["total"]
        return count

    assert (total(system, "Schroeder"), total(system, "Zzz")) == (1, 0)  # the chain works...
    assert total(patient1, "Schroeder") == total(patient1, "Zzz") == 0  # ...over what patient1 may read


def test_has_cannot_probe_another_patients_record(api: httpx.Client, patient1: str, system: str) -> None:
    def total(token: str, patient: str) -> int:
        answer = api.get("Practitioner", params={"_has:Encounter:participant:subject": patient}, headers=bearer(token))
        assert answer.status_code == 200, answer.text
        count: int = answer.json()["total"]
        return count

    assert total(system, "Patient/pat-0002") > 0 == total(system, "Patient/nobody-at-all")
    assert total(patient1, "Patient/pat-0002") == total(patient1, "Patient/nobody-at-all") == 0


def test_a_chain_into_a_type_outside_the_scopes_is_refused_by_scope(lab: AuthLab, api: httpx.Client) -> None:
    with httpx.Client(timeout=30) as http:
        token = _patient_token(lab, http, "openid fhirUser launch/patient patient/Observation.rs")
    answer = api.get("Observation", params={"subject:Patient.family": "Hoffmann"}, headers=bearer(token))
    assert answer.status_code == 403, answer.text
    assert "Patient" in answer.json()["issue"][0]["diagnostics"]


# --- 4: conditional interactions ----------------------------------------------------------------


def test_conditional_delete_tells_nothing_about_another_patient(api: httpx.Client, patient1: str) -> None:
    theirs = api.delete("Patient", params={"_id": "pat-0002"}, headers=bearer(patient1))
    nobodys = api.delete("Patient", params={"_id": "nobody-at-all"}, headers=bearer(patient1))
    assert theirs.status_code in (403, 404)
    assert comparable(theirs, "pat-0002") == comparable(nobodys, "nobody-at-all")


def test_conditional_create_tells_nothing_about_another_patient(api: httpx.Client, patient1: str) -> None:
    def attempt(patient: str) -> httpx.Response:
        observation = {"resourceType": "Observation", "status": "final", "code": {"text": "probe"}}
        observation["subject"] = {"reference": "Patient/pat-0001"}
        headers = bearer(patient1, **{"Content-Type": FHIR_JSON, "If-None-Exist": f"subject=Patient/{patient}"})
        return api.post("Observation", json=observation, headers=headers)

    theirs, nobodys = attempt("pat-0002"), attempt("nobody-at-all")
    assert comparable(theirs, "pat-0002") == comparable(nobodys, "nobody-at-all")


def test_conditional_update_tells_nothing_about_another_patient(api: httpx.Client, patient1: str) -> None:
    def attempt(observation_id: str) -> httpx.Response:
        observation = {"resourceType": "Observation", "status": "final", "code": {"text": "probe"}}
        observation["subject"] = {"reference": "Patient/pat-0001"}
        headers = bearer(patient1, **{"Content-Type": FHIR_JSON})
        return api.put("Observation", params={"_id": observation_id}, json=observation, headers=headers)

    theirs, nobodys = attempt("obs-0002-0"), attempt("nobody-at-all")
    assert theirs.status_code == nobodys.status_code, (theirs.text, nobodys.text)
    assert api.get("Observation/obs-0002-0", headers=bearer(patient1)).status_code == 403  # untouched, not theirs


def test_update_under_a_chosen_id_tells_nothing_about_another_patient(api: httpx.Client, patient1: str) -> None:
    def attempt(observation_id: str) -> httpx.Response:
        observation = {"resourceType": "Observation", "id": observation_id, "status": "final", "code": {"text": "x"}}
        observation["subject"] = {"reference": "Patient/pat-0001"}
        headers = bearer(patient1, **{"Content-Type": FHIR_JSON})
        return api.put(f"Observation/{observation_id}", json=observation, headers=headers)

    theirs, nobodys = attempt("obs-0002-0"), attempt(f"free-{uuid.uuid4().hex[:12]}")
    assert theirs.status_code == 403
    assert comparable(theirs, "obs-0002-0") == comparable(nobodys, nobodys.request.url.path.split("/")[-1])


# --- 5: the access log ---------------------------------------------------------------------------


def test_a_search_over_many_patients_writes_one_event_per_patient(lab: AuthLab, api: httpx.Client, system: str) -> None:
    rid = new_request_id()
    found = resources(api.get("Observation", params={"_count": "30"}, headers=bearer(system, **{"X-Request-Id": rid})))
    subjects = {r["subject"]["reference"] for r in found}
    assert len(subjects) > 1
    events = lab.audit_events(rid)
    named = [
        [
            e["what"]["reference"]
            for e in event["entity"]
            if e.get("what", {}).get("reference", "").startswith("Patient/")
        ]
        for event in events
    ]
    assert sorted(n for names in named for n in names) == sorted(subjects)  # each patient once...
    assert all(len(names) == 1 for names in named)  # ...in an event of its own
    for event, (patient,) in zip(events, named, strict=True):
        listed = {e["what"]["reference"] for e in event["entity"] if "what" in e} - {patient}
        assert listed <= {f"Observation/{r['id']}" for r in found if r["subject"]["reference"] == patient}
        assert any(e.get("query") for e in event["entity"])  # BALP: the query in each


def test_a_patients_log_shows_no_other_patient(api: httpx.Client, patient1: str, system: str) -> None:
    rid = new_request_id()
    api.get("Observation", params={"_count": "30"}, headers=bearer(system, **{"X-Request-Id": rid}))
    params = {"patient": "Patient/pat-0001", "_count": "1000"}
    log = [e for e in resources(api.get("AuditEvent", params=params, headers=bearer(patient1))) if rid in json.dumps(e)]
    assert len(log) == 1  # the system's search, as it concerns patient1...
    assert patients_named(log[0]) == {"Patient/pat-0001"}  # ...and nobody else


def test_no_client_writes_an_audit_event(lab: AuthLab, api: httpx.Client, patient1: str, system: str) -> None:
    marker = f"fake-{uuid.uuid4().hex}"
    fake = {
        "resourceType": "AuditEvent",
        "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest"},
        "recorded": "2026-01-01T00:00:00Z",
        "outcomeDesc": marker,
        "agent": [{"who": {"display": "someone"}, "requestor": True}],
        "source": {"observer": {"display": "x"}},
        "entity": [{"what": {"reference": "Patient/pat-0002"}}],
    }
    for token in (patient1, system):
        answer = api.post("AuditEvent", json=fake, headers=bearer(token, **{"Content-Type": FHIR_JSON}))
        assert answer.status_code == 403, answer.text
    log = api.get("AuditEvent", params={"patient": "Patient/pat-0002", "_count": "1000"}, headers=bearer(system))
    assert marker not in log.text


# --- 6: the bearer challenge ---------------------------------------------------------------------


def _token_with_header(header: dict[str, str]) -> str:
    encoded = base64.urlsafe_b64encode(json.dumps(header, ensure_ascii=False).encode()).rstrip(b"=").decode()
    return f"{encoded}.e30.c2ln"


CHALLENGE_PARAM = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


@pytest.mark.parametrize("alg", ["€", 'x", error="insufficient_scope', "x\r\nSet-Cookie: a=b"])
def test_a_hostile_token_header_gets_one_clean_challenge(api: httpx.Client, alg: str) -> None:
    answer = api.get("Patient/pat-0001", headers=bearer(_token_with_header({"alg": alg})))
    assert answer.status_code == 401, answer.text
    assert answer.json()["resourceType"] == "OperationOutcome"
    challenge = answer.headers["www-authenticate"]
    params = CHALLENGE_PARAM.findall(challenge)
    assert [v for k, v in params if k == "error"] == ["invalid_token"], challenge
    assert "set-cookie" not in answer.headers and all(" " <= c <= "~" for c in challenge)


# --- 7: one validation of values, same answer on both stores -------------------------------------


def test_an_impossible_time_zone_in_a_search_is_a_400(api: httpx.Client, system: str) -> None:
    answer = api.get("Patient", params={"birthdate": "1970-01-01T00:00:00+99:00"}, headers=bearer(system))
    assert answer.status_code == 400, answer.text
    assert answer.json()["resourceType"] == "OperationOutcome"
    fine = api.get("Patient", params={"birthdate": "1970-01-01T00:00:00+14:00"}, headers=bearer(system))
    assert fine.status_code == 200


@pytest.mark.parametrize(
    "reference",
    ["Practitioner/" + "a" * 65, "http://other.example/fhir/Practitioner/" + "a" * 65],
    ids=["relative", "absolute"],
)
def test_a_reference_id_longer_than_64_is_a_400_on_every_store(api: httpx.Client, system: str, reference: str) -> None:
    observation = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "long reference"},
        "performer": [{"reference": reference}],
    }
    answer = api.post("Observation", json=observation, headers=bearer(system, **{"Content-Type": FHIR_JSON}))
    assert answer.status_code == 400, answer.text
    assert answer.json()["issue"][0]["expression"] == ["Observation.performer[0].reference"]
    search = api.get("Observation", params={"performer": reference}, headers=bearer(system))
    assert search.status_code in (200, 400), search.text  # never a server error
