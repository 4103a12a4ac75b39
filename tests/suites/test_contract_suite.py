"""The contract suite against the reference implementation, run as a vendor would run it.

The clean server passes every check (SQLite, and PostgreSQL when it answers), every requirement of
the catalogue has a check, every deliberate defect breaks a requirement a check covers, and a defect of
each requirement group is caught (`make detection` runs them all): with only that fault switched on, at
least one check of a requirement it breaks fails. Each run is a child ``python -m pytest suites/contract``
against a server on loopback, seeded with the demo accounts, logging in as ``testplans/reference.yaml``
says (``--eqlab-plan``; the demo passwords in the environment, as ``eqlab demo`` sets them); results
come from its JUnit XML (the eqlab plugin records every check's requirements as a property).
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest

from eqlab.catalogue import Catalogue
from eqlab.commands.detection import detect
from eqlab.commands.store_admin import demo_secrets
from eqlab.plan.loader import load_plan
from reference_impl.app import FAULTS, create_app
from reference_impl.settings import Settings
from tests.suites.requirement_map import OUTPUT_ENV
from tests.support.detection import first_of_each_group
from tests.support.paths import REPO
from tests.support.servers import sqlite_url, threaded_server

pytestmark = pytest.mark.slow

SUITE = "suites/contract"
CLIENT_SUITE = "suites/client"
CATALOGUE = REPO / "suites" / "requirements"
PLAN = REPO / "testplans" / "reference.yaml"
SUITE_TIMEOUT_S = 600


@dataclass(frozen=True)
class CheckResult:
    name: str
    requirements: tuple[str, ...]
    outcome: str  # passed, failed, error or skipped
    message: str


@dataclass(frozen=True)
class SuiteRun:
    returncode: int
    output: str
    checks: list[CheckResult]

    def not_passed(self) -> list[CheckResult]:
        return [c for c in self.checks if c.outcome != "passed"]

    def explain(self) -> str:
        lines = [f"{c.outcome}: {c.name} {list(c.requirements)}: {c.message[:300]}" for c in self.not_passed()]
        return "\n".join([*lines, "--- pytest output (tail) ---", self.output[-3000:]])


def _child_env() -> dict[str, str]:
    """The environment for a child pytest, without the markers of this (possibly xdist) run."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_XDIST", "PYTEST_CURRENT_TEST"))}


def run_suite(base_url: str, workdir: Path, *selection: str) -> SuiteRun:
    """Run the contract suite (or the selected node ids) against ``base_url``."""
    junit = workdir / "junit.xml"
    command = [
        sys.executable,
        "-m",
        "pytest",
        *(selection or (SUITE,)),
        "-p",
        "no:cacheprovider",
        "-q",
        "--eqlab-target",
        base_url,
        "--eqlab-plan",
        str(PLAN),
        "--eqlab-catalogue",
        str(CATALOGUE),
        f"--junitxml={junit}",
        "-o",
        "junit_family=xunit2",
    ]
    with demo_secrets():
        env = _child_env()
    done = subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=SUITE_TIMEOUT_S, check=False
    )
    output = done.stdout + done.stderr
    assert junit.exists(), f"the suite run wrote no JUnit XML (exit {done.returncode}):\n{output[-3000:]}"
    return SuiteRun(done.returncode, output, _results(junit))


def _results(junit: Path) -> list[CheckResult]:
    results = []
    for case in ET.parse(junit).iter("testcase"):
        requirements: tuple[str, ...] = ()
        for prop in case.iter("property"):
            if prop.get("name") == "eqlab_item":
                requirements = tuple(ast.literal_eval(prop.get("value", "{}")).get("requirements", ()))
        outcome, message = "passed", ""
        for kind in ("failure", "error", "skipped"):
            element = case.find(kind)
            if element is not None:
                outcome = "failed" if kind == "failure" else kind
                message = element.get("message", "") or (element.text or "")
                break
        results.append(CheckResult(f"{case.get('classname')}::{case.get('name')}", requirements, outcome, message))
    return results


@pytest.fixture(scope="session")
def requirement_map(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """Node id -> requirement IDs of every check of the contract and client suites (collected by a child pytest)."""
    output = tmp_path_factory.mktemp("collect") / "requirements.json"
    command = [
        sys.executable,
        "-m",
        "pytest",
        SUITE,
        CLIENT_SUITE,
        "--collect-only",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "tests.suites.requirement_map",
    ]
    done = subprocess.run(
        command,
        cwd=REPO,
        env={**_child_env(), OUTPUT_ENV: str(output)},
        capture_output=True,
        text=True,
        timeout=SUITE_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0 and output.exists(), f"collecting the suite failed:\n{done.stdout[-3000:]}"
    mapping: dict[str, list[str]] = json.loads(output.read_text(encoding="utf-8"))
    return mapping


def _assert_all_passed(run: SuiteRun) -> None:
    assert run.checks, f"the suite ran no checks:\n{run.output[-3000:]}"
    assert run.returncode == 0 and not run.not_passed(), (
        f"{len(run.not_passed())} of {len(run.checks)} checks did not pass against the clean server:\n{run.explain()}"
    )


def test_every_requirement_has_a_check_or_is_attested_by_the_reference_plan(
    requirement_map: dict[str, list[str]],
) -> None:
    catalogue = Catalogue.load(CATALOGUE)
    by_attestation = {rid for rid, r in catalogue.requirements.items() if r.verification == "attestation"}
    checked = {rid for rids in requirement_map.values() for rid in rids}
    missing = sorted(set(catalogue.requirements) - checked - by_attestation, key=catalogue_order)
    assert not missing, f"requirements without a check: {missing}"
    assert all(requirement_map.values()), "every check names its requirements"
    plan = load_plan(PLAN, catalogue, REPO / "suites").plan
    assert by_attestation == {a.requirement for a in plan.attestations}


def test_every_fault_breaks_requirements_the_contract_suite_checks(requirement_map: dict[str, list[str]]) -> None:
    """What `make detection` needs of each fault before it runs it (the runs below are a sample)."""
    contract_checked = {rid for node, rids in requirement_map.items() if node.startswith(SUITE) for rid in rids}
    unchecked = {name: fault.breaks for name, fault in FAULTS.items() if not set(fault.breaks) & contract_checked}
    assert not unchecked, f"faults no check of {SUITE} could catch: {unchecked}"


def catalogue_order(rid: str) -> tuple[str, int]:
    service, _, number = rid.partition("@")
    return service, int(number)


def test_clean_server_passes_every_check_on_sqlite(tmp_path: Path) -> None:
    with threaded_server(create_app(Settings(db_url=sqlite_url(tmp_path), seed="demo"))) as base:
        run = run_suite(base, tmp_path)
    _assert_all_passed(run)


@pytest.mark.postgres
def test_clean_server_passes_every_check_on_postgresql(tmp_path: Path, postgres_url: str) -> None:
    with threaded_server(create_app(Settings(db_url=postgres_url, seed="demo"))) as base:
        run = run_suite(base, tmp_path)
    _assert_all_passed(run)


def requirement_group(fault: str) -> str:
    """The group (fhir, auth, audit, dsp, dir, mpi) of the first requirement ``fault`` breaks."""
    return FAULTS[fault].breaks[0].partition("@")[0]


@pytest.mark.parametrize("name", first_of_each_group(FAULTS, requirement_group))
def test_fault_is_caught_by_the_reference_plan(name: str, tmp_path: Path, seeded_store: Path) -> None:
    """What `make detection` does for every fault, for one fault of each requirement group: the engine runs
    the plan's checks of the requirements the fault breaks, and the label is refused."""
    fault = FAULTS[name]
    assert fault.breaks, f"fault {name} names no requirement it breaks"
    found = detect(
        frozenset({name}),
        out=tmp_path,
        workers=1,
        key_path=tmp_path / "lab.pem",
        suites=("contract",),
        requirements=fault.breaks,
        seeded_store=seeded_store,
    )
    assert found.caught, (
        f"fault {name} ({fault.description}): verdict {found.verdict}, failed {found.failed}, expected {fault.breaks}"
    )
    requirement, _, rest = found.proof.partition(" by ")
    assert requirement in fault.breaks and "::" not in rest and " -> " in rest, (
        found.proof
    )  # requirement, check, exchange
