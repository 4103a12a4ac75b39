"""Only active practitioners act (dir@8-10): at sign-in, at token issue, and on writes that name who acted.

dir@8 signs in the plan's ``inactive_practitioner`` (a user whose practitioner the directory holds as
inactive). dir@9 needs a practitioner who becomes inactive after signing in: it signs in the plan's
``practitioner_to_deactivate``, marks the Practitioner or PractitionerRole the user is (the fhirUser of
its ID token) inactive with the system token, tries the code and the refresh token issued before, and
restores the resource as it was, whatever happened. dir@10 writes Observations naming practitioners
and roles of the check's own directory.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from eqlab.checks import EvidenceClient, LabTokens, TokenSet
from suites.contract.auth.support import (
    assert_oauth_refused,
    claims_of,
    location,
    pkce_pair,
    redirect_params,
    sign_in,
)
from suites.contract.directory.support import Directory, key, ref
from suites.contract.fhir_toolkit import (
    Resource,
    create,
    expressions,
    outcome_problems,
    read,
    shown,
    tag,
    update,
    updated,
)

INACTIVE_USER = "inactive_practitioner"
DEACTIVATED_USER = "practitioner_to_deactivate"


@pytest.mark.requirement("dir@8")
def test_an_inactive_practitioner_cannot_sign_in_and_is_told_why(
    auth_client: EvidenceClient, tokens: LabTokens
) -> None:
    """the plan's inactive practitioner, with the right password, gets no code, and the page says inactive"""
    back = sign_in(auth_client, tokens, {}, role=INACTIVE_USER)
    code = redirect_params(back).get("code")
    assert not code, (
        f"the inactive practitioner {tokens.config.user(INACTIVE_USER).username} signed in: the browser was sent to "
        f"{location(back)} with an authorization code; an inactive practitioner may not act on the platform"
    )
    assert "inactive" in back.text.lower(), (
        f"the sign-in of the inactive practitioner ended with {shown(back)}, a page that does not say the "
        "practitioner is inactive; expected the login page to say why the sign-in is refused"
    )


def fhir_user_of(grant: TokenSet) -> tuple[str, str]:
    """(type, id) of the Practitioner or PractitionerRole a practitioner's grant is for (its fhirUser)."""
    value: Any = None
    for token in (grant.id_token, grant.access_token):
        if token and value is None:
            value = claims_of(token, "the ID token" if token == grant.id_token else "the access token").get("fhirUser")
    assert isinstance(value, str) and value.count("/") >= 1, (
        "the practitioner's tokens name no fhirUser (asked with scope fhirUser): the check cannot tell which "
        "Practitioner or PractitionerRole to make inactive"
    )
    type_name, res_id = value.rstrip("/").split("/")[-2:]
    assert type_name in ("Practitioner", "PractitionerRole"), (
        f"the plan's {DEACTIVATED_USER} is {value}, not a Practitioner or PractitionerRole"
    )
    return type_name, res_id


def token_request(auth_client: EvidenceClient, tokens: LabTokens, form: dict[str, str]) -> httpx.Response:
    """POST ``form`` to the token endpoint as the login client of the plan's ``practitioner_to_deactivate``."""
    data, headers = dict(form), {"Accept": "application/json"}
    url = str(tokens.smart["token_endpoint"])
    tokens.config.login_client_for(DEACTIVATED_USER).auth().apply(data, headers, url)
    return auth_client.post(url, data=data, headers=headers)


@pytest.mark.requirement("dir@9")
def test_no_token_for_a_practitioner_made_inactive(
    auth_client: EvidenceClient, fhir_client: EvidenceClient, tokens: LabTokens
) -> None:
    """after the practitioner's role is made inactive, neither a code nor a refresh token issued before gives tokens"""
    grant = tokens.user(DEACTIVATED_USER, fresh=True)
    assert grant.refresh_token, f"the grant of {DEACTIVATED_USER} came without a refresh token (offline_access)"
    verifier, challenge = pkce_pair()
    back = sign_in(auth_client, tokens, {"code_challenge": challenge}, role=DEACTIVATED_USER)
    code = redirect_params(back).get("code")
    assert code, f"signing {DEACTIVATED_USER} in (data this check needs) ended with {shown(back)}, without a code"
    type_name, res_id = fhir_user_of(grant)
    original = {k: v for k, v in read(fhir_client, type_name, res_id).items() if k != "meta"}
    updated(fhir_client, {**original, "active": False})
    try:
        client = tokens.config.login_client_for(DEACTIVATED_USER)
        redeemed = token_request(
            auth_client,
            tokens,
            {
                "grant_type": "authorization_code",
                "code": code,
                "code_verifier": verifier,
                "redirect_uri": client.redirect_uri,
            },
        )
        assert_oauth_refused(
            redeemed,
            f"redeeming a code of {DEACTIVATED_USER} after {type_name}/{res_id} was made inactive",
            "invalid_grant",
        )
        refreshed = token_request(
            auth_client, tokens, {"grant_type": "refresh_token", "refresh_token": grant.refresh_token}
        )
        assert_oauth_refused(
            refreshed,
            f"refreshing a grant of {DEACTIVATED_USER} after {type_name}/{res_id} was made inactive",
            "invalid_grant",
        )
    finally:
        restored = update(fhir_client, original)
        assert restored.status_code == 200, (
            f"restoring {type_name}/{res_id} as it was (PUT) answered {shown(restored)}: it may still be inactive"
        )


def observation(unique: str, performer: dict[str, Any]) -> Resource:
    return {
        "resourceType": "Observation",
        "identifier": [tag(unique)],
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}], "text": "Heart rate"},
        "performer": [performer],
    }


def assert_refused_naming_performer(response: httpx.Response, what: str) -> None:
    assert response.status_code == 422, (
        f"{what} answered {shown(response)}; expected 422 (only active practitioners act)"
    )
    problems = outcome_problems(response)
    assert not problems, f"{what} was refused with 422, but not with a proper OperationOutcome: {'; '.join(problems)}"
    named = expressions(response)
    assert any(e.startswith("Observation.performer") for e in named), (
        f"{what} was refused with issue.expression {named or 'missing'}; expected it to name Observation.performer"
    )


@pytest.mark.requirement("dir@10")
@pytest.mark.parametrize("who", ["inactive practitioner", "inactive role", "role of an inactive practitioner"])
def test_a_write_naming_an_inactive_practitioner_is_refused(fhir_client: EvidenceClient, unique: str, who: str) -> None:
    """an Observation whose performer is an inactive practitioner or role is refused with 422 naming the performer"""
    made = Directory.create(fhir_client, unique)
    named = {
        "inactive practitioner": made.inactive_practitioner,
        "inactive role": made.inactive_role,
        "role of an inactive practitioner": made.other_role,
    }[who]
    refused = fhir_client.post("Observation", json=observation(unique, ref(named)))
    assert_refused_naming_performer(refused, f"creating an Observation performed by {key(named)} ({who})")
    accepted = create(fhir_client, observation(unique, ref(made.role)))
    changed = update(fhir_client, {**accepted, "performer": [ref(named)]})
    assert_refused_naming_performer(changed, f"updating an Observation to be performed by {key(named)} ({who})")


@pytest.mark.requirement("dir@10")
def test_a_write_naming_an_active_practitioner_is_stored(fhir_client: EvidenceClient, unique: str) -> None:
    """the same Observation performed by an active practitioner, then by its active role, is stored"""
    made = Directory.create(fhir_client, unique)
    stored = create(fhir_client, observation(unique, ref(made.practitioner)))
    response = update(fhir_client, {**stored, "performer": [ref(made.role)]})
    what = f"updating an Observation to be performed by the active {key(made.role)}"
    assert response.status_code == 200, f"{what} answered {shown(response)}; expected 200"
