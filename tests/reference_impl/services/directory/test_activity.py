"""Only active practitioners act, over real HTTP with real tokens: the login page refuses an inactive
practitioner and says why, the token endpoint refuses a code or refresh token of a practitioner who
became inactive, and writes naming an inactive practitioner or role are refused with 422 naming the
element (by HTTP and inside a transaction)."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

import httpx
import pytest
from authlib.integrations.base_client.errors import OAuthError

from reference_impl.naming import PRACTITIONER_ID
from reference_impl.seed import accounts
from reference_impl.services.directory.acting import acting_elements
from tests.reference_impl.auth.conftest import new_request_id, tagged
from tests.reference_impl.auth.flows import Browser, form_of, practitioner_token, query_of, webapp_client
from tests.reference_impl.services.directory.conftest import FHIR_JSON, Platform

SCOPE = "openid fhirUser offline_access user/*.cruds"


def login_page(platform: Platform, http: httpx.Client, username: str, password: str, request_id: str) -> httpx.Response:
    with webapp_client(SCOPE) as client:
        url, _ = client.create_authorization_url(
            platform.lab.url("authorize"), code_verifier=secrets.token_urlsafe(48), aud=platform.lab.fhir_base
        )
    browser = Browser(http)
    page = browser.open(url)
    browser.headers = tagged(request_id)
    return browser.login(page, username, password)


def test_an_inactive_practitioner_cannot_sign_in_and_the_page_says_why(platform: Platform, http: httpx.Client) -> None:
    request_id = new_request_id()
    refused = login_page(platform, http, "retired1", accounts.PASSWORD_PREFIX + "retired1", request_id)
    assert refused.status_code == 403, refused.text
    assert "Practitioner/prac-retired, which is inactive in the provider directory" in refused.text
    assert "only active practitioners may act" in refused.text
    assert form_of(refused)[0].endswith("/login"), "the login form again, no consent page"
    event = platform.lab.refusal_event(request_id, "login")
    assert "inactive" in event["outcomeDesc"]
    wrong = login_page(platform, http, "retired1", "not-the-password", new_request_id())
    assert wrong.status_code == 401 and "inactive" not in wrong.text, "a wrong password learns nothing of the status"


def own_user(platform: Platform) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """A user of this test's own, a doctor acting as an active role of an active practitioner."""
    practitioner, role = platform.practitioner_with_role()
    username = f"dr-{uuid.uuid4().hex[:10]}"
    platform.lab.run(
        lambda conn: accounts.put_user(
            conn, username, accounts.PASSWORD_PREFIX + username, "doctor", fhir_user=f"PractitionerRole/{role['id']}"
        )
    )
    return username, practitioner, role


@pytest.mark.parametrize("made_inactive", ["role", "practitioner"])
def test_no_token_for_a_practitioner_made_inactive(platform: Platform, http: httpx.Client, made_inactive: str) -> None:
    username, practitioner, role = own_user(platform)
    password = accounts.PASSWORD_PREFIX + username
    with webapp_client(SCOPE) as client:
        verifier = secrets.token_urlsafe(48)
        url, _ = client.create_authorization_url(
            platform.lab.url("authorize"), code_verifier=verifier, aud=platform.lab.fhir_base
        )
        back = Browser(http).sign_in(url, username, password)
        grant = client.fetch_token(platform.lab.token_url, authorization_response=back, code_verifier=verifier)
        assert grant["refresh_token"]
        second_verifier = secrets.token_urlsafe(48)
        url, _ = client.create_authorization_url(
            platform.lab.url("authorize"), code_verifier=second_verifier, aud=platform.lab.fhir_base
        )
        second = Browser(http).sign_in(url, username, password)
        platform.set_active(role if made_inactive == "role" else practitioner, active=False)
        with pytest.raises(OAuthError, match="inactive in the provider directory") as redeemed:
            client.fetch_token(platform.lab.token_url, authorization_response=second, code_verifier=second_verifier)
        assert redeemed.value.error == "invalid_grant"
        with pytest.raises(OAuthError, match="inactive") as refreshed:
            client.refresh_token(platform.lab.token_url, refresh_token=grant["refresh_token"])
        assert refreshed.value.error == "invalid_grant"
    assert query_of(second)["code"]
    with httpx.Client(timeout=30) as browser:  # a new browser: the old one's session skips the login page
        again = login_page(platform, browser, username, password, new_request_id())
    assert again.status_code == 403 and "inactive" in again.text


def observation(**fields: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final", "code": {"text": "Heart rate"}, **fields}


def test_the_checked_elements_come_from_the_structure_definitions() -> None:
    elements = {t: {(e.name, e.actor) for e in found} for t, found in acting_elements().items()}
    assert elements["MedicationRequest"] == {("requester", False), ("performer", False), ("recorder", False)}
    assert ("performer", True) in elements["Procedure"] and ("asserter", False) in elements["Condition"]
    assert ("author", False) in elements["Composition"] and "Patient" not in elements


def test_a_practitioners_write_naming_an_inactive_practitioner_is_refused(
    platform: Platform, http: httpx.Client
) -> None:
    token = practitioner_token(platform.lab, http, "doctor1")
    headers = {"Authorization": f"Bearer {token}", **FHIR_JSON}
    fhir = platform.lab.fhir_base
    active_role = {"reference": "PractitionerRole/role-moved-chl"}
    cases = [
        ({"performer": [{"reference": "Practitioner/prac-retired"}]}, "Observation.performer[0]"),
        ({"performer": [active_role, {"reference": "PractitionerRole/role-moved-chem"}]}, "Observation.performer[1]"),
        ({"performer": [{"reference": f"{fhir}/PractitionerRole/role-retired"}]}, "Observation.performer[0]"),
        ({"performer": [{"identifier": {"system": PRACTITIONER_ID, "value": "200001"}}]}, "Observation.performer[0]"),
    ]  # fmt: skip
    for fields, expression in cases:
        refused = http.post(f"{fhir}/Observation", json=observation(**fields), headers=headers)
        assert refused.status_code == 422, refused.text
        [issue] = refused.json()["issue"]
        assert issue["expression"] == [expression] and "inactive" in issue["diagnostics"], issue
    stored = http.post(
        f"{fhir}/Observation",
        json=observation(performer=[{"reference": "PractitionerRole/role-moved-chl"}]),
        headers=headers,
    )
    assert stored.status_code == 201, stored.text
    changed = {**stored.json(), "performer": [{"reference": "Practitioner/prac-retired"}]}
    updated = http.put(f"{fhir}/Observation/{changed['id']}", json=changed, headers=headers)
    assert updated.status_code == 422 and updated.json()["issue"][0]["expression"] == ["Observation.performer[0]"]


def test_backbone_actors_and_transactions_are_checked_too(platform: Platform) -> None:
    procedure = {
        "resourceType": "Procedure",
        "status": "completed",
        "subject": {"reference": "Patient/pat-0001"},
        "performer": [
            {"actor": {"reference": "Practitioner/prac-moved"}},
            {"actor": {"reference": "PractitionerRole/role-retired"}},
        ],
        "recorder": {"reference": "PractitionerRole/role-moved-chem"},
    }  # fmt: skip
    refused = platform.client.post("Procedure", json=procedure, headers=FHIR_JSON)
    assert refused.status_code == 422, refused.text
    assert [i["expression"] for i in refused.json()["issue"]] == [
        ["Procedure.performer[1].actor"],
        ["Procedure.recorder"],
    ]
    marker = uuid.uuid4().hex
    good = observation(
        identifier=[{"system": "urn:test", "value": marker}], performer=[{"reference": "Practitioner/prac-moved"}]
    )
    bad = observation(
        identifier=[{"system": "urn:test", "value": marker}], performer=[{"reference": "Practitioner/prac-retired"}]
    )
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": r, "request": {"method": "POST", "url": "Observation"}} for r in (good, bad)],
    }
    answer = platform.client.post("", json=bundle, headers=FHIR_JSON)
    assert answer.status_code == 422 and "Observation.performer[0]" in answer.text, answer.text
    kept = platform.client.get("Observation", params={"identifier": f"urn:test|{marker}"}).json()
    assert kept["total"] == 0, "the whole transaction is rolled back"
