"""The tokens this server issues are the ones the FHIR API accepts (the resource server's side)."""

from __future__ import annotations

import httpx

from reference_impl.seed import accounts
from tests.reference_impl.auth.conftest import AuthLab, new_request_id, tagged
from tests.reference_impl.auth.flows import code_for, demo_system_key, redeem, system_client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Accept": "application/fhir+json"}


def test_a_system_token_reads_the_audit_event_of_a_refusal_over_fhir(lab: AuthLab, http: httpx.Client) -> None:
    rid = new_request_id()
    refused = http.post(
        lab.token_url, data={"grant_type": "client_credentials", "client_id": "nobody"}, headers=tagged(rid)
    )
    assert refused.status_code == 401
    with system_client(lab, accounts.SYSTEM_CLIENT, demo_system_key(), "ES384", "system/AuditEvent.rs") as client:
        token = client.fetch_token(lab.token_url, grant_type="client_credentials")["access_token"]
    bundle = http.get(f"{lab.fhir_base}/AuditEvent", params={"_count": "1000"}, headers=bearer(token))
    assert bundle.status_code == 200, bundle.text[:300]
    events = [e["resource"] for e in bundle.json().get("entry", []) if rid in str(e["resource"].get("entity", ""))]
    assert [e["outcome"] for e in events] == ["4"]


def test_a_patient_token_reads_the_patients_own_record_only(lab: AuthLab, http: httpx.Client) -> None:
    code, verifier, _ = code_for(lab, http)
    token = redeem(lab, http, code, verifier).json()["access_token"]
    assert http.get(f"{lab.fhir_base}/Patient/pat-0001", headers=bearer(token)).status_code == 200
    assert http.get(f"{lab.fhir_base}/Patient/pat-0002", headers=bearer(token)).status_code == 403
    assert http.get(f"{lab.fhir_base}/Patient/pat-0001").status_code == 401
