"""``eqlab token``, ``eqlab client register`` and the login help of ``eqlab serve --seed demo``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from joserfc.jwk import ECKey

from eqlab.cli import main
from eqlab.oauth_client import AuthConfig, TokenProvider, plain_http
from reference_impl.app import create_app
from reference_impl.settings import Settings
from tests.eqlab.conftest import TEST_MASTER_KEY, DemoReference
from tests.support.servers import ServerProcess, sqlite_url, threaded_server


def eqlab(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def read(reference: DemoReference, path: str, token: str) -> int:
    headers = {"Authorization": f"Bearer {token.strip()}"}
    return httpx.get(f"{reference.base_url}/{path}", headers=headers, timeout=30).status_code


def test_token_prints_a_system_token_of_the_demo_client(demo_reference: DemoReference) -> None:
    code, token = eqlab("token", "--base", demo_reference.base_url)
    assert code == 0 and token.count(".") == 2, token
    assert read(demo_reference, "Patient?_count=1", token) == 200
    code, narrow = eqlab("token", "--base", demo_reference.base_url, "--scope", "system/Patient.rs")
    assert code == 0 and read(demo_reference, "Observation?_count=1", narrow) == 403


def test_token_for_demo_users_signs_in_through_the_login_pages(demo_reference: DemoReference) -> None:
    code, patient = eqlab("token", "--base", demo_reference.base_url, "--user", "patient1")
    assert code == 0, patient
    assert read(demo_reference, "Patient/pat-0001", patient) == 200
    assert read(demo_reference, "Patient/pat-0002", patient) == 403
    code, doctor = eqlab("token", "--base", demo_reference.base_url, "--user", "doctor1", "--purpose", "EMERGENCY")
    assert code == 0, doctor
    assert read(demo_reference, "Patient?_count=1", doctor) == 200
    code, output = eqlab("token", "--base", demo_reference.base_url, "--user", "nobody")
    listed = "demo users: patient1, patient2, patient3, doctor1, doctor2, doctor3, retired1, auditor"
    assert code == 2 and listed in output


def test_token_reports_a_refusal_without_a_secret(demo_reference: DemoReference, tmp_path: Path) -> None:
    key = tmp_path / "other.jwk"
    key.write_text(json.dumps(ECKey.generate_key("P-384").as_dict(private=True)))
    code, output = eqlab("token", "--base", demo_reference.base_url, "--key", str(key))
    assert code == 1 and "invalid_client" in output and "eyJ" not in output
    code, output = eqlab("token", "--base", demo_reference.base_url, "--client", "someone-else")
    assert code == 2 and "--key" in output


def test_register_a_system_client_and_get_its_token(demo_reference: DemoReference, tmp_path: Path) -> None:
    key = tmp_path / "backend.private.jwk"
    key.write_text(json.dumps(ECKey.generate_key("P-384", parameters={"kid": "backend-1"}).as_dict(private=True)))
    code, output = eqlab(
        "client", "register", "--db", demo_reference.db_url, "--id", "lab-cli-backend", "--kind", "system",
        "--scopes", "system/*.rs", "--jwks", str(key), "--name", "A backend",
    )  # fmt: skip
    assert code == 0, output
    assert "only its public part is registered" in output and "registered system client lab-cli-backend" in output
    code, token = eqlab("token", "--base", demo_reference.base_url, "--client", "lab-cli-backend", "--key", str(key),
                        "--scope", "system/*.rs")  # fmt: skip
    assert code == 0, token
    assert read(demo_reference, "Patient?_count=1", token) == 200
    code, again = eqlab("client", "register", "--db", demo_reference.db_url, "--id", "lab-cli-backend",
                        "--kind", "system", "--scopes", "system/*.rs", "--jwks", str(key))  # fmt: skip
    assert code == 1 and "already registered" in again


def test_register_a_confidential_client_prints_its_secret_once_and_it_works(
    demo_reference: DemoReference, demo_passwords: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    redirect = "http://127.0.0.1:8402/callback"
    code, output = eqlab(
        "client", "register", "--db", demo_reference.db_url, "--id", "lab-cli-webapp", "--kind", "confidential",
        "--scopes", "openid user/*.rs", "--redirect-uri", redirect,
    )  # fmt: skip
    assert code == 0, output
    (secret,) = re.findall(r"client secret \(shown once, keep it safe\): (\S+)", output)
    monkeypatch.setenv("LAB_CLI_WEBAPP_SECRET", secret)
    login = {"client_id": "lab-cli-webapp", "redirect_uri": redirect, "secret_env": "LAB_CLI_WEBAPP_SECRET"}
    user = {"username": "doctor2", "password_env": "EQLAB_DEMO_PASSWORD_DOCTOR2", "scope": "openid user/*.rs"}
    config = AuthConfig.from_dict({"login_client": login, "users": {"practitioner": user}})
    tokens = TokenProvider(config, demo_reference.base_url, plain_http(demo_reference.base_url)).user("practitioner")
    assert read(demo_reference, "Patient?_count=1", tokens.access_token) == 200
    code, refused = eqlab("client", "register", "--db", demo_reference.db_url, "--id", "lab-cli-bad",
                          "--kind", "public", "--scopes", "openid")  # fmt: skip
    assert code == 1 and "needs at least one redirect URI" in refused


def test_serve_with_demo_data_explains_how_to_log_in(tmp_path: Path) -> None:
    server = ServerProcess(sqlite_url(tmp_path), extra=("--seed", "demo"))
    server.start()
    try:
        output = server.output()
    finally:
        server.stop()
    for expected in (
        "eqlab-demo-system", "private_key_jwt, key testplans/keys/demo-system-client.private.jwk",
        "eqlab-demo-portal", "patient1", "password eqlab-demo-patient1", "reference_impl/seed/accounts.py",
        f"eqlab token --base {server.base}", '-H "Authorization: Bearer $(eqlab token',
    ):  # fmt: skip
        assert expected in output, output


def test_rotating_the_platform_key_keeps_old_tokens_valid_until_withdrawn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EQLAB_MASTER_KEY", TEST_MASTER_KEY)
    db_url = sqlite_url(tmp_path)

    def jwks_kids() -> set[str]:
        with threaded_server(create_app(Settings(db_url=db_url, seed="demo"))) as base:
            keys = httpx.get(base.removesuffix("/fhir") + "/auth/jwks", timeout=30).json()["keys"]
            return {k["kid"] for k in keys}

    (first,) = jwks_kids()
    code, output = eqlab("platform-keys", "rotate", "--db", db_url)
    assert code == 0, output
    (second,) = re.findall(r"new signing key (\S+) in ", output)
    assert jwks_kids() == {first, second}, "the old key keeps verifying its tokens"
    code, output = eqlab("platform-keys", "rotate", "--db", db_url, "--withdraw-previous")
    assert code == 0, output
    (third,) = re.findall(r"new signing key (\S+) in ", output)
    assert set(output.split("their tokens no longer validate): ")[1].strip().split(", ")) == {first, second}
    assert jwks_kids() == {third}


UNREACHABLE_STORE = "postgresql://nobody@127.0.0.1:1/eqlab"


@pytest.mark.parametrize(
    "command",
    [
        ["serve", "--port", "0"],
        ["platform-keys", "rotate"],
        ["client", "register", "--id", "x", "--kind", "public", "--scopes", "openid", "--redirect-uri", "http://x/cb"],
    ],
    ids=["serve", "platform-keys rotate", "client register"],
)
def test_an_unreachable_store_is_one_clear_error(command: list[str]) -> None:
    code, output = eqlab(*command, "--db", UNREACHABLE_STORE)
    assert code == 1, output
    assert f"cannot use the store {UNREACHABLE_STORE}: connection failed" in output
    assert "Traceback" not in output
