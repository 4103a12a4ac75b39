"""Plans fail loudly: file, line, column, key and the closest valid key (STYLE #5)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from eqlab import paths
from eqlab.catalogue import Catalogue
from eqlab.commands.plans import plan_schema_text
from eqlab.plan.loader import load_plan
from eqlab.yamlsource import SourceError

GOOD = """\
name: Test plan
label: test-label
version: "1"
environment: integration
target:
  base_url: http://127.0.0.1:9/fhir
suites:
  - kind: contract
    path: contract/fhir
"""


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return Catalogue.load(paths.catalogue_dir())


def problems(tmp_path: Path, text: str, catalogue: Catalogue, allow_production: bool = False) -> list[str]:
    path = tmp_path / "plan.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SourceError) as caught:
        load_plan(path, catalogue, paths.suites_dir(), allow_production)
    return [str(p) for p in caught.value.problems]


def test_the_shipped_plans_are_valid(catalogue: Catalogue) -> None:
    for path in paths.testplans_dir().glob("*.yaml"):
        loaded = load_plan(path, catalogue, paths.suites_dir())
        assert loaded.plan.label and len(loaded.sha256) == 64


def test_yaml_syntax_error_names_the_line(tmp_path: Path, catalogue: Catalogue) -> None:
    (found,) = problems(tmp_path, GOOD.replace("  base_url:", "  base_url: [unclosed\n  x:"), catalogue)
    assert "plan.yaml:7:" in found and "YAML syntax error" in found


def test_unknown_key_suggests_the_closest(tmp_path: Path, catalogue: Catalogue) -> None:
    found = problems(tmp_path, GOOD.replace("environment:", "enviroment:"), catalogue)
    assert any(p.endswith("plan.yaml:4:1: enviroment: unknown key (did you mean 'environment'?)") for p in found)
    assert any(p.endswith("environment: this key is required") for p in found)
    nested = problems(tmp_path, GOOD + "    timout: 5\n", catalogue)
    assert any("plan.yaml:10:5: suites[0].timout: unknown key (did you mean 'timeout'?)" in p for p in nested)


def test_wrong_type_names_the_key(tmp_path: Path, catalogue: Catalogue) -> None:
    (found,) = problems(tmp_path, GOOD + "    timeout: fast\n", catalogue)
    assert "plan.yaml:10:5: suites[0].timeout:" in found and "number" in found


def test_unknown_requirement_id_is_refused_with_a_suggestion(tmp_path: Path, catalogue: Catalogue) -> None:
    text = GOOD + "not_tested:\n  - requirement: fhir@490\n    reason: later\n"
    (found,) = problems(tmp_path, text, catalogue)
    assert "not_tested[0].requirement: unknown requirement ID fhir@490 (did you mean fhir@49?)" in found
    (scoped,) = problems(tmp_path, GOOD + "requirements:\n  include: [fhir@999]\n", catalogue)
    assert "requirements.include[0]" in scoped and "fhir@999" in scoped


def test_missing_target(tmp_path: Path, catalogue: Catalogue) -> None:
    text = "\n".join(line for line in GOOD.splitlines() if "target" not in line and "base_url" not in line) + "\n"
    (found,) = problems(tmp_path, text, catalogue)
    assert "target: this key is required" in found


@pytest.mark.parametrize("field", ["client_secret: s3cr3t-value", "token: eyJhbGciOi.abc.def"])
def test_inline_secret_is_refused_with_advice(tmp_path: Path, catalogue: Catalogue, field: str) -> None:
    text = GOOD.replace(
        "  base_url: http://127.0.0.1:9/fhir", f"  base_url: http://127.0.0.1:9/fhir\n  auth:\n    {field}"
    )
    (found,) = problems(tmp_path, text, catalogue)
    assert "target.auth" in found and "secret_env" in found and "environment variable" in found
    assert "s3cr3t-value" not in found and "eyJhbGciOi" not in found


def test_production_with_load_suite_needs_explicit_consent(tmp_path: Path, catalogue: Catalogue) -> None:
    text = GOOD.replace("integration", "production") + "  - kind: load\n"
    refused = problems(tmp_path, text, catalogue)
    assert any("production" in p and "--allow-production" in p for p in refused)
    assert any("suites[1]" in p for p in refused)  # reported with it, in the same pass
    allowed = problems(tmp_path, text, catalogue, allow_production=True)
    assert not any("--allow-production" in p for p in allowed)
    assert any("suites[1]" in p for p in allowed)  # what remains is about the load suite itself


def test_duplicate_key_and_bad_selector(tmp_path: Path, catalogue: Catalogue) -> None:
    (duplicate,) = problems(tmp_path, GOOD + "label: again\n", catalogue)
    assert "label: this key appears twice" in duplicate
    (selector,) = problems(tmp_path, GOOD + "requirements:\n  include: ['fhir-3']\n", catalogue)
    assert "requirements.include" in selector and "selector" in selector


def test_missing_suite_folder_and_attestation_file(tmp_path: Path, catalogue: Catalogue) -> None:
    attestation = "\n".join(
        [
            "attestations:",
            "  - requirement: fhir@48",
            "    evidence: proof.pdf",
            "    reviewer: J. Doe",
            "    date: 2026-11-20",
            "",
        ]
    )
    text = GOOD.replace("contract/fhir", "contract/nowhere") + attestation
    found = problems(tmp_path, text, catalogue)
    assert any("suites[0].path: no suite at" in p for p in found)
    assert any("attestations[0].evidence: evidence file proof.pdf not found" in p for p in found)


def test_committed_schema_is_current() -> None:
    committed = (paths.testplans_dir() / "plan.schema.json").read_text(encoding="utf-8")
    assert committed == plan_schema_text(), "run: eqlab plan schema --write testplans/plan.schema.json"


def test_plan_validate_command(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("label:", "lable:"), encoding="utf-8")
    reference = str(paths.testplans_dir() / "reference.yaml")
    command = [sys.executable, "-m", "eqlab.cli", "plan", "validate", reference, str(bad)]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 1
    assert "reference.yaml: valid" in done.stdout
    assert f"{bad}:2:1: lable: unknown key (did you mean 'label'?)" in done.stderr


AUTH = """\
  auth:
    client_id: lab-system
    key_file: {key_file}
    login_client: {{client_id: portal, redirect_uri: "http://127.0.0.1:8400/callback"}}
    users:
      patient:
        username: patient1
{user_line}
"""


def with_auth(key_file: str, user_line: str = "        password_env: EQLAB_PASSWORD_PATIENT1") -> str:
    target = "  base_url: http://127.0.0.1:9/fhir\n"
    return GOOD.replace(target, target + AUTH.format(key_file=key_file, user_line=user_line))


DEMO_KEY = str(paths.testplans_dir() / "keys" / "demo-system-client.private.jwk")


def test_auth_with_users_and_a_key_file_is_valid(tmp_path: Path, catalogue: Catalogue) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(with_auth(DEMO_KEY), encoding="utf-8")
    auth = load_plan(path, catalogue, paths.suites_dir()).plan.target.auth
    assert auth is not None and auth.scope == "system/*.cruds" and auth.users["patient"].username == "patient1"


def test_an_inline_password_is_refused_with_advice(tmp_path: Path, catalogue: Catalogue) -> None:
    (found,) = problems(tmp_path, with_auth(DEMO_KEY, "        password: hunter2-secret"), catalogue)
    assert "plan.yaml:14:9: target.auth.users.patient.password:" in found
    assert "'password' holds a secret inline" in found and "password_env: EQLAB_PASSWORD_PATIENT1" in found
    assert "hunter2-secret" not in found


def test_a_missing_key_file_is_a_located_error(tmp_path: Path, catalogue: Catalogue) -> None:
    (found,) = problems(tmp_path, with_auth("keys/absent.jwk"), catalogue)
    assert "plan.yaml:9:5: target.auth.key_file: key file keys/absent.jwk not found" in found
    assert str(tmp_path / "keys" / "absent.jwk") in found  # relative to the plan's folder


def test_a_key_file_the_lab_cannot_sign_with_is_a_located_error(tmp_path: Path, catalogue: Catalogue) -> None:
    from joserfc.jwk import ECKey

    (tmp_path / "p256.jwk").write_text(json.dumps(ECKey.generate_key("P-256").as_dict(private=True)))
    (found,) = problems(tmp_path, with_auth("p256.jwk"), catalogue)
    assert "target.auth.key_file:" in found and "ES384 client assertions need P-384" in found
    (tmp_path / "public.jwk").write_text(json.dumps(ECKey.generate_key("P-384").as_dict(private=False)))
    (public,) = problems(tmp_path, with_auth("public.jwk"), catalogue)
    assert "holds a public key" in public


def test_incomplete_auth_settings_are_explained(tmp_path: Path, catalogue: Catalogue) -> None:
    text = with_auth(DEMO_KEY).replace(f"    key_file: {DEMO_KEY}\n", "")
    (no_key,) = problems(tmp_path, text, catalogue)
    assert "target.auth: 'client_id' needs 'key_file' (private_key_jwt) or 'secret_env'" in no_key
    no_login = with_auth(DEMO_KEY).replace(
        '    login_client: {client_id: portal, redirect_uri: "http://127.0.0.1:8400/callback"}\n', ""
    )
    (lost,) = problems(tmp_path, no_login, catalogue)
    assert "users patient need a 'login_client'" in lost
    (typo,) = problems(tmp_path, with_auth(DEMO_KEY, "        password_envv: X"), catalogue)
    assert "target.auth.users.patient.password_envv: unknown key (did you mean 'password_env'?)" in typo
    (lower,) = problems(tmp_path, with_auth(DEMO_KEY, "        password_env: my_password"), catalogue)
    assert "target.auth.users.patient.password_env" in lower
