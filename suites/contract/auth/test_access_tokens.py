"""Access tokens: ES256 JWTs verifiable with the JWKS, with the SPEC's claims (auth@19-21).

The lab reads the tokens it is given, as a resource server of the platform would: it verifies the
signature with the published JWKS and checks the claims against the discovery documents and the
user's own Patient resource (the person_id is the national identification number).
"""

from __future__ import annotations

import time

import pytest
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from eqlab.checks import EvidenceClient
from suites.contract.auth.support import JSON, Tokens, claims_of, jwt_parts
from suites.contract.fhir_toolkit import body_of, read, shown

NATIONAL_ID = "urn:oid:1.3.182.4.4"  # SPEC: the national identification number ("matricule")
LEEWAY_S = 300  # clock difference tolerated between the lab and the platform
CLAIMS = ("iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope")
CARE_PURPOSES = ("TREAT", "EMERGENCY")


def _jwks(auth_client: EvidenceClient, tokens: Tokens) -> JSON:
    response = auth_client.get(str(tokens.smart["jwks_uri"]))
    assert response.status_code == 200, f"GET jwks_uri answered {shown(response)}"
    return body_of(response, "the JWKS")


def _principals(tokens: Tokens) -> list[tuple[str, str]]:
    """(who, access token) for the system client and the plan's patient, newly issued so that the
    token responses are this check's evidence."""
    return [
        ("the system client", tokens.system(fresh=True)),
        ("the patient", tokens.user("patient", fresh=True).access_token),
    ]


@pytest.mark.requirement("auth@19")
def test_access_tokens_are_es256_jwts_that_verify_with_the_jwks(auth_client: EvidenceClient, tokens: Tokens) -> None:
    """access tokens are ES256 JWTs whose kid is in the JWKS and whose signature verifies with it"""
    jwks = _jwks(auth_client, tokens)
    published = {str(k.get("kid")): k for k in jwks.get("keys") or [] if isinstance(k, dict)}
    for who, token in _principals(tokens):
        header, _ = jwt_parts(token, f"the access token of {who}")
        assert header.get("alg") == "ES256", f"the access token of {who} is signed {header.get('alg')!r}, not ES256"
        kid = header.get("kid")
        assert kid in published, f"the access token of {who} names kid {kid!r}, which the JWKS does not hold"
        try:
            jwt.decode(token, KeySet.import_key_set({"keys": [published[str(kid)]]}), algorithms=["ES256"])
        except (JoseError, ValueError) as exc:
            raise AssertionError(
                f"the access token of {who} does not verify with key {kid} of the JWKS ({type(exc).__name__})"
            ) from None


@pytest.mark.requirement("auth@20")
def test_access_tokens_carry_the_registered_claims(tokens: Tokens) -> None:
    """access tokens carry iss, sub, aud (the FHIR base), exp, iat, jti, client_id and scope"""
    issuer, base, now = tokens.smart.get("issuer"), tokens.fhir_base.rstrip("/"), time.time()
    for who, token in _principals(tokens):
        claims = claims_of(token, f"the access token of {who}")
        missing = [c for c in CLAIMS if claims.get(c) in (None, "", [])]
        assert not missing, f"the access token of {who} lacks {', '.join(missing)}"
        assert claims["iss"] == issuer, f"the access token of {who} has iss {claims['iss']!r}; the issuer is {issuer!r}"
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        assert base in [str(a).rstrip("/") for a in audiences], (
            f"the access token of {who} has aud {claims['aud']!r}; expected the FHIR base URL {base}"
        )
        exp, iat = claims["exp"], claims["iat"]
        assert isinstance(exp, int) and isinstance(iat, int) and iat < exp, (
            f"the access token of {who} has iat {iat!r} and exp {exp!r}; expected integers (NumericDate), iat < exp"
        )
        assert iat <= now + LEEWAY_S < exp + 2 * LEEWAY_S, (
            f"the access token of {who} was issued at {iat} and expires at {exp}; the lab's clock says {int(now)}"
        )
    patient_claims = claims_of(tokens.user("patient").access_token)
    assert patient_claims["client_id"] == tokens.config.login_client_for("patient").client_id, (
        f"the patient's token names client_id {patient_claims['client_id']!r}, not the client it was issued to"
    )
    again = claims_of(tokens.system(fresh=True))
    assert again["jti"] != claims_of(tokens.system())["jti"], "two access tokens of separate grants share their jti"


@pytest.mark.requirement("auth@21")
def test_a_patient_token_carries_the_iua_claims(fhir_client: EvidenceClient, tokens: Tokens) -> None:
    """a patient's token says subject_role patient, the person's national id and purpose PATRQT"""
    issued = tokens.user("patient", fresh=True)  # the token response is this check's evidence
    claims = claims_of(issued.access_token, "the patient's access token")
    assert claims.get("subject_role") == "patient", (
        f"the patient's token has subject_role {claims.get('subject_role')!r}"
    )
    assert claims.get("purpose_of_use") == "PATRQT", (
        f"the patient's token has purpose_of_use {claims.get('purpose_of_use')!r}; expected PATRQT"
    )
    person_id = claims.get("person_id")
    assert isinstance(person_id, str) and person_id, f"the patient's token has person_id {person_id!r}"
    assert issued.patient, "the patient's token response names no patient, so the person_id cannot be compared"
    record = read(fhir_client, "Patient", issued.patient)
    national = [i.get("value") for i in record.get("identifier") or [] if i.get("system") == NATIONAL_ID]
    assert person_id in national, (
        f"the patient's token has person_id {person_id!r}, but Patient/{issued.patient} has national id(s) {national}"
    )


@pytest.mark.requirement("auth@21")
def test_a_practitioner_token_carries_the_iua_claims(tokens: Tokens) -> None:
    """a practitioner's token carries the role code, the person's national id and a care purpose"""
    token = tokens.user("practitioner", fresh=True).access_token  # the token response is this check's evidence
    claims = claims_of(token, "the practitioner's access token")
    role = claims.get("subject_role")
    assert isinstance(role, str) and role and role != "patient", (
        f"the practitioner's token has subject_role {role!r}; expected the practitioner's role code"
    )
    assert isinstance(claims.get("person_id"), str) and claims["person_id"], (
        f"the practitioner's token has person_id {claims.get('person_id')!r}; expected the national id"
    )
    assert claims.get("purpose_of_use") in CARE_PURPOSES, (
        f"the practitioner's token has purpose_of_use {claims.get('purpose_of_use')!r}; expected TREAT or EMERGENCY"
    )
