"""Access control and audit on the FHIR routes (SPEC section 2): tokens, scopes, compartment, trail."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import OctKey
from starlette.testclient import TestClient

from reference_impl.app import create_app
from reference_impl.auth.policy import Question, forbidden
from reference_impl.rest.handler import Context, FhirResponse, Operation
from reference_impl.settings import Settings
from tests.reference_impl.rest.helpers import JSON_HEADERS, assert_outcome
from tests.support.tokens import forge, mint

ORIGIN = "http://testserver"
PATIENT = {
    "sub": "patient1",
    "client_id": "eqlab-demo-portal",
    "subject_role": "patient",
    "scope": "patient/*.rs patient/Observation.c",
    "patient": "pat-0001",
    "fhirUser": "Patient/pat-0001",
    "purpose_of_use": "PATRQT",
}
DOCTOR = {
    "sub": "doctor1",
    "client_id": "eqlab-demo-webapp",
    "subject_role": "doctor",
    "scope": "user/*.cruds",
    "fhirUser": "PractitionerRole/role-001",
    "person_id": "1983081246785",
    "purpose_of_use": "TREAT",
}
AUDITOR = {
    "sub": "auditor",
    "client_id": "eqlab-demo-webapp",
    "subject_role": "auditor",
    "scope": "user/AuditEvent.rs",
    "fhirUser": None,
}


@dataclass
class Platform:
    client: TestClient
    app: Any

    def as_(self, token: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"} if token else {}

    def token(self, **claims: Any) -> str:
        return mint(self.app, ORIGIN, **{k: v for k, v in claims.items() if v is not None})

    def get(self, path: str, token: str | None, **params: Any) -> httpx.Response:
        return self.client.get(path, params=params, headers=self.as_(token))

    def audit(self, **params: Any) -> list[dict[str, Any]]:
        """AuditEvents (read with a system token), the trail's own reads left out."""
        bundle = self.get("AuditEvent", self.token(), _count=1000, **params).json()
        events = [e["resource"] for e in bundle.get("entry", [])]
        return [e for e in events if "/AuditEvent" not in e.get("outcomeDesc", "")]


@pytest.fixture
def platform(db_url: str) -> Iterator[Platform]:
    app = create_app(Settings(db_url=db_url, seed="demo"))
    with TestClient(app, base_url=f"{ORIGIN}/fhir/") as client:
        yield Platform(client, app)


def refused_events(platform: Platform) -> list[dict[str, Any]]:
    return platform.audit(outcome="4")


def test_no_token_is_401_with_a_challenge_and_audited(platform: Platform) -> None:
    response = platform.get("Patient/pat-0001", None)
    assert_outcome(response, 401, "login")
    assert response.headers["www-authenticate"].startswith('Bearer realm="eqlab", error="invalid_token"')
    (event,) = refused_events(platform)
    assert event["action"] == "R" and event["subtype"][0]["code"] == "read"
    assert event["entity"][0]["what"]["reference"] == "Patient/pat-0001"  # the patient sees the attempt


def _hs256_with_public_key(platform: Platform) -> str:
    jwks = platform.client.get(f"{ORIGIN}/auth/jwks").json()
    public = json.dumps(jwks["keys"][0], separators=(",", ":")).encode()
    claims = {
        "iss": f"{ORIGIN}/auth",
        "aud": f"{ORIGIN}/fhir",
        "exp": int(time.time()) + 300,
        "iat": int(time.time()),
        "jti": "hs",
        "client_id": "x",
        "sub": "x",
        "scope": "system/*.cruds",
        "subject_role": "system",
    }
    return jwt.encode({"alg": "HS256"}, claims, OctKey.import_key(public), algorithms=["HS256"])


def _alg_none(platform: Platform) -> str:
    header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    real = platform.token()
    return f"{header}.{real.split('.')[1]}."


def _tampered(platform: Platform) -> str:
    head, body, signature = platform.token().split(".")
    flipped = ("A" if signature[10] != "A" else "B").join([signature[:10], signature[11:]])
    return f"{head}.{body}.{flipped}"


def _revoked(platform: Platform) -> str:
    token = platform.token()
    server = platform.app.state.fhir
    jti = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "==="))["jti"]
    server.db.run(lambda conn: server.auth.revoke(conn, jti=jti), write=True)
    return token


ATTACKS = {
    "expired": (lambda p: forge(p.app, ORIGIN, now=int(time.time()) - 7200, lifetime=600), "expired"),
    "not yet valid": (lambda p: forge(p.app, ORIGIN, nbf=int(time.time()) + 3600), "not valid yet"),
    "bad signature": (_tampered, "signature"),
    "alg none": (_alg_none, "alg"),
    "HS256 with the public key": (_hs256_with_public_key, "alg"),
    "wrong audience": (lambda p: forge(p.app, ORIGIN, aud="http://other.example/fhir"), "audience"),
    "wrong issuer": (lambda p: forge(p.app, ORIGIN, iss="http://evil.example/auth"), "issuer"),
    "revoked": (_revoked, "revoked"),
    "unknown key": (lambda p: forge(p.app, ORIGIN, header={"kid": "nobody-knows"}), "kid"),
    "not a JWT": (lambda p: "not-a-token", "not a signed JWT"),
    "missing claims": (lambda p: forge(p.app, ORIGIN, subject_role=None), "subject_role"),
}


def test_bad_tokens_are_refused_and_each_refusal_is_audited(platform: Platform) -> None:
    """Every attack on one platform (a demo store takes 1-3 s to make): each refused, and audited once."""
    audited: set[str] = set()
    for attack, (make, reason) in ATTACKS.items():
        response = platform.get("Patient/pat-0002", make(platform))
        outcome = assert_outcome(response, 401)
        assert 'error="invalid_token"' in response.headers["www-authenticate"], attack
        assert reason in outcome["issue"][0]["diagnostics"], (attack, outcome)
        new = [e for e in refused_events(platform) if e["id"] not in audited]
        assert len(new) == 1, (attack, new)
        assert reason in new[0]["outcomeDesc"] and new[0]["outcome"] == "4", (attack, new[0])
        audited.add(new[0]["id"])


def test_a_scope_that_does_not_cover_the_interaction_is_403_insufficient_scope(platform: Platform) -> None:
    token = platform.token(scope="system/Observation.rs")
    response = platform.get("Patient/pat-0001", token)
    assert_outcome(response, 403)
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]
    write = platform.client.post(
        "Observation", json={"resourceType": "Observation"}, headers={**JSON_HEADERS, **platform.as_(token)}
    )
    assert write.status_code == 403
    assert len(refused_events(platform)) == 2
    v1 = platform.token(scope="system/*.read")  # SMART v1
    assert platform.get("Patient/pat-0001", v1).status_code == 200


def test_a_patient_reading_another_patient_learns_nothing(platform: Platform) -> None:
    token = platform.token(**PATIENT)
    assert platform.get("Patient/pat-0001", token).status_code == 200
    other = platform.get("Patient/pat-0002", token)
    nobody = platform.get("Patient/no-such-patient", token)
    assert other.status_code == nobody.status_code == 403
    assert other.json() == nobody.json()
    assert other.headers["www-authenticate"] == nobody.headers["www-authenticate"]
    assert {"Patient/pat-0002", "Patient/no-such-patient"} <= {
        e["entity"][0]["what"]["reference"] for e in refused_events(platform)
    }


def test_a_patient_searches_only_within_the_own_compartment(platform: Platform) -> None:
    token = platform.token(**PATIENT)
    own = platform.get("Observation", token).json()
    assert own["total"] == 3 and {e["resource"]["subject"]["reference"] for e in own["entry"]} == {"Patient/pat-0001"}
    assert platform.get("Observation", token, subject="Patient/pat-0002").status_code == 403
    assert platform.get("Patient", token).json()["total"] == 1
    with_gp = platform.get("Patient", token, _include="Patient:general-practitioner").json()
    assert {e["resource"]["resourceType"] for e in with_gp["entry"]} == {"Patient", "Practitioner"}  # directory data
    assert platform.get("Encounter", token, _revinclude="Observation:encounter").json()["total"] == 1
    assert platform.get("_history", token).status_code == 403
    assert platform.get("Observation/_history", token).status_code == 403


def test_a_patient_writes_only_about_themself(platform: Platform) -> None:
    token = platform.token(**PATIENT)
    observation = {"resourceType": "Observation", "status": "final", "code": {"text": "home blood pressure"}}
    headers = {**JSON_HEADERS, **platform.as_(token)}
    mine = platform.client.post(
        "Observation", json={**observation, "subject": {"reference": "Patient/pat-0001"}}, headers=headers
    )
    assert mine.status_code == 201
    theirs = platform.client.post(
        "Observation", json={**observation, "subject": {"reference": "Patient/pat-0002"}}, headers=headers
    )
    assert theirs.status_code == 403
    assert (
        platform.client.post("Patient", json={"resourceType": "Patient"}, headers=headers).status_code == 403
    )  # no .c scope


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_audit_events_are_append_only(platform: Platform, method: str) -> None:
    platform.get("Patient/pat-0001", platform.token())
    event = platform.audit(patient="Patient/pat-0001")[-1]  # the demo seed's load is in the trail too
    response = platform.client.request(
        method, f"AuditEvent/{event['id']}", json=event, headers={**JSON_HEADERS, **platform.as_(platform.token())}
    )
    assert_outcome(response, 405)
    assert response.headers["allow"] == "GET"  # an AuditEvent's URL supports reads only


def test_only_auditors_the_patient_and_systems_read_the_trail(platform: Platform) -> None:
    doctor, auditor, patient = platform.token(**DOCTOR), platform.token(**AUDITOR), platform.token(**PATIENT)
    assert platform.get("Patient/pat-0001", doctor).status_code == 200
    assert platform.get("AuditEvent", doctor).status_code == 403
    by_agent = platform.get(
        "AuditEvent", auditor, agent="PractitionerRole/role-001", date=f"ge{time.strftime('%Y-%m-%d')}"
    ).json()
    assert by_agent["total"] >= 1
    log = platform.get("AuditEvent", patient, patient="Patient/pat-0001").json()
    reads = [
        e["resource"]
        for e in log["entry"]
        if e["resource"]["agent"][0]["who"].get("reference") == "PractitionerRole/role-001"
    ]
    assert reads and reads[0]["purposeOfEvent"][0]["coding"][0]["code"] == "TREAT"
    assert platform.get("AuditEvent", patient, patient="Patient/pat-0002").status_code == 403


def test_every_access_to_patient_data_leaves_exactly_one_audit_event(platform: Platform) -> None:
    doctor, patient, system = platform.token(**DOCTOR), platform.token(**PATIENT), platform.token()
    before = len(platform.audit())
    script: list[tuple[str, str, str | None, str, str]] = []  # (who, action, patient, subtype, outcome)

    def done(who: str, action: str, patient_ref: str | None, subtype: str, outcome: str = "0") -> None:
        script.append((who, action, patient_ref, subtype, outcome))

    platform.get("Patient/pat-0001", doctor)
    done("doctor1", "R", "Patient/pat-0001", "read")
    platform.get("Observation", doctor, subject="Patient/pat-0002")
    done("doctor1", "E", "Patient/pat-0002", "search-type")
    created = platform.client.post(
        "Observation",
        json={
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "x"},
            "subject": {"reference": "Patient/pat-0003"},
        },
        headers={**JSON_HEADERS, **platform.as_(doctor)},
    ).json()
    done("doctor1", "C", "Patient/pat-0003", "create")
    platform.get(f"Observation/{created['id']}", system)
    done("system client eqlab-tests", "R", "Patient/pat-0003", "read")
    moved = {**created, "subject": {"reference": "Patient/pat-0002"}}
    platform.client.put(f"Observation/{created['id']}", json=moved, headers={**JSON_HEADERS, **platform.as_(doctor)})
    done("doctor1", "U", "Patient/pat-0003", "update")  # data moved off a record shows in its log
    done("doctor1", "U", "Patient/pat-0002", "update")
    back = [{"op": "replace", "path": "/subject/reference", "value": "Patient/pat-0003"}]
    patch_headers = {"Content-Type": "application/json-patch+json", **platform.as_(doctor)}
    platform.client.patch(f"Observation/{created['id']}", json=back, headers=patch_headers)
    done("doctor1", "U", "Patient/pat-0002", "patch")
    done("doctor1", "U", "Patient/pat-0003", "patch")
    platform.client.delete(f"Observation/{created['id']}", headers=platform.as_(doctor))
    done("doctor1", "D", "Patient/pat-0003", "delete")  # in the log of the patient whose data it was
    platform.get("Binary/bin-0001", system)  # a document's content: in the log of the document's patient
    done("system client eqlab-tests", "R", "Patient/pat-0001", "read")
    platform.get("Patient/pat-0001", patient)
    done("patient1", "R", "Patient/pat-0001", "read")
    platform.get("Patient/pat-0002", patient)
    done("patient1", "R", "Patient/pat-0002", "read", "4")
    platform.get("Organization/org-chl", doctor)  # not patient data: no audit event
    events = platform.audit()
    assert len(events) - before == len(script)
    recorded = [
        (
            e["agent"][0]["who"].get("display"),
            e["action"],
            next(
                (
                    x["what"]["reference"]
                    for x in e.get("entity", [])
                    if x.get("what", {}).get("reference", "").startswith("Patient/")
                ),
                None,
            ),
            e["subtype"][0]["code"],
            e["outcome"],
        )
        for e in events[before:]
    ]
    assert sorted(recorded, key=str) == sorted(script, key=str)
    purposes = {
        e["agent"][0]["who"].get("display"): e.get("purposeOfEvent", [{}])[0].get("coding", [{}])[0].get("code")
        for e in events[before:]
    }
    assert purposes["doctor1"] == "TREAT" and purposes["patient1"] == "PATRQT"


def test_a_failed_transaction_leaves_a_failure_event_and_nothing_else(platform: Platform) -> None:
    doctor = platform.token(**DOCTOR)
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"text": "ok"},
                    "subject": {"reference": "Patient/pat-0001"},
                },
                "request": {"method": "POST", "url": "Observation"},
            },
            {
                "resource": {"resourceType": "Observation", "status": "bogus", "code": {"text": "bad"}},
                "request": {"method": "POST", "url": "Observation"},
            },
        ],
    }
    assert platform.client.post("", json=bundle, headers={**JSON_HEADERS, **platform.as_(doctor)}).status_code == 400
    events = [e for e in platform.audit() if e["agent"][0]["who"].get("display") == "doctor1"]
    assert [(e["subtype"][0]["code"], e["outcome"]) for e in events] == [("batch", "4")]


def test_conformance_resources_are_public_but_a_bad_token_is_still_refused(platform: Platform) -> None:
    assert platform.get("metadata", None).status_code == 200
    assert platform.get("ValueSet", None).status_code == 200
    assert platform.get("ValueSet", "garbage").status_code == 401
    assert (
        platform.client.post(
            "ValueSet", json={"resourceType": "ValueSet", "status": "draft"}, headers=JSON_HEADERS
        ).status_code
        == 401
    )


# --- the extension points later services plug into -------------------------------------------------


def test_a_policy_rule_refuses_with_its_reason_and_the_refusal_is_audited(platform: Platform) -> None:
    """The care-relationship rule of the services goes in ``AccessPolicy.rules``: one place decides."""

    def treating_only_pat_0001(asked: Question) -> None:
        resource, type_name = asked.resource, asked.type_name
        if asked.principal.role == "doctor" and type_name == "Patient" and (resource or {}).get("id") != "pat-0001":
            raise forbidden("no care relationship with this patient", "access_denied")

    platform.app.state.fhir.policy.rules.append(treating_only_pat_0001)
    doctor = platform.token(**DOCTOR)
    assert platform.get("Patient/pat-0001", doctor).status_code == 200
    refused = assert_outcome(platform.get("Patient/pat-0002", doctor), 403)
    assert "no care relationship" in refused["issue"][0]["diagnostics"]
    (event,) = [e for e in refused_events(platform) if "Patient/pat-0002" in e["outcomeDesc"]]
    assert "no care relationship" in event["outcomeDesc"]
    assert platform.get("Patient/pat-0002", platform.token()).status_code == 200, "systems are not doctors"


def test_an_operation_runs_behind_the_same_token_check_and_audit(platform: Platform) -> None:
    def summary(ctx: Context) -> FhirResponse:
        assert ctx.interaction.res_id is not None
        ctx.policy.check_resource(ctx.access, "read", {"resourceType": "Patient", "id": ctx.interaction.res_id})
        return FhirResponse(200, {"resourceType": "Parameters", "parameter": [{"name": "ok", "valueBoolean": True}]})

    platform.app.state.fhir.add_operation(Operation("eqlab-summary", summary, "Patient", instance=True))
    assert_outcome(platform.get("Patient/pat-0001/$eqlab-summary", None), 401)
    answered = platform.get("Patient/pat-0001/$eqlab-summary", platform.token(**PATIENT))
    assert answered.status_code == 200 and answered.json()["resourceType"] == "Parameters"
    assert_outcome(platform.get("Patient/pat-0002/$eqlab-summary", platform.token(**PATIENT)), 403)
    assert_outcome(platform.get("Patient/pat-0001/$unknown", platform.token()), 404)
    used = [e for e in platform.audit() if "$eqlab-summary" in e["outcomeDesc"]]
    assert sorted(e["outcome"] for e in used) == ["0", "4", "4"], used  # success, no token, other patient


def test_a_token_already_used_is_refused_once_revoked(platform: Platform) -> None:
    token = platform.token()
    assert platform.get("Patient/pat-0002", token).status_code == 200  # verified and remembered
    server = platform.app.state.fhir
    jti = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "==="))["jti"]
    server.db.run(lambda conn: server.auth.revoke(conn, jti=jti), write=True)
    response = platform.get("Patient/pat-0002", token)
    assert "revoked" in assert_outcome(response, 401)["issue"][0]["diagnostics"]
