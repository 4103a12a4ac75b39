"""The lab's OAuth client against the reference implementation: every grant over HTTP, no back door."""

from __future__ import annotations

import base64
import dataclasses
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc.jwk import ECKey, RSAKey

from eqlab.evidence.recorder import EvidenceClient, EvidenceRecorder
from eqlab.oauth_client import AuthConfig, AuthConfigError, LoginFailed, TokenProvider, TokenRefused
from reference_impl.seed import accounts
from reference_impl.seed.accounts import register_test_client
from tests.eqlab.conftest import DEMO_KEY, DemoReference

PORTAL = {"client_id": accounts.PORTAL_CLIENT, "redirect_uri": accounts.PORTAL_REDIRECTS[1]}
WEBAPP = {
    "client_id": accounts.WEBAPP_CLIENT,
    "redirect_uri": accounts.WEBAPP_REDIRECTS[1],
    "secret_env": "EQLAB_DEMO_WEBAPP_SECRET",
    "scope": "openid fhirUser profile offline_access user/*.cruds",
}
USERS = {
    "patient": {"username": "patient1", "password_env": "EQLAB_DEMO_PASSWORD_PATIENT1"},
    "other_patient": {"username": "patient2", "password_env": "EQLAB_DEMO_PASSWORD_PATIENT2"},
    "practitioner": {"username": "doctor1", "password_env": "EQLAB_DEMO_PASSWORD_DOCTOR1", "login_client": WEBAPP},
}


@dataclasses.dataclass
class Lab:
    """A TokenProvider whose exchanges are recorded (as inside a check)."""

    provider: TokenProvider
    recorder: EvidenceRecorder

    def grants(self) -> list[str]:
        """The grant_type of every token request made so far."""
        found = []
        for exchange in self.recorder.exchanges:
            if exchange.url.endswith("/auth/token") and exchange.request.body_excerpt:
                found.append(dict(x.split("=", 1) for x in exchange.request.body_excerpt.split("&"))["grant_type"])
        return found


def make_lab(reference: DemoReference, **auth: Any) -> Lab:
    recorder = EvidenceRecorder()
    settings = {"client_id": accounts.SYSTEM_CLIENT, "key_file": str(DEMO_KEY), "login_client": PORTAL, "users": USERS}
    config = AuthConfig.from_dict({**settings, **auth})
    provider = TokenProvider(config, reference.base_url, lambda: EvidenceClient(reference.base_url, recorder))
    return Lab(provider, recorder)


@pytest.fixture
def lab(demo_reference: DemoReference, demo_passwords: None) -> Lab:
    return make_lab(demo_reference)


def claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return decoded


def get(reference: DemoReference, path: str, token: str) -> httpx.Response:
    return httpx.get(f"{reference.base_url}/{path}", headers={"Authorization": f"Bearer {token}"}, timeout=30)


def test_client_credentials_es384_with_the_demo_key_and_cache(lab: Lab, demo_reference: DemoReference) -> None:
    token = lab.provider.system()
    assert get(demo_reference, "Patient?_count=1", token).status_code == 200
    assert claims(token)["client_id"] == accounts.SYSTEM_CLIENT and claims(token)["scope"] == "system/*.cruds"
    assert lab.provider.system() == token, "a cached token is reused"
    narrow = lab.provider.system("system/Patient.rs")
    assert narrow != token and claims(narrow)["scope"] == "system/Patient.rs"
    assert lab.provider.system(fresh=True) != token
    assert lab.grants() == ["client_credentials"] * 3
    assertion = next(x for x in lab.recorder.exchanges if x.url.endswith("/auth/token")).request.body_excerpt or ""
    assert "client_assertion=%5BREDACTED%5D" in assertion and "eyJ" not in assertion


def test_an_expiring_token_is_renewed_before_it_expires(lab: Lab) -> None:
    token = lab.provider.system()
    key, cached = next(iter(lab.provider._cache.items()))
    lab.provider._cache[key] = dataclasses.replace(cached, received=time.monotonic() - cached.remaining_s() - 10)
    assert lab.provider.system() != token
    assert lab.grants() == ["client_credentials", "client_credentials"]


def _rsa_client(reference: DemoReference, tmp_path: Path, client_id: str) -> Path:
    key = RSAKey.generate_key(2048, parameters={"kid": f"{client_id}-rs384"})
    jwks = {"keys": [{**key.as_dict(private=False), "alg": "RS384", "use": "sig"}]}
    register_test_client(reference.db_url, client_id, "system", "system/*.rs", jwks=jwks)
    pem = tmp_path / "client.pem"
    pem.write_bytes(key.as_pem(private=True))
    return pem


def test_client_credentials_rs384_with_a_pem_key(demo_reference: DemoReference, tmp_path: Path) -> None:
    pem = _rsa_client(demo_reference, tmp_path, "lab-test-rs384")
    lab = make_lab(demo_reference, client_id="lab-test-rs384", key_file=str(pem), scope="system/Patient.rs")
    token = lab.provider.system()
    assert claims(token)["client_id"] == "lab-test-rs384"
    assert get(demo_reference, "Patient?_count=1", token).status_code == 200
    assert get(demo_reference, "Observation?_count=1", token).status_code == 403  # beyond the scope asked for


def test_the_demo_key_works_as_pem_too(demo_reference: DemoReference, tmp_path: Path) -> None:
    pem = tmp_path / "demo.pem"
    pem.write_bytes(ECKey.import_key(json.loads(DEMO_KEY.read_text())).as_pem(private=True))
    lab = make_lab(demo_reference, key_file=str(pem))
    assert get(demo_reference, "Patient?_count=1", lab.provider.system()).status_code == 200


def test_a_refused_client_is_reported_without_its_assertion(demo_reference: DemoReference, tmp_path: Path) -> None:
    other = tmp_path / "other.jwk"
    other.write_text(json.dumps(ECKey.generate_key("P-384").as_dict(private=True)))
    lab = make_lab(demo_reference, key_file=str(other))
    with pytest.raises(TokenRefused) as refused:
        lab.provider.system()
    assert refused.value.status == 401 and refused.value.error == "invalid_client"
    assert "eqlab-demo-system" in str(refused.value) and "eyJ" not in str(refused.value)


def test_code_pkce_for_a_patient_and_the_patient_boundary(lab: Lab, demo_reference: DemoReference) -> None:
    tokens = lab.provider.user("patient")
    assert tokens.patient == "pat-0001" and tokens.refresh_token and tokens.id_token
    assert "patient/*.cruds" in (tokens.scope or "")
    body = claims(tokens.access_token)
    assert (body["subject_role"], body["purpose_of_use"], body["sub"]) == ("patient", "PATRQT", "patient1")
    assert get(demo_reference, "Patient/pat-0001", tokens.access_token).status_code == 200
    assert get(demo_reference, "Patient/pat-0002", tokens.access_token).status_code == 403
    other = lab.provider.user("other_patient")
    assert other.patient == "pat-0002" and other.access_token != tokens.access_token
    assert lab.provider.user("patient") is tokens, "cached per (client, user, scope, purpose)"
    pages = [x.url.split("?")[0].rsplit("/", 1)[-1] for x in lab.recorder.exchanges]
    assert pages.count("login") == 2 and pages.count("consent") == 2, pages  # one sign-in per user, no SSO leak


def test_code_pkce_for_a_practitioner_through_a_confidential_client(lab: Lab, demo_reference: DemoReference) -> None:
    treat = lab.provider.user("practitioner")
    emergency = lab.provider.user("practitioner", purpose="EMERGENCY")
    assert claims(treat.access_token)["purpose_of_use"] == "TREAT"  # the consent page's default
    assert claims(emergency.access_token)["purpose_of_use"] == "EMERGENCY"
    assert claims(emergency.access_token)["subject_role"] == "doctor"
    assert emergency.scope and "user/*.cruds" in emergency.scope and emergency.patient is None
    assert get(demo_reference, "Patient?_count=1", emergency.access_token).status_code == 200
    token_posts = [x for x in lab.recorder.exchanges if x.url.endswith("/auth/token")]
    assert all(x.request.headers["authorization"] == "[REDACTED]" for x in token_posts)  # client_secret_basic


def test_refresh_rotates_and_the_cache_follows(lab: Lab, demo_reference: DemoReference) -> None:
    first = lab.provider.user("patient")
    renewed = lab.provider.refresh(first)
    assert renewed.access_token != first.access_token and renewed.refresh_token != first.refresh_token
    assert lab.provider.user("patient") is renewed
    with pytest.raises(TokenRefused) as replayed:
        lab.provider.refresh(dataclasses.replace(renewed, refresh_token=first.refresh_token))
    assert replayed.value.error == "invalid_grant"


def test_an_expiring_user_token_is_refreshed_not_signed_in_again(lab: Lab) -> None:
    first = lab.provider.user("patient")
    key = next(k for k in lab.provider._cache if k[0] == "user")
    lab.provider._cache[key] = dataclasses.replace(first, received=time.monotonic() - 7200)
    renewed = lab.provider.user("patient")
    assert renewed.access_token != first.access_token
    assert lab.grants() == ["authorization_code", "refresh_token"]


def test_authorize_and_redeem_separately(lab: Lab) -> None:
    code = lab.provider.authorize("patient", "openid launch/patient patient/Patient.rs")
    assert "code" not in repr(code) and code.verifier not in repr(code)
    assert len(code.verifier) >= 43 and code.client_id == accounts.PORTAL_CLIENT
    tokens = lab.provider.redeem(code)
    assert tokens.scope == "openid launch/patient patient/Patient.rs" and tokens.refresh_token is None
    with pytest.raises(TokenRefused):
        lab.provider.redeem(code)  # a code is good once


def test_a_wrong_password_is_a_clear_error_without_the_password(
    demo_reference: DemoReference, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EQLAB_DEMO_PASSWORD_PATIENT1", "not-the-password-123")
    lab = make_lab(demo_reference)
    with pytest.raises(LoginFailed) as failed:
        lab.provider.user("patient")
    assert "patient1" in str(failed.value) and "Wrong username or password" in str(failed.value)
    assert "not-the-password-123" not in str(failed.value)
    assert "not-the-password-123" not in json.dumps([x.model_dump() for x in lab.recorder.exchanges])


def test_an_unset_password_variable_is_named(demo_reference: DemoReference, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EQLAB_DEMO_PASSWORD_PATIENT1", raising=False)
    with pytest.raises(
        AuthConfigError, match=r"EQLAB_DEMO_PASSWORD_PATIENT1 \(password of the patient user patient1\)"
    ):
        make_lab(demo_reference).provider.user("patient")
    with pytest.raises(AuthConfigError, match=r"no role 'nurse' \(roles: other_patient, patient, practitioner\)"):
        make_lab(demo_reference).provider.user("nurse")


@pytest.fixture
def flow_evidence(lab: Lab) -> Iterator[str]:
    """Everything a patient's sign-in, refresh and a practitioner's sign-in left in the evidence."""
    patient = lab.provider.user("patient")
    lab.provider.refresh(patient)
    lab.provider.user("practitioner")
    yield json.dumps([x.model_dump() for x in lab.recorder.exchanges])


def test_no_secret_of_the_flows_is_in_the_evidence(lab: Lab, flow_evidence: str) -> None:
    secrets = lab.provider.secrets
    assert len(secrets) >= 10  # passwords, client secret, codes, verifiers, tokens
    leaked = [s[:12] for s in secrets if s in flow_evidence]
    assert not leaked, f"secrets in the evidence: {leaked}"
    assert "eyJ" not in flow_evidence and '"rt.' not in flow_evidence
    assert 'name=\\"csrf\\" value=\\"[REDACTED]\\"' in flow_evidence  # the login and consent pages
    assert "code=[REDACTED]&state=" in flow_evidence  # the redirect back to the client
    assert "username=patient1" in flow_evidence and "password=%5BREDACTED%5D" in flow_evidence
