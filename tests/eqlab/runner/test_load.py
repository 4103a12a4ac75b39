"""Load suites: SLOs measured with locust against the reference server, judged by the decision.

The reference server requires a token: the lab obtains the plan's system token before locust
starts and passes it in the child's environment; every request of the scenario carries it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from joserfc.jwk import ECKey

from eqlab import paths
from eqlab.catalogue import Catalogue
from eqlab.plan.loader import load_plan
from eqlab.runner.options import RunOptions
from eqlab.runner.preflight import PreflightError
from eqlab.runner.run import RunOutcome, run_plan
from eqlab.signing import LabKey
from tests.eqlab.conftest import DEMO_KEY, DemoReference

PLAN = """\
name: Load plan
label: load-test
version: "1"
environment: {environment}
target:
  base_url: {base_url}
  auth:
    client_id: eqlab-demo-system
    key_file: {key_file}
requirements:
  include: ["fhir@48"]
suites:
  - kind: load
    path: load/fhir
    params: {{users: 4, spawn_rate: 4, duration: 3}}
slos:
  p95_ms: {p95}
  error_rate: 0.05
  throughput_rps: 5
"""


@pytest.fixture(scope="module")
def reference(demo_reference: DemoReference) -> str:
    return demo_reference.base_url


def run_text(tmp_path: Path, text: str, preflight: bool = True) -> RunOutcome:
    plan = tmp_path / "plan.yaml"
    plan.write_text(text, encoding="utf-8")
    catalogue = Catalogue.load(paths.catalogue_dir())
    loaded = load_plan(plan, catalogue, paths.suites_dir(), allow_production=True)
    key = LabKey.load_or_create(tmp_path / "key.pem")
    return run_plan(
        loaded, catalogue, RunOptions(out=tmp_path, quiet=True, preflight=preflight), paths.suites_dir(), tmp_path, key
    )


def run(tmp_path: Path, base_url: str, p95: float) -> RunOutcome:
    return run_text(tmp_path, PLAN.format(base_url=base_url, p95=p95, environment="integration", key_file=DEMO_KEY))


def granted_load_statistics(outcome: RunOutcome) -> dict[str, Any]:
    """Every SLO measured and met and the plan granted: then the run's load statistics."""
    slos = {s.name: s for s in outcome.results.slos}
    assert set(slos) == {"p95_ms", "error_rate", "throughput_rps"}
    assert all(s.measured is not None and s.passed for s in slos.values()), slos
    assert outcome.results.decision.verdict == "granted"
    (stats_file,) = outcome.run_dir.glob("load-*.json")
    stats: dict[str, Any] = json.loads(stats_file.read_text())
    return stats


def test_slos_are_measured_and_met(reference: str, tmp_path: Path) -> None:
    outcome = run(tmp_path, reference, p95=5000)
    stats = granted_load_statistics(outcome)
    assert stats["requests"] > 20 and stats["failures"] == 0  # every request carried the token
    assert {"GET Patient/[id]", "POST Observation"} <= set(stats["by_request"])
    for written in outcome.run_dir.iterdir():
        if written.is_file():
            assert "eyJ" not in written.read_text(encoding="utf-8", errors="replace"), written.name


def test_without_a_token_the_load_is_refused_and_the_slos_breached(reference: str, tmp_path: Path) -> None:
    without_auth = PLAN.replace("  auth:\n    client_id: eqlab-demo-system\n    key_file: {key_file}\n", "")
    outcome = run_text(tmp_path, without_auth.format(base_url=reference, p95=5000, environment="integration"))
    error_rate = next(s for s in outcome.results.slos if s.name == "error_rate")
    assert error_rate.measured == 1.0 and error_rate.passed is False  # 401 for every request
    assert outcome.results.decision.verdict == "refused"


def test_a_lab_that_cannot_authenticate_reports_it(reference: str, tmp_path: Path) -> None:
    other = tmp_path / "other.jwk"
    other.write_text(json.dumps(ECKey.generate_key("P-384").as_dict(private=True)))
    plan = PLAN.format(base_url=reference, p95=5000, environment="integration", key_file=other)
    with pytest.raises(PreflightError, match="invalid_client"):  # the pre-flight's one token says so first
        run_text(tmp_path, plan)
    outcome = run_text(tmp_path, plan, preflight=False)
    (error,) = outcome.results.lab_errors
    assert "the load suites did not run: the lab could not authenticate" in error and "invalid_client" in error
    assert outcome.results.decision.verdict == "inconclusive"


def test_a_breached_slo_refuses_the_label(reference: str, tmp_path: Path) -> None:
    outcome = run(tmp_path, reference, p95=0.001)
    breached = next(s for s in outcome.results.slos if s.name == "p95_ms")
    assert breached.passed is False and breached.measured is not None and breached.measured > 0.001
    assert outcome.results.decision.verdict == "refused"
    step = next(s for s in outcome.results.decision.reasons if s.rule == "slo-breached")
    assert step.outcome == "triggered" and "p95_ms" in str(step.detail)


def test_slos_without_a_load_suite_are_unmeasured_so_inconclusive(reference: str, tmp_path: Path) -> None:
    load_suite = "  - kind: load\n    path: load/fhir\n    params: {{users: 4, spawn_rate: 4, duration: 3}}\n"
    contract_only = PLAN.replace(load_suite, "  - kind: contract\n    path: contract/fhir\n")
    text = contract_only.format(base_url=reference, p95=100, environment="integration", key_file=DEMO_KEY)
    outcome = run_text(tmp_path, text)
    assert all(s.passed is None for s in outcome.results.slos)
    assert outcome.results.decision.verdict == "inconclusive"


def test_load_is_never_sent_to_a_non_loopback_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EQLAB_ALLOW_REMOTE_LOAD", raising=False)
    with pytest.raises(ValueError, match=r"only target loopback addresses, not 10\.9\.8\.7"):
        run(tmp_path, "http://10.9.8.7:8080/fhir", p95=100)
    assert not list(tmp_path.glob("*T*Z-load-test-*")), "no run folder: the run never started"
