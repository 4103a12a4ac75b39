"""The client part of a run: play the scenarios through the recorder, then hand the journal to the checks.

The recorder stands in front of the platform (``setup.base_url``, the embedded reference or a
sandbox); the client under test is told the recorder's FHIR base. Each scenario becomes an item of
the results (its steps in the detail, the exchanges that arrived during it as evidence); the
journal is written to the run folder, and the client suites' checks (a pytest child, like the
server suites) judge it through the ``client_run`` fixture.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from eqlab.clients.journal import Journal
from eqlab.clients.judging import JOURNAL_FILE, save_journal
from eqlab.clients.proxy import RecordingProxy, serve_on_loopback
from eqlab.clients.scenarios import ClientSetting, Keyboard, Scenario, ScenarioPlayer, StepResult
from eqlab.evidence.recorder import EvidenceStore
from eqlab.plan.model import ClientUnderTest
from eqlab.pytest_plugin.run_config import ClientRunSettings
from eqlab.results import ItemResult, Outcome, worst
from eqlab.runner.options import RunSetup

SCENARIO_ITEM_PREFIX = "client-scenario::"
MAX_EXCHANGES_PER_SCENARIO = 200  # evidence kept per scenario item; the journal keeps the rest for the checks


@dataclass
class ClientPlay:
    items: list[ItemResult] = field(default_factory=list)
    check_config: ClientRunSettings | None = None  # what the client checks judge (the run configuration's client)


def play_client_suites(setup: RunSetup, note: Callable[[str], None] = print) -> ClientPlay:
    """Play every scenario of the plan's client suites against the client under test."""
    client = setup.loaded.plan.client
    in_scope = set(setup.in_scope)
    scenarios = [
        s
        for suite, _ in setup.suites
        if suite.kind == "client"
        for s in suite.scenarios
        if in_scope & set(s.requirements)  # a scenario exercising nothing in scope is not played
    ]
    if client is None or not scenarios:
        return ClientPlay()
    parts = urlsplit(setup.base_url)
    journal = Journal()
    proxy = RecordingProxy(f"{parts.scheme}://{parts.netloc}", journal, EvidenceStore(setup.run_dir))
    played = ClientPlay()
    keyboard: Keyboard | None = None
    with serve_on_loopback(proxy) as recorder:
        note(f"the client under test talks to the recorder at {recorder}{parts.path}")
        for scenario in scenarios:
            setting = _setting(client, scenario, f"{recorder}{parts.path}")
            player = ScenarioPlayer(journal, setting, setup.stop, setup.options.client_command, say=note)
            player.workdir = setup.loaded.path.parent
            if _person_drives(scenario, setup.options.interactive):
                keyboard = keyboard or Keyboard(sys.stdin)  # one reader of the terminal for the whole run
                player.keyboard = keyboard
            item = _item(scenario, player.play(scenario), journal)
            note(f"{item.outcome.upper():5} scenario {scenario.name}: {item.message}")
            played.items.append(item)
    kept = journal.requests()
    journal_path = setup.run_dir / JOURNAL_FILE
    save_journal(kept, journal_path)
    if journal.received > len(kept) and played.items:
        flood = f"the client sent {journal.received} requests; the first {len(kept)} are kept and judged"
        played.items[-1] = played.items[-1].model_copy(update={"notes": [*played.items[-1].notes, flood]})
    played.check_config = ClientRunSettings(
        journal=journal_path,
        client_id=client.client_id,
        redirect_uris=list(client.redirect_uris),
        scopes=client.scope.split(),
    )
    return played


def _person_drives(scenario: Scenario, interactive: bool) -> bool:
    """With --interactive, or for a scenario with no run step when a person is at the terminal."""
    unattended = any(step.run is not None for step in scenario.steps)
    return interactive or (not unattended and sys.stdin.isatty())


def _setting(client: ClientUnderTest, scenario: Scenario, fhir_base: str) -> ClientSetting:
    user = client.users.get(scenario.user) if scenario.user else None
    return ClientSetting(
        fhir_base=fhir_base,
        client_id=client.client_id,
        redirect_uri=client.redirect_uris[0] if client.redirect_uris else None,
        username=user.username if user else None,
        password=os.environ.get(user.password_env) if user and user.password_env else None,
    )


def _item(scenario: Scenario, steps: list[StepResult], journal: Journal) -> ItemResult:
    outcome: Outcome = worst([s.outcome for s in steps])
    first_problem = next((s for s in steps if s.outcome != "pass"), None)
    message = f"step {first_problem.step}: {first_problem.message}" if first_problem else f"{len(steps)} steps passed"
    detail = "\n".join(
        f"{s.step}: {s.outcome} ({s.duration_s:.1f} s) {s.message}" + (f"\n  output: {s.output}" if s.output else "")
        for s in steps
    )
    arrived = journal.requests(lambda r: r.scenario == scenario.name)
    exchanges = [r.exchange for r in arrived[:MAX_EXCHANGES_PER_SCENARIO] if r.exchange is not None]
    injected = [f"{r.exchange.id} ({r.status})" for r in arrived if r.injected and r.exchange is not None]
    notes = [f"answered by the lab in the platform's place (respond steps): {', '.join(injected)}"] if injected else []
    return ItemResult(
        id=f"{SCENARIO_ITEM_PREFIX}{scenario.name}",
        name=f"scenario {scenario.name}",
        suite="client",
        requirements=list(scenario.requirements),
        outcome=outcome,
        message=message,
        detail=detail,
        duration_s=round(sum(s.duration_s for s in steps), 3),
        exchanges=exchanges,
        notes=notes,
    )
