"""The reference client's pure parts: configuration, faults, keys, Retry-After, trace redaction."""

from __future__ import annotations

import email.utils
import json
import time
from pathlib import Path

import httpx
import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from reference_client.config import Config, ConfigError
from reference_client.faults import FAULTS, UnknownFault, parse_faults
from reference_client.fhir import retry_after_seconds
from reference_client.mpi import replaced_by
from reference_client.smart import ScenarioFailed, load_key
from reference_client.wire import trace_line
from tests.support.paths import REPO


def test_configuration_comes_from_the_environment_with_inputs_by_name() -> None:
    config = Config.from_environment(
        {"EQLAB_FHIR_BASE": "http://x/fhir/", "EQLAB_CLIENT_ID": "c", "EQLAB_INPUT_PATIENT": "pat-9"}
    )
    assert (config.fhir_base, config.input("patient", "pat-0001"), config.input("search", "d")) == (
        "http://x/fhir",
        "pat-9",
        "d",
    )
    with pytest.raises(ConfigError, match="this scenario needs EQLAB_USERNAME"):
        config.require(username=config.username)


def test_faults_are_parsed_and_unknown_ones_named() -> None:
    assert parse_faults(" pkce-plain, ,no-if-match") == {"pkce-plain", "no-if-match"}
    assert parse_faults("") == frozenset()
    with pytest.raises(UnknownFault, match="unknown fault: pkce-s512, x"):
        parse_faults("x,pkce-s512,pkce-plain")


def test_keys_load_from_a_jwk_or_a_pem_and_choose_the_algorithm(tmp_path: Path) -> None:
    jwk = Config("http://x/fhir", "c", key_file=REPO / "testplans/keys/demo-system-client.private.jwk")
    assert load_key(jwk)[1] == "ES384"
    pem = tmp_path / "key.pem"
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    assert load_key(Config("http://x/fhir", "c", key_file=pem))[1] == "RS384"
    public = tmp_path / "public.pem"
    public.write_bytes(
        private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(ScenarioFailed, match="EQLAB_CLIENT_KEY holds a public key"):
        load_key(Config("http://x/fhir", "c", key_file=public))
    junk = tmp_path / "junk.pem"
    junk.write_text("not a key")
    with pytest.raises(ScenarioFailed, match="EQLAB_CLIENT_KEY is not a private EC or RSA key"):
        load_key(Config("http://x/fhir", "c", key_file=junk))


def test_retry_after_reads_seconds_and_http_dates() -> None:
    def answer(value: str) -> httpx.Response:
        return httpx.Response(503, headers={"Retry-After": value} if value else {})

    assert retry_after_seconds(answer("7")) == 7
    in_ten = retry_after_seconds(answer(email.utils.formatdate(time.time() + 10, usegmt=True)))
    assert in_ten is not None and 8 <= in_ten <= 10
    assert retry_after_seconds(answer("soon")) is None
    assert retry_after_seconds(answer("")) is None


def test_the_trace_redacts_credentials_and_keeps_digests_of_random_ones() -> None:
    form = "grant_type=refresh_token&refresh_token=secret-rt&password=hunter2&client_assertion=h.p.signature"
    request = httpx.Request(
        "POST",
        "http://x/auth/token?access_token=secret-at",
        content=form.encode(),
        headers={"Authorization": "Bearer secret-at", "Content-Type": "application/x-www-form-urlencoded"},
    )
    line = json.dumps(trace_line(request))
    for secret in ("secret-rt", "hunter2", "signature", "secret-at"):
        assert secret not in line
    assert line.count("%5BREDACTED+sha256%3A") == 2  # form-encoded
    assert "client_assertion=h.p.%5BREDACTED%5D" in line
    assert trace_line(request)["headers"]["authorization"] == "Bearer [REDACTED]"


def test_each_fault_breaks_a_client_requirement_of_the_catalogue() -> None:
    catalogue = {
        requirement["id"]
        for name in ("smartclient", "fhirclient", "mpi-clients", "dsp-clients")
        for requirement in yaml.safe_load((REPO / f"suites/requirements/{name}.yaml").read_text())["requirements"]
    }
    assert {fault.breaks for fault in FAULTS.values()} <= catalogue


def test_a_record_merged_away_names_the_patient_replacing_it() -> None:
    link = {"other": {"reference": "http://h/fhir/Patient/new"}, "type": "replaced-by"}
    assert (
        replaced_by({"active": False, "link": [{"other": {"reference": "Patient/x"}, "type": "seealso"}, link]})
        == "new"
    )
    assert replaced_by({"active": True, "link": [link]}) is None  # the surviving record links back, and is active
    assert replaced_by({"link": [link]}) is None  # active unknown: not said to be merged away
    assert replaced_by({"active": False}) is None
