"""``eqlab detection``: the matrix proving the checks catch every deliberate defect.

The clean reference implementation runs the whole reference plan (it must be granted); each of its
faults runs the checks of the requirements it breaks (it must be caught); each client plan runs with
the clean reference client, then with each of the client's faults in its scope. Every run is a process
of its own (own server, port, store and run folder), ``--jobs`` at a time: the matrix takes its
slowest runs' time over the machine's cores, and a run that crashes is a row, not the end of the table.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import click

from eqlab import paths
from eqlab.catalogue import Catalogue
from eqlab.commands.common import load_catalogue
from eqlab.commands.run_pool import FailedRun, in_parallel
from eqlab.commands.store_admin import demo_secrets, embedded_platform
from eqlab.plan.loader import LoadedPlan, load_plan
from eqlab.reports import certificate
from eqlab.results import RunResults
from eqlab.runner.client_suites import SCENARIO_ITEM_PREFIX
from eqlab.runner.options import RunOptions
from eqlab.runner.run import run_plan
from eqlab.signing import LabKey

CLIENT_FAULTS_ENV = "EQLAB_CLIENT_FAULTS"  # the reference client's own switch (reference_client/config.py)
STORE_FILE = "reference.sqlite3"


class ReferenceFault(Protocol):
    """What the matrix needs of a fault of the reference implementation."""

    @property
    def description(self) -> str: ...

    @property
    def breaks(self) -> tuple[str, ...]: ...  # requirement IDs


def reference_faults() -> Mapping[str, ReferenceFault]:
    """The reference implementation's deliberate defects by name: the one place the lab asks for them."""
    from reference_impl.app import FAULTS

    return FAULTS


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


Row = Detection | FailedRun


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


def detect_client(
    loaded: LoadedPlan,
    fault: str | None,
    out: Path | None,
    key_path: Path | None,
    seeded_store: Path | None = None,
) -> Detection:
    """Run a client plan with the reference client (``fault`` switched on, if any) on the embedded platform
    (its store a copy of ``seeded_store``, when given); a fault is run against the checks of the requirement
    it breaks."""
    from reference_client.faults import FAULTS

    assert loaded.plan.client is not None, "only client plans"
    expected = (FAULTS[fault].breaks,) if fault else ()
    platform = embedded_platform(loaded.plan.client, loaded.path.parent, seeded_store)
    with demo_secrets(), _client_faults(fault), platform as base:
        options = RunOptions(target=base, requirements=expected, out=out, quiet=True)
        key = LabKey.load_or_create(key_path)
        outcome = run_plan(loaded, _catalogue(), options, paths.suites_dir(), paths.reports_out_dir(), key)
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


@functools.cache
def _catalogue() -> Catalogue:
    return load_catalogue(None)


@functools.cache
def _reference_plan() -> LoadedPlan:
    return load_plan(paths.testplans_dir() / "reference.yaml", _catalogue(), paths.suites_dir())


def detect(
    faults: frozenset[str],
    out: Path | None = None,
    workers: int = 1,
    key_path: Path | None = None,
    suites: tuple[str, ...] = (),
    requirements: tuple[str, ...] = (),
    seeded_store: Path | None = None,
) -> Detection:
    """Run testplans/reference.yaml on the reference implementation with ``faults`` on.

    ``suites`` and ``requirements`` (selectors) narrow the run: each fault is run against the checks of
    the requirements it breaks, so the matrix grows with the faults, not with faults x catalogue. The
    server's store starts as a copy of ``seeded_store`` (made by ``seed_store``), else empty and seeded.
    """
    from reference_impl.app import create_app
    from reference_impl.embedded import serve_in_thread
    from reference_impl.settings import Settings

    expected = tuple(sorted({rid for name in faults for rid in reference_faults()[name].breaks}))
    with tempfile.TemporaryDirectory(prefix="eqlab-detection-") as store, demo_secrets():
        if seeded_store:
            shutil.copyfile(seeded_store, Path(store) / STORE_FILE)
        app = create_app(Settings(db_url=f"sqlite:///{Path(store) / STORE_FILE}", seed="demo", faults=faults))
        with serve_in_thread(app) as base_url:
            options = RunOptions(
                target=base_url, suites=suites, requirements=requirements, workers=workers, out=out, quiet=True
            )
            key_ = LabKey.load_or_create(key_path)
            outcome = run_plan(
                _reference_plan(), _catalogue(), options, paths.suites_dir(), paths.reports_out_dir(), key_
            )
    results = outcome.results
    failed = [r.id for r in results.requirements if r.status == "fail"]
    return Detection(faults, expected, results.decision.verdict, failed, proof_of(results, expected), outcome.run_dir)


def seed_store(folder: Path) -> Path:
    """A store of the reference implementation with the demo data, for runs to start from a copy (seeding
    once instead of once per run); its server has stopped, so the file is complete on its own."""
    from reference_impl.app import create_app
    from reference_impl.embedded import serve_in_thread
    from reference_impl.settings import Settings

    store = folder / STORE_FILE

    def seed() -> None:
        with serve_in_thread(create_app(Settings(db_url=f"sqlite:///{store}", seed="demo"))):
            pass  # starting it migrated and seeded the store

    # In a process of its own: the matrix forks its runs from this one, which should hold no other
    # thread then (a lock another thread holds at a fork stays locked in the child for good).
    seeding = multiprocessing.get_context("fork").Process(target=seed)
    seeding.start()
    seeding.join()
    if seeding.exitcode != 0:
        raise click.ClickException(f"seeding the reference store failed (exit code {seeding.exitcode})")
    return store


def run_matrix(only: str | None, workers: int, jobs: int, out: Path | None, key_path: Path | None) -> bool:
    """Print the detection table (the clean server on the whole plan, then each fault on the checks of the
    requirements it breaks; then the client table unless ``only`` names faults); True if all were caught."""
    faults = reference_faults()
    names = [n.strip() for n in (only or "").split(",") if n.strip()] or list(faults)
    unknown = sorted(set(names) - set(faults))
    if unknown:
        raise click.BadParameter(f"unknown fault(s) {', '.join(unknown)}", param_hint="--faults")
    LabKey.load_or_create(key_path)  # made once here, not by racing runs
    client_plans = client_plans_and_faults(_catalogue()) if only is None else []
    with tempfile.TemporaryDirectory(prefix="eqlab-detection-") as folder:
        seeded = seed_store(Path(folder))
        runs: list[Callable[[], Detection]] = [
            functools.partial(detect, frozenset(), out, workers, key_path, seeded_store=seeded)
        ]  # the whole plan: the clean server must be granted
        # Each fault breaks SHALL requirements the contract suite checks: their checks must fail and refuse.
        runs += [
            functools.partial(
                detect, frozenset({name}), out, workers, key_path, ("contract",), faults[name].breaks, seeded
            )
            for name in names
        ]
        for client_plan in client_plans:
            runs += [
                functools.partial(detect_client, client_plan.loaded, name, out, key_path, seeded)
                for name in (None, *client_plan.faults)
            ]
        certificate.load_renderer()  # once here, not in each forked run that renders a certificate
        with closing(in_parallel(runs, jobs)) as rows:
            missed = _reference_table(names, rows)
            if client_plans:
                missed += _client_table(client_plans, rows)
    return not missed


def _reference_table(names: list[str], rows: Iterator[Row]) -> list[Row]:
    clean = next(rows)
    _print_clean("(none: clean server)", clean)
    fault_rows = []
    for name in names:
        fault_rows.append(next(rows))
        _print_row(name, fault_rows[-1])
    caught = sum(row.caught for row in fault_rows)
    click.echo(f"\ndetection: {caught} of {len(names)} faults caught; clean server {clean.verdict}")
    return [row for row in (clean, *fault_rows) if not row.caught]


def _client_table(client_plans: list[ClientPlanFaults], rows: Iterator[Row]) -> list[Row]:
    """Each client plan with the clean reference client (granted), then with each of the reference
    client's faults that break a requirement of the plan (refused)."""
    click.echo("\nclient plans, with the reference client (reference_client/)")
    missed, total, caught = [], 0, 0
    for client_plan in client_plans:
        clean = next(rows)
        _print_clean(client_plan.loaded.plan.label + " (clean client)", clean)
        missed += [] if clean.caught else [clean]
        for name in client_plan.faults:
            row = next(rows)
            total, caught = total + 1, caught + row.caught
            missed += [] if row.caught else [row]
            _print_row(f"  {name}", row)
    click.echo(f"\nclient detection: {caught} of {total} plan x fault runs caught")
    return missed


def _print_clean(label: str, row: Row) -> None:
    click.echo(f"{label:32} {row.verdict:26} {'granted expected':10}")
    if isinstance(row, FailedRun):
        click.echo(f"{'':32} {row.reason}")


def _print_row(name: str, row: Row) -> None:
    mark = "caught" if row.caught else "MISSED"
    if isinstance(row, FailedRun):
        click.echo(f"{name:32} {row.verdict:26} {mark:7} {row.reason}")
        return
    click.echo(f"{name:32} {row.verdict:26} {mark:7} failed: {', '.join(row.failed) or '-'}")
    if row.proof:
        click.echo(f"{'':32} proof: {row.proof}")
