"""Client detection, as `make detection` runs it: every client plan of testplans/ grants the clean
reference client, and a fault of the reference client is caught by each plan whose scope holds the
requirement it breaks (refused for a SHALL, reservations at least for a SHOULD), with the check and the
request that prove it; `make detection` runs every plan with every fault in its scope."""

from __future__ import annotations

from pathlib import Path

import pytest

from eqlab.commands.common import load_catalogue
from eqlab.commands.detection import client_plans_and_faults, detect_client
from reference_client.faults import FAULTS
from tests.support.detection import first_of_each_group

pytestmark = pytest.mark.slow

PLANS = {plan.loaded.plan.label: plan for plan in client_plans_and_faults(load_catalogue(None))}
PAIRS = [(label, fault) for label, plan in PLANS.items() for fault in plan.faults]
SAMPLED_PAIRS = first_of_each_group(PAIRS, lambda pair: pair[0])  # `make detection` runs every pair


def test_every_client_fault_is_in_the_scope_of_a_client_plan() -> None:
    assert {fault for _, fault in PAIRS} == set(FAULTS)
    assert {
        "smart-client",
        "smart-backend-client",
        "fhir-client",
        "mpi-identity-source",
        "mpi-consumer",
        "dsp-document-source",
        "dsp-document-consumer",
    } <= set(PLANS)


@pytest.mark.parametrize("label", sorted(PLANS))
def test_the_clean_reference_client_is_granted(label: str, tmp_path: Path, seeded_store: Path) -> None:
    found = detect_client(PLANS[label].loaded, None, tmp_path, tmp_path / "lab.pem", seeded_store)
    assert found.verdict == "granted", f"{label}: {found.verdict}, failed {found.failed} ({found.run_dir})"


@pytest.mark.parametrize(("label", "fault"), SAMPLED_PAIRS)
def test_a_client_fault_is_caught_with_the_request_that_proves_it(
    label: str, fault: str, tmp_path: Path, seeded_store: Path
) -> None:
    found = detect_client(PLANS[label].loaded, fault, tmp_path, tmp_path / "lab.pem", seeded_store)
    assert found.caught, f"{label} with {fault}: verdict {found.verdict}, failed {found.failed}"
    requirement, _, rest = found.proof.partition(" by test_")
    assert requirement == FAULTS[fault].breaks and " -> " in rest, found.proof  # the check, then the exchange
