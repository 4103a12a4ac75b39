"""What ``eqlab detection`` reports for one run of the reference plan against a deliberately broken server."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import click

from eqlab import paths
from eqlab.catalogue import Catalogue
from eqlab.commands.common import load_catalogue
from eqlab.commands.store_admin import demo_secrets, embedded_platform
from eqlab.plan.loader import LoadedPlan, load_plan
from eqlab.results import RunResults
from eqlab.runner.client_suites import SCENARIO_ITEM_PREFIX
from eqlab.runner.options import RunOptions
from eqlab.runner.run import run_plan
from eqlab.signing import LabKey

CLIENT_FAULTS_ENV = "EQLAB_CLIENT_FAULTS"  # the reference client's own switch (reference_client/config.py)


@dataclass(frozen=True)
class Detection:
    """What the reference plan found against the reference implementation with some faults on."""

    faults: frozenset[str]
    expected: tuple[str, ...]  # the requirements the faults break
    verdict: str
    failed: list[str]  # requirements with status fail
    proof: str  # the requirement, check and HTTP exchange that proved the first expected failure
    run_dir: Path

    @property
    def caught(self) -> bool:
        """Clean: granted (with reservations at most). A fault: a requirement it breaks failed, and the
        verdict shows it (refused for a SHALL requirement; with reservations at least for a SHOULD one)."""
        if not self.faults:
            return self.verdict.startswith("granted")
        return self.verdict in ("refused", "granted-with-reservations") and bool(set(self.expected) & set(self.failed))


def proof_of(results: RunResults, expected: tuple[str, ...]) -> str:
    """The requirement, check and HTTP exchange that proved the first expected failure (a check's
    proof before a client scenario's: the check names the very request)."""
    for item in sorted(results.items, key=lambda i: i.id.startswith(SCENARIO_ITEM_PREFIX)):
        hits = [rid for rid in item.requirements if rid in expected]
        if item.outcome == "fail" and hits:
            exchange = item.exchanges[-1] if item.exchanges else None
            shown = f"{exchange.method} {exchange.url} -> {exchange.status}" if exchange else "no HTTP exchange"
            return f"{hits[0]} by {item.id.split('::')[-1]}: {shown}"
    return ""


@dataclass(frozen=True)
class ClientPlanFaults:
    """A client plan of testplans/ and the reference client's faults that break a requirement in its scope."""

    loaded: LoadedPlan
    faults: list[str]


def client_plans_and_faults(catalogue: Catalogue) -> list[ClientPlanFaults]:
    """Every client plan of testplans/ with the faults it must catch (a fault may be caught by several)."""
    from reference_client.faults import FAULTS  # the reference client is a program of its own: loaded lazily

    found = []
    for path in sorted(paths.testplans_dir().glob("*.yaml")):
        loaded = load_plan(path, catalogue, paths.suites_dir())
        if loaded.plan.client is None:
            continue
        scope = set(catalogue.select(loaded.plan.requirements.include, loaded.plan.requirements.exclude))
        found.append(ClientPlanFaults(loaded, [name for name, fault in FAULTS.items() if fault.breaks in scope]))
    return found


def detect_client(loaded: LoadedPlan, fault: str | None, out: Path | None, key_path: Path | None) -> Detection:
    """Run a client plan with the reference client (``fault`` switched on, if any) on the embedded platform;
    a fault is run against the checks of the requirement it breaks."""
    from reference_client.faults import FAULTS

    assert loaded.plan.client is not None, "only client plans"
    catalogue = load_catalogue(None)
    expected = (FAULTS[fault].breaks,) if fault else ()
    with demo_secrets(), _client_faults(fault), embedded_platform(loaded.plan.client, loaded.path.parent) as base:
        options = RunOptions(target=base, requirements=expected, out=out, quiet=True)
        key = LabKey.load_or_create(key_path)
        outcome = run_plan(loaded, catalogue, options, paths.suites_dir(), paths.reports_out_dir(), key)
    results = outcome.results
    failed = [r.id for r in results.requirements if r.status == "fail"]
    faults = frozenset({fault}) if fault else frozenset()
    return Detection(faults, expected, results.decision.verdict, failed, proof_of(results, expected), outcome.run_dir)


@contextmanager
def _client_faults(fault: str | None) -> Iterator[None]:
    saved = os.environ.pop(CLIENT_FAULTS_ENV, None)
    if fault:
        os.environ[CLIENT_FAULTS_ENV] = fault
    try:
        yield
    finally:
        os.environ.pop(CLIENT_FAULTS_ENV, None)
        if saved is not None:
            os.environ[CLIENT_FAULTS_ENV] = saved


def detect(
    faults: frozenset[str],
    out: Path | None = None,
    workers: int = 1,
    key_path: Path | None = None,
    suites: tuple[str, ...] = (),
    requirements: tuple[str, ...] = (),
) -> Detection:
    """Run testplans/reference.yaml on the reference implementation with ``faults`` on.

    ``suites`` and ``requirements`` (selectors) narrow the run: each fault is run against the checks of
    the requirements it breaks, so the matrix grows with the faults, not with faults x catalogue.
    """
    from reference_impl.app import FAULTS, create_app
    from reference_impl.embedded import serve_in_thread
    from reference_impl.settings import Settings

    catalogue_ = load_catalogue(None)
    loaded = load_plan(paths.testplans_dir() / "reference.yaml", catalogue_, paths.suites_dir())
    expected = tuple(sorted({rid for name in faults for rid in FAULTS[name].breaks}))
    with tempfile.TemporaryDirectory(prefix="eqlab-detection-") as store, demo_secrets():
        db_url = f"sqlite:///{Path(store) / 'reference.sqlite3'}"
        app = create_app(Settings(db_url=db_url, seed="demo", faults=faults))
        with serve_in_thread(app) as base_url:
            options = RunOptions(
                target=base_url, suites=suites, requirements=requirements, workers=workers, out=out, quiet=True
            )
            key_ = LabKey.load_or_create(key_path)
            outcome = run_plan(loaded, catalogue_, options, paths.suites_dir(), paths.reports_out_dir(), key_)
    results = outcome.results
    failed = [r.id for r in results.requirements if r.status == "fail"]
    return Detection(faults, expected, results.decision.verdict, failed, proof_of(results, expected), outcome.run_dir)


def run_matrix(only: str | None, workers: int, out: Path | None, key_path: Path | None) -> bool:
    """Print the detection table (the clean server on the whole plan, then each fault on the checks of the
    requirements it breaks; then the client table unless ``only`` names faults); True if all were caught."""
    from reference_impl.app import FAULTS

    names = [n.strip() for n in (only or "").split(",") if n.strip()] or list(FAULTS)
    unknown = sorted(set(names) - set(FAULTS))
    if unknown:
        raise click.BadParameter(f"unknown fault(s) {', '.join(unknown)}", param_hint="--faults")
    rows = [detect(frozenset(), out, workers, key_path)]  # the whole plan: the clean server must be granted
    click.echo(f"{'(none: clean server)':32} {rows[0].verdict:26} {'granted expected':10}")
    for name in names:
        # Each fault breaks SHALL requirements the contract suite checks: their checks must fail and refuse.
        row = detect(frozenset({name}), out, workers, key_path, suites=("contract",), requirements=FAULTS[name].breaks)
        rows.append(row)
        _print_row(name, row)
    missed = [r for r in rows if not r.caught]
    caught = len(names) - len([r for r in missed if r.faults])
    click.echo(f"\ndetection: {caught} of {len(names)} faults caught; clean server {rows[0].verdict}")
    if only is None:
        missed += _detect_client_faults(out, key_path)
    return not missed


def _print_row(name: str, row: Detection) -> None:
    mark = "caught" if row.caught else "MISSED"
    click.echo(f"{name:32} {row.verdict:26} {mark:7} failed: {', '.join(row.failed) or '-'}")
    if row.proof:
        click.echo(f"{'':32} proof: {row.proof}")


def _detect_client_faults(out: Path | None, key_path: Path | None) -> list[Detection]:
    """The client table: each client plan with the clean reference client (granted), then with each
    of the reference client's faults that break a requirement of the plan (refused)."""
    click.echo("\nclient plans, with the reference client (reference_client/)")
    missed, total, caught = [], 0, 0
    for client_plan in client_plans_and_faults(load_catalogue(None)):
        label = client_plan.loaded.plan.label
        clean = detect_client(client_plan.loaded, None, out, key_path)
        click.echo(f"{label + ' (clean client)':32} {clean.verdict:26} {'granted expected':10}")
        missed += [] if clean.caught else [clean]
        for name in client_plan.faults:
            row = detect_client(client_plan.loaded, name, out, key_path)
            total, caught = total + 1, caught + row.caught
            missed += [] if row.caught else [row]
            _print_row(f"  {name}", row)
    click.echo(f"\nclient detection: {caught} of {total} plan x fault runs caught")
    return missed
