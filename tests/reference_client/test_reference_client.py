"""The reference client against the reference implementation: every clean scenario succeeds and
behaves as the client labels require; each fault changes the request it names, and where the
platform refuses the faulty request the scenario fails with the reason."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from reference_client.faults import FAULTS
from tests.reference_client.conftest import Injector, Lab, Run

FHIR_JSON = "application/fhir+json"
pytestmark = pytest.mark.slow


def env_for(lab: Lab, scenario: str) -> dict[str, str]:
    return lab.portal() if scenario in ("sign-in", "refresh") else lab.system()


def fhir_requests(lab: Lab, run: Run) -> list[str]:
    return [s.method for s in run.sent if s.path.startswith(lab.fhir_path) and "/.well-known/" not in s.path]


def test_the_faults_are_listed_with_the_rule_each_breaks() -> None:
    listing = subprocess.run(
        [sys.executable, "-m", "reference_client", "--list-faults"], capture_output=True, text=True, check=True
    ).stdout
    assert len(FAULTS) >= 13
    sections = {"smartclient": "2", "fhirclient": "1", "mpi": "3", "dsp": "5"}
    for name, fault in FAULTS.items():
        section = sections[fault.breaks.split("@")[0]]
        assert re.search(rf"^{name} +.+\(breaks {fault.breaks}, SPEC §{section}\)$", listing, re.M), name


def test_an_unknown_fault_is_a_usage_error_naming_the_faults(lab: Lab) -> None:
    run = lab.run("sign-in", lab.portal(), "pkce-plain", "no-such-fault")
    assert run.status == 2
    assert "unknown fault: no-such-fault" in run.output
    assert "retry-after-ignored" in run.output
    assert run.sent == []


def test_missing_configuration_is_named(lab: Lab) -> None:
    run = lab.run("sign-in", {"EQLAB_FHIR_BASE": lab.fhir_base})
    assert (run.status, run.output.strip()) == (2, "reference client: set EQLAB_CLIENT_ID")


SCENARIOS = [
    "sign-in",
    "refresh",
    "system-token",
    "retry-after-401",
    "update",
    "paging",
    "retry-after",
    "conditional-create",
    "transaction",
]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_each_clean_scenario_succeeds_as_a_well_behaved_client(lab: Lab, scenario: str) -> None:
    run = lab.run(scenario, env_for(lab, scenario))
    assert (run.status, run.output.strip()) == (0, f"{scenario}: ok")
    assert run.sent[0].path == f"{lab.fhir_path}/.well-known/smart-configuration", "discovery comes first"
    request_ids = [s.headers["x-request-id"] for s in run.sent]
    assert len(set(request_ids)) == len(request_ids)
    for sent in run.sent:
        if sent.path.startswith(lab.fhir_path) and "/.well-known/" not in sent.path:
            assert sent.headers["accept"] == FHIR_JSON, sent.url
            assert sent.headers["authorization"] == "Bearer [REDACTED]", sent.url
            assert "access_token" not in sent.query
            if sent.line["body"]:
                assert sent.headers["content-type"] == FHIR_JSON, sent.url
    for token_request in run.token_requests:
        if "client_assertion" in token_request.form:
            claims = token_request.assertion_claims()
            assert claims["aud"] == token_request.url
            assert 0 < claims["exp"] - claims["iat"] <= 300


def test_sign_in_uses_pkce_s256_a_fresh_state_and_the_registered_redirect_uri(lab: Lab) -> None:
    runs = [lab.run("sign-in", lab.portal()) for _ in range(2)]
    authorize = [run.to("/auth/authorize", "GET")[0].query for run in runs]
    for query in authorize:
        assert query["code_challenge_method"] == "S256"
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", query["code_challenge"])
        assert query["redirect_uri"] == lab.portal()["EQLAB_REDIRECT_URI"]
    assert authorize[0]["state"] != authorize[1]["state"]
    assert authorize[0]["code_challenge"] != authorize[1]["code_challenge"]
    verifiers = [run.token_requests[0].form["code_verifier"] for run in runs]
    assert verifiers[0] != verifiers[1]
    assert "[REDACTED sha256:" in verifiers[0], "the trace never holds the verifier itself"


def test_the_trace_holds_no_credential(lab: Lab) -> None:
    run = lab.run("refresh", lab.portal())
    text = "\n".join(str(s.line) for s in run.sent)
    assert lab.portal()["EQLAB_PASSWORD"] not in text
    assert not re.search(r"eyJ[\w-]+\.eyJ[\w-]+\.[\w-]{20,}", text), "no signed JWT"


# --- faults refused by the platform: the scenario fails and says why ---


def test_pkce_plain_is_sent_and_refused(lab: Lab) -> None:
    run = lab.run("sign-in", lab.portal(), "pkce-plain")
    assert run.to("/auth/authorize", "GET")[0].query["code_challenge_method"] == "plain"
    assert run.status == 1
    assert "sign-in failed: authorization refused: invalid_request" in run.output
    assert run.token_requests == []


def test_redirect_uri_with_an_extra_query_is_sent_and_refused(lab: Lab) -> None:
    run = lab.run("sign-in", lab.portal(), "redirect-uri-extra-query")
    registered = lab.portal()["EQLAB_REDIRECT_URI"]
    assert run.to("/auth/authorize", "GET")[0].query["redirect_uri"] == registered + "?from=reference-client"
    assert run.status == 1
    assert "sign-in failed: authorization refused: HTTP 400" in run.output
    assert "redirect_uri is not registered" in run.output


def test_a_reused_jti_is_sent_and_refused(lab: Lab) -> None:
    run = lab.run("system-token", lab.system(), "jti-reused")
    jtis = [s.assertion_claims()["jti"] for s in run.token_requests]
    assert len(jtis) == 2 and jtis[0] == jtis[1]
    assert run.status == 1
    assert "client credentials token request refused: HTTP 401 invalid_client" in run.output
    assert "replay" in run.output


def test_clean_assertions_have_fresh_jtis(lab: Lab) -> None:
    run = lab.run("system-token", lab.system())
    jtis = [s.assertion_claims()["jti"] for s in run.token_requests]
    assert len(jtis) == 2 and jtis[0] != jtis[1]


def test_an_assertion_valid_for_an_hour_is_sent_and_refused(lab: Lab) -> None:
    run = lab.run("system-token", lab.system(), "assertion-exp-1h")
    claims = run.token_requests[0].assertion_claims()
    assert claims["exp"] - claims["iat"] == 3600
    assert run.status == 1
    assert "client credentials token request refused: HTTP 401 invalid_client" in run.output


def test_a_reused_refresh_token_is_sent_and_refused(lab: Lab) -> None:
    clean = lab.run("refresh", lab.portal())
    sent = [s.form.get("refresh_token") for s in clean.token_requests[1:]]
    assert clean.status == 0 and len(sent) == 2 and sent[0] != sent[1]
    run = lab.run("refresh", lab.portal(), "refresh-reused")
    sent = [s.form.get("refresh_token") for s in run.token_requests[1:]]
    assert len(sent) == 2 and sent[0] == sent[1]
    assert run.status == 1
    assert "refresh refused: HTTP 400 invalid_grant" in run.output


def test_a_token_in_the_query_string_is_sent_and_refused(lab: Lab) -> None:
    run = lab.run("sign-in", lab.portal(), "token-in-query")
    read = run.to("/Patient/pat-0001", "GET")[0]
    assert read.query["access_token"].startswith("[REDACTED sha256:")
    assert "authorization" not in read.headers
    assert run.status == 1
    assert "sign-in failed: read Patient/pat-0001: HTTP 401" in run.output


# --- faults the platform accepts: the request shows the fault ---


def test_state_missing_is_sent_without_state(lab: Lab) -> None:
    run = lab.run("sign-in", lab.portal(), "state-missing")
    assert "state" not in run.to("/auth/authorize", "GET")[0].query
    assert "state" in lab.run("sign-in", lab.portal()).to("/auth/authorize", "GET")[0].query


def test_a_reused_verifier_is_the_same_in_every_flow(lab: Lab) -> None:
    runs = [lab.run("sign-in", lab.portal(), "verifier-reused") for _ in range(2)]
    assert [run.status for run in runs] == [0, 0]
    challenges = {run.to("/auth/authorize", "GET")[0].query["code_challenge"] for run in runs}
    verifiers = {run.token_requests[0].form["code_verifier"] for run in runs}
    assert len(challenges) == len(verifiers) == 1


def test_json_content_type_is_sent_on_bodies(lab: Lab) -> None:
    run = lab.run("conditional-create", lab.system(), "json-content-type")
    creates = run.to("/fhir/Patient", "POST")
    assert len(creates) == 2
    assert {s.headers["content-type"] for s in creates} == {"application/json"}


def test_conditional_create_is_idempotent(lab: Lab) -> None:
    run = lab.run("conditional-create", lab.system())
    creates = run.to("/fhir/Patient", "POST")
    assert [s.headers["if-none-exist"] for s in creates] == [creates[0].headers["if-none-exist"]] * 2
    assert creates[0].headers["if-none-exist"].startswith("identifier=urn")


def test_transaction_links_new_resources_by_urn_uuid(lab: Lab) -> None:
    run = lab.run("transaction", lab.system())
    body = run.to("/fhir", "POST")[0].line["body"]
    patient_url = re.search(r'"fullUrl": "(urn:uuid:[0-9a-f-]{36})"', body)
    assert patient_url and f'"subject": {{"reference": "{patient_url[1]}"}}' in body


def test_updates_carry_the_version_read_unless_no_if_match(lab: Lab) -> None:
    clean = lab.run("update", lab.system())
    version = clean.to("/Patient/pat-0001", "PUT")[0].headers["if-match"]
    assert re.fullmatch(r'W/"\d+"', version)
    faulty = lab.run("update", lab.system(), "no-if-match")
    assert faulty.status == 0
    assert "if-match" not in faulty.to("/Patient/pat-0001", "PUT")[0].headers


def test_after_a_412_the_client_reads_again_before_it_retries(lab: Lab, injector: Injector) -> None:
    injector.answer("PUT", f"{lab.fhir_path}/Patient/pat-0001", 412, {})
    run = lab.run("update", lab.system())
    assert run.status == 0, run.output
    assert fhir_requests(lab, run) == ["GET", "PUT", "GET", "PUT"]


def test_pages_follow_the_next_links_unless_urls_are_built(lab: Lab) -> None:
    clean = lab.run("paging", lab.system())
    pages = clean.to("/fhir/Patient", "GET")
    assert len(pages) > 1 and all("_offset" in s.query for s in pages[1:])
    faulty = lab.run("paging", lab.system(), "page-urls-built")
    pages = faulty.to("/fhir/Patient", "GET")
    assert len(pages) > 1 and all("_getpagesoffset" in s.query and "_offset" not in s.query for s in pages[1:])


# --- recovery: 401 invalid_token and Retry-After ---

INVALID_TOKEN = {"WWW-Authenticate": 'Bearer error="invalid_token"'}


def test_after_a_401_the_client_gets_a_new_token_and_retries_once(lab: Lab, injector: Injector) -> None:
    injector.answer("GET", f"{lab.fhir_path}/Patient/pat-0001", 401, INVALID_TOKEN)
    run = lab.run("retry-after-401", lab.system())
    assert run.status == 0, run.output
    order = [("token" if s.path.endswith("/auth/token") else s.method) for s in run.sent[1:]]
    assert order == ["token", "GET", "token", "GET"]


def test_a_401_that_persists_ends_the_scenario_after_one_retry(lab: Lab, injector: Injector) -> None:
    injector.answer("GET", f"{lab.fhir_path}/Patient/pat-0001", 401, INVALID_TOKEN, times=20)
    run = lab.run("retry-after-401", lab.system())
    assert run.status == 1
    assert "retry-after-401 failed: read Patient/pat-0001: HTTP 401" in run.output
    assert len(run.to("/Patient/pat-0001", "GET")) == 2


def test_the_retry_storm_fault_retries_the_same_token_in_a_loop(lab: Lab, injector: Injector) -> None:
    injector.answer("GET", f"{lab.fhir_path}/Patient/pat-0001", 401, INVALID_TOKEN, times=20)
    run = lab.run("retry-after-401", lab.system(), "retry-storm-after-401")
    assert len(run.to("/Patient/pat-0001", "GET")) == 11
    assert len(run.token_requests) == 1, "no new token before the retries"
    assert run.status == 1


def test_retry_after_is_honoured_unless_ignored(lab: Lab, injector: Injector) -> None:
    path = f"{lab.fhir_path}/Patient/pat-0001"
    injector.answer("GET", path, 503, {"Retry-After": "1"})
    clean = lab.run("retry-after", lab.system())
    assert clean.status == 0, clean.output
    first, retry = clean.to("/Patient/pat-0001", "GET")
    assert retry.time - first.time >= 1.0
    injector.answer("GET", path, 429, {"Retry-After": "1"})
    faulty = lab.run("retry-after", lab.system(), "retry-after-ignored")
    first, retry = faulty.to("/Patient/pat-0001", "GET")
    assert retry.time - first.time < 1.0


def test_retries_after_503_are_bounded(lab: Lab, injector: Injector) -> None:
    injector.answer("GET", f"{lab.fhir_path}/Patient/pat-0001", 503, {"Retry-After": "0"}, times=20)
    run = lab.run("retry-after", lab.system())
    assert run.status == 1
    assert "retry-after failed: read Patient/pat-0001: HTTP 503" in run.output
    assert len(run.to("/Patient/pat-0001", "GET")) == 4


def test_a_forged_state_stops_the_sign_in_before_the_token_request(lab: Lab, injector: Injector) -> None:
    back = f"{lab.portal()['EQLAB_REDIRECT_URI']}?code=forged-code&state=forged-state"
    injector.answer("GET", "/auth/authorize", 303, {"Location": back})
    run = lab.run("sign-in", lab.portal())
    assert run.status == 1
    assert "state is not the one sent" in run.output
    assert run.token_requests == []
