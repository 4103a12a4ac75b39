"""Whole runs that authenticate: the reference plan's auth settings work, and no secret reaches a report.

The fixture checks (tests/fixtures/lab/authsuites) sign in as a system, a patient (public client)
and a practitioner (confidential client), refresh, and fail on purpose quoting secrets; each
secret they saw is written to a side file, and none may appear in any artefact of the run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from eqlab.catalogue import Catalogue
from eqlab.plan.loader import load_plan
from eqlab.runner.options import RunOptions
from eqlab.runner.run import run_plan
from eqlab.signing import LabKey
from reference_impl.seed import accounts
from tests.eqlab.conftest import DemoReference
from tests.support.paths import FIXTURES

LAB = FIXTURES / "lab"
SUITES = LAB / "authsuites"
ARTEFACTS = ("results.json", "events.jsonl", "pytest.log", "summary.html", "detailed.html", "junit.xml", "results.csv")


def test_no_secret_of_an_authenticated_run_reaches_its_artefacts(
    demo_reference: DemoReference, demo_passwords: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = tmp_path / "secrets.jsonl"
    monkeypatch.setenv("EQLAB_TEST_SECRETS_FILE", str(seen))
    catalogue = Catalogue.load(SUITES / "requirements")
    loaded = load_plan(LAB / "auth.yaml", catalogue, SUITES)
    options = RunOptions(target=demo_reference.base_url, out=tmp_path / "out", quiet=True)
    outcome = run_plan(loaded, catalogue, options, SUITES, tmp_path / "out", LabKey.load_or_create(tmp_path / "k.pem"))

    items = {i.name: i for i in outcome.results.items}
    quoting = items.pop("A check that fails quoting secrets (deliberately).")
    assert all(i.outcome == "pass" for i in items.values()), {n: (i.outcome, i.message) for n, i in items.items()}
    assert quoting.outcome == "fail" and "[REDACTED]" in str(quoting.message)
    patient = items["A patient signs in (code + PKCE), reads their record and refreshes."]
    paths = [x.url.split("?")[0].rsplit("/", 2)[-2:] for x in patient.exchanges]
    assert ["auth", "login"] in paths and ["auth", "consent"] in paths and ["auth", "token"] in paths, paths

    secrets = {json.loads(line) for line in seen.read_text().splitlines()}
    secrets |= {u.password for u in accounts.demo_users()} | {accounts.WEBAPP_SECRET}
    assert len(secrets) > 20
    for name in ARTEFACTS:
        text = (outcome.run_dir / name).read_text(encoding="utf-8")
        leaked = sorted(s[:16] for s in secrets if s in text)
        assert not leaked, f"{name} holds secrets: {leaked}"
    log = (outcome.run_dir / "pytest.log").read_text(encoding="utf-8")
    assert "refresh token [REDACTED]" in log and "password [REDACTED]" in log  # the check's own print


SKIPPING = """
import pytest


@pytest.mark.requirement("lab@1")
@pytest.mark.parametrize("name", ["tokens", "anonymous_client", "auth_client"])
def test_needs_auth(request, name):
    request.getfixturevalue(name)


@pytest.mark.requirement("lab@1")
def test_fhir_client_is_unchanged(fhir_client):
    assert "authorization" not in fhir_client.headers
"""


def test_checks_that_need_to_log_in_skip_without_auth_settings(tmp_path: Path) -> None:
    (tmp_path / "test_skipping.py").write_text(SKIPPING, encoding="utf-8")
    command = [
        sys.executable, "-m", "pytest", str(tmp_path), "-p", "no:cacheprovider", "-rs", "-q",
        "--eqlab-target", "http://127.0.0.1:9/fhir", "--eqlab-catalogue", str(SUITES / "requirements"),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path)
    assert "1 passed, 3 skipped" in done.stdout, done.stdout + done.stderr
    assert "SKIPPED [3]" in done.stdout and "the plan's target has no auth settings (target.auth)" in done.stdout


def test_a_plan_gives_plain_pytest_its_target_and_auth(
    demo_reference: DemoReference, demo_passwords: None, tmp_path: Path
) -> None:
    check = "def test_patient(tokens):\n    assert tokens.client_for('patient').get('Patient/pat-0001').is_success\n"
    (tmp_path / "test_plain.py").write_text(
        f"import pytest\n\n@pytest.mark.requirement('lab@1')\n{check}", encoding="utf-8"
    )
    command = [
        sys.executable, "-m", "pytest", str(tmp_path), "-p", "no:cacheprovider", "-q",
        "--eqlab-plan", str(LAB / "auth.yaml"), "--eqlab-target", demo_reference.base_url,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path)
    assert "1 passed" in done.stdout, done.stdout + done.stderr
