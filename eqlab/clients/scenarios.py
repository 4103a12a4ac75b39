"""Scenarios of a client plan, and how they are played against the client under test.

A scenario is a list of steps, played in order while the journal tags what arrives with the
scenario and step:

- ``say``: an instruction for a person (printed with the values to use);
- ``run``: a shell command that drives the client unattended, with ``EQLAB_*`` variables saying
  where the platform is and which client, user and inputs to use (and ``EQLAB_PYTHON``, the lab's
  own Python, for the reference client); its exit status and output are kept;
- ``expect``: requests that must arrive (at least ``min``, at most ``max`` matching ones in the
  scenario) within the step's time;
- ``respond``: from now on, answer matching requests with this failure ``times`` times, in the
  platform's place.

A step that does not pass ends its scenario: the steps after it are not tested. A client command
that exits non-zero or outlives its time is an error (the scenario could not be completed); an
expected request that never comes is a failure.
"""

from __future__ import annotations

import os
import queue
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal, TextIO

from pydantic import BaseModel, ConfigDict, Field, model_validator

from eqlab.catalogue import REQUIREMENT_ID
from eqlab.clients.captured import ClientRequest
from eqlab.clients.journal import Journal
from eqlab.clients.matchers import Injection, RequestMatcher
from eqlab.evidence import redaction
from eqlab.interrupt import StopRequest, run_child

SCENARIO_NAME = r"^[a-z][a-z0-9-]*$"
DEFAULT_STEP_TIMEOUT_S = 60.0
OUTPUT_KEPT_CHARS = 4000
SHOWN_REQUESTS = 8  # a failed expectation lists this many of the requests that did arrive
SETTLE_S = 1.0  # after the client command exited, for requests still in flight through the recorder
StepOutcome = Literal["pass", "fail", "error", "not-tested"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Expected(RequestMatcher):
    """Requests a step waits for: how many of the scenario's requests must match."""

    min: int = Field(1, ge=0)
    max: int | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _bounds_in_order(self) -> Expected:
        if self.max is not None and self.max < self.min:
            raise ValueError(f"max ({self.max}) is below min ({self.min})")
        return self


class Respond(_Strict):
    when: RequestMatcher
    status: int = Field(..., ge=100, le=599)
    headers: dict[str, str] = Field(default_factory=dict)
    body: str = ""
    times: int = Field(1, ge=1, description="how many matching requests get this answer")


class Step(_Strict):
    """Exactly one of say, run, expect, respond."""

    say: str | None = None
    run: str | None = None
    expect: list[Expected] | None = Field(None, min_length=1)
    respond: Respond | None = None
    timeout_s: float = Field(DEFAULT_STEP_TIMEOUT_S, gt=0, description="for run and expect")

    @model_validator(mode="after")
    def _one_action(self) -> Step:
        given = [name for name in ("say", "run", "expect", "respond") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"a step does exactly one of say, run, expect, respond; this one has {given or 'none'}")
        return self

    @property
    def kind(self) -> str:
        return next(name for name in ("say", "run", "expect", "respond") if getattr(self, name) is not None)


class Scenario(_Strict):
    name: str = Field(..., pattern=SCENARIO_NAME)
    requirements: list[Annotated[str, Field(pattern=REQUIREMENT_ID)]] = Field(
        ..., min_length=1, description="requirement IDs the scenario exercises"
    )
    inputs: dict[str, str] = Field(default_factory=dict, description="EQLAB_INPUT_<NAME> for the client")
    user: str | None = Field(None, description="the plan's test user the client signs in as")
    steps: list[Step] = Field(..., min_length=1)

    @model_validator(mode="after")
    def _plain_input_names(self) -> Scenario:
        bad = [name for name in self.inputs if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name)]
        if bad:
            raise ValueError(f"input names must be letters, digits and _: {', '.join(bad)}")
        return self


@dataclass(frozen=True)
class ClientSetting:
    """What the client under test is told, through ``EQLAB_*`` variables, for one scenario."""

    fhir_base: str
    client_id: str
    redirect_uri: str | None = None
    username: str | None = None
    password: str | None = None  # a secret: never printed, removed from every output kept

    def environment(self, scenario: Scenario) -> dict[str, str]:
        values = {
            "EQLAB_PYTHON": sys.executable,  # the lab's Python, for clients shipped with the project
            "EQLAB_FHIR_BASE": self.fhir_base,
            "EQLAB_CLIENT_ID": self.client_id,
            "EQLAB_SCENARIO": scenario.name,
            **({"EQLAB_REDIRECT_URI": self.redirect_uri} if self.redirect_uri else {}),
            **({"EQLAB_USERNAME": self.username} if self.username else {}),
            **({"EQLAB_PASSWORD": self.password} if self.password else {}),
        }
        values.update({f"EQLAB_INPUT_{name.upper()}": value for name, value in scenario.inputs.items()})
        return values

    def shown(self, scenario: Scenario) -> dict[str, str]:
        """The same values for a person to read: the password stays hidden."""
        return {k: ("(set)" if k == "EQLAB_PASSWORD" else v) for k, v in self.environment(scenario).items()}


@dataclass(frozen=True)
class StepResult:
    scenario: str
    step: str  # "2 run", "3 expect"…: its place and kind
    outcome: StepOutcome
    message: str
    output: str = ""  # a run step's output, secrets removed
    duration_s: float = 0.0


@dataclass
class ScenarioPlayer:
    """Plays scenarios against the client under test, the journal recording what it sends."""

    journal: Journal
    setting: ClientSetting
    stop: StopRequest = field(default_factory=StopRequest)
    client_command: str | None = None  # replaces every run step's command (``--client-command``)
    say: Callable[[str], None] = print
    keyboard: Keyboard | None = None  # a person at the keyboard drives the client: run steps are theirs
    workdir: Path | None = None  # where run steps run: the plan's folder, so plans name files next to them
    _client_ended: bool = field(default=False, init=False)

    def play(self, scenario: Scenario) -> list[StepResult]:
        results: list[StepResult] = []
        self._client_ended = False  # a run step's command exited: what it sent has arrived
        self.journal.clear_injections()
        try:
            for number, step in enumerate(scenario.steps, start=1):
                name = f"{number} {step.kind}"
                if (results and results[-1].outcome != "pass") or self.stop.requested:
                    why = "interrupted" if self.stop.requested else f"step {results[-1].step} did not pass"
                    results.append(StepResult(scenario.name, name, "not-tested", why))
                    continue
                self.journal.enter(scenario.name, name)
                began = time.monotonic()
                outcome, message, output = self._step(scenario, step)
                results.append(StepResult(scenario.name, name, outcome, message, output, time.monotonic() - began))
        finally:
            self.journal.clear_injections()
        return results

    def _step(self, scenario: Scenario, step: Step) -> tuple[StepOutcome, str, str]:
        if step.say is not None:
            self.say(self._instruction(scenario, step.say))
            return "pass", f"instruction shown: {step.say}", ""
        if step.respond is not None:
            r = step.respond
            self.journal.inject(Injection(r.when, r.status, dict(r.headers), r.body, remaining=r.times))
            return "pass", f"the next {r.times} request(s) {r.when.describe()} get {r.status}", ""
        if step.run is not None and self.keyboard is not None:
            return "pass", "left to the person at the keyboard (interactive)", ""
        if step.run is not None:
            ran = self._run(scenario, self.client_command or step.run, step.timeout_s)
            self._client_ended = True
            return ran
        assert step.expect is not None
        # Once the client command has exited, its requests have arrived: no use waiting the step's time.
        wait_s = min(step.timeout_s, SETTLE_S) if self._client_ended else step.timeout_s
        return self._expect(scenario, step.expect, wait_s)

    def _instruction(self, scenario: Scenario, text: str) -> str:
        values = "\n".join(f"  {k}={v}" for k, v in self.setting.shown(scenario).items())
        return f"[{scenario.name}] {text}\n{values}"

    def _run(self, scenario: Scenario, command: str, timeout_s: float) -> tuple[StepOutcome, str, str]:
        environment = {**os.environ, **self.setting.environment(scenario)}
        done = run_child(["/bin/sh", "-c", command], timeout_s, self.stop, env=environment, cwd=self.workdir)
        output = self._clean((done.stdout + done.stderr)[-OUTPUT_KEPT_CHARS:])
        # A client that crashes or hangs leaves its scenario unfinished: an error (the checks still
        # judge what it sent); a request it never sends fails the expect step that waits for it.
        if done.exit_code is None:
            why = "the run was interrupted" if self.stop.requested else f"did not finish within {timeout_s:g} s"
            return "error", f"the client command {why} (stopped)", output
        if done.exit_code != 0:
            last = next((line for line in reversed(output.splitlines()) if line.strip()), "no output")
            return "error", f"the client command exited {done.exit_code}: {last}", output
        return "pass", "the client command exited 0", output

    def _clean(self, output: str) -> str:
        secrets = [self.setting.password] if self.setting.password else []
        return redaction.text(redaction.known(output, secrets))

    def _expect(self, scenario: Scenario, expected: list[Expected], timeout_s: float) -> tuple[StepOutcome, str, str]:
        def counts() -> list[int]:
            mine = self.journal.requests(lambda r: r.scenario == scenario.name)
            return [sum(1 for r in mine if e.matches(r)) for e in expected]

        progress = _Progress(self.say, expected) if self.keyboard is not None else None
        answer: list[str] = []

        def finished() -> bool:
            now = counts()
            if progress is not None and self.keyboard is not None:
                progress.show(now)
                answer.extend(self.keyboard.lines())
            return bool(answer) or self.stop.requested or all(n >= e.min for n, e in zip(now, expected, strict=True))

        self.journal.wait(finished, timeout_s)
        if self.stop.requested:
            return "not-tested", "interrupted", ""
        if answer and answer[0].strip().lower() == SKIP_ANSWER:
            return "not-tested", "skipped by the person at the keyboard", ""
        problems = []
        for n, e in zip(counts(), expected, strict=True):
            if n < e.min:
                if answer:
                    within = "before the step was ended at the keyboard"
                else:
                    within = "before the client command ended" if self._client_ended else f"within {timeout_s:g} s"
                problems.append(f"expected {e.min} × {e.describe()} {within}, received {n}")
            elif e.max is not None and n > e.max:
                problems.append(f"expected at most {e.max} × {e.describe()}, received {n}")
        if not problems:
            return "pass", "; ".join(f"{n} × {e.describe()}" for n, e in zip(counts(), expected, strict=True)), ""
        seen = self.journal.requests(lambda r: r.scenario == scenario.name)
        return "fail", "; ".join(problems) + f". {_what_came(seen)}", ""


SKIP_ANSWER = "s"


class Keyboard:
    """Lines a person types, read by a thread so that waiting for requests never blocks on them."""

    def __init__(self, stream: TextIO) -> None:
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, args=(stream,), daemon=True, name="eqlab-keyboard").start()

    def _read(self, stream: TextIO) -> None:
        for line in stream:
            self._lines.put(line)

    def lines(self) -> list[str]:
        """What was typed since the last call (each Enter ends a line)."""
        typed = []
        while not self._lines.empty():
            typed.append(self._lines.get_nowait())
        return typed


class _Progress:
    """The live count of matching requests, shown to the person each time it changes."""

    def __init__(self, say: Callable[[str], None], expected: list[Expected]) -> None:
        self.say = say
        self.expected = expected
        self.shown: list[int] | None = None
        say(f"waiting for the client's requests (Enter: the step is done; {SKIP_ANSWER} then Enter: skip it)")

    def show(self, counts: list[int]) -> None:
        if counts == self.shown:
            return
        self.shown = counts
        self.say("  " + "; ".join(f"{n}/{e.min} × {e.describe()}" for n, e in zip(counts, self.expected, strict=True)))


def _what_came(requests: list[ClientRequest]) -> str:
    if not requests:
        return "No request of this scenario reached the platform."
    shown = ", ".join(f"{r.method} {r.path} -> {r.status}" for r in requests[:SHOWN_REQUESTS])
    more = f" and {len(requests) - SHOWN_REQUESTS} more" if len(requests) > SHOWN_REQUESTS else ""
    return f"The scenario's {len(requests)} request(s): {shown}{more}."
