"""Scenarios played against a client under test, through the recorder in front of the reference
implementation: the client's commands are small Python programs run as a vendor's would be."""

from __future__ import annotations

import os
import re
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from eqlab.clients.journal import Journal
from eqlab.clients.proxy import RecordingProxy, serve_on_loopback
from eqlab.clients.scenarios import ClientSetting, Keyboard, Scenario, ScenarioPlayer
from eqlab.interrupt import StopRequest
from tests.eqlab.conftest import DemoReference

PASSWORD = "correct horse battery staple"


def client(code: str) -> str:
    """A shell command running ``code`` with Python, httpx at hand, as the client under test."""
    program = f"import os, sys, time, httpx\nbase = os.environ['EQLAB_FHIR_BASE']\n{code}"
    return f"{sys.executable} -c {_quoted(program)}"


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


def scenario(*steps: dict[str, object], name: str = "read-metadata", **extra: object) -> Scenario:
    return Scenario.model_validate({"name": name, "requirements": ["fhirclient@1"], "steps": list(steps), **extra})


@pytest.fixture
def journal() -> Journal:
    return Journal()


@pytest.fixture
def player(demo_reference: DemoReference, journal: Journal) -> Iterator[ScenarioPlayer]:
    proxy = RecordingProxy(demo_reference.base_url.removesuffix("/fhir"), journal)
    with serve_on_loopback(proxy) as origin:
        setting = ClientSetting(f"{origin}/fhir", "vendor-app", "http://127.0.0.1:9/cb", "doctor", PASSWORD)
        shown: list[str] = []
        yield ScenarioPlayer(journal, setting, say=shown.append)


def test_a_client_that_does_what_the_step_expects_passes_and_gets_its_settings(
    player: ScenarioPlayer, tmp_path: Path
) -> None:
    seen = tmp_path / "seen.txt"
    code = (
        "httpx.get(base + '/metadata', headers={'accept': 'application/fhir+json'})\n"
        f"open({str(seen)!r}, 'w').write(' '.join(os.environ[k] for k in "
        "('EQLAB_SCENARIO', 'EQLAB_CLIENT_ID', 'EQLAB_USERNAME', 'EQLAB_INPUT_PATIENT', 'EQLAB_PYTHON')))\n"
        "print('signed in with', os.environ['EQLAB_PASSWORD'])"
    )
    played = player.play(
        scenario(
            {"say": "Open the patient's record"},
            {"run": client(code)},
            {"expect": [{"method": "GET", "path": "/fhir/metadata", "headers": {"accept": "application/fhir\\+json"}}]},
            inputs={"patient": "pat-0001"},
        )
    )
    assert [(r.step, r.outcome) for r in played] == [("1 say", "pass"), ("2 run", "pass"), ("3 expect", "pass")]
    assert seen.read_text() == f"read-metadata vendor-app doctor pat-0001 {sys.executable}"
    assert PASSWORD not in played[1].output and "signed in with [REDACTED]" in played[1].output
    assert [(r.scenario, r.step) for r in player.journal.requests()] == [("read-metadata", "2 run")]


def test_the_instruction_shows_the_values_to_use_but_never_the_password() -> None:
    shown: list[str] = []
    setting = ClientSetting("http://127.0.0.1:1/fhir", "vendor-app", username="doctor", password=PASSWORD)
    ScenarioPlayer(Journal(), setting, say=shown.append).play(scenario({"say": "Sign in as the doctor"}))
    assert shown[0].startswith("[read-metadata] Sign in as the doctor")
    assert "EQLAB_CLIENT_ID=vendor-app" in shown[0] and "EQLAB_PASSWORD=(set)" in shown[0]
    assert PASSWORD not in shown[0]


def test_a_request_that_never_comes_fails_the_step_naming_what_came_instead(player: ScenarioPlayer) -> None:
    began = time.monotonic()
    played = player.play(
        scenario(
            {"run": client("httpx.get(base + '/metadata')")},
            {"expect": [{"method": "GET", "path": "/fhir/Patient"}], "timeout_s": 1},
            {"say": "never shown"},
        )
    )
    assert time.monotonic() - began < 20
    assert [r.outcome for r in played] == ["pass", "fail", "not-tested"]
    assert played[1].message == (
        "expected 1 × GET /fhir/Patient before the client command ended, received 0. "
        "The scenario's 1 request(s): GET /fhir/metadata -> 200."
    )
    assert played[2].message == "step 2 expect did not pass"


def test_a_client_that_exits_non_zero_or_hangs_is_an_error_with_the_reason(player: ScenarioPlayer) -> None:
    crashed = player.play(scenario({"run": client("print('cannot find the token endpoint'); sys.exit(3)")}))
    assert (crashed[0].outcome, crashed[0].message) == (
        "error",
        "the client command exited 3: cannot find the token endpoint",
    )
    began = time.monotonic()
    hung = player.play(scenario({"run": client("time.sleep(60)"), "timeout_s": 1}))
    assert (hung[0].outcome, hung[0].message) == ("error", "the client command did not finish within 1 s (stopped)")
    assert time.monotonic() - began < 10


def test_an_injected_503_is_answered_once_and_a_client_that_retries_once_passes(player: ScenarioPlayer) -> None:
    retry_once = (
        "first = httpx.get(base + '/metadata')\n"
        "time.sleep(float(first.headers.get('retry-after', '0')))\n"
        "second = httpx.get(base + '/metadata')\n"
        "sys.exit(0 if (first.status_code, second.status_code) == (503, 200) else 1)"
    )
    metadata = {"method": "GET", "path": "/fhir/metadata"}
    played = player.play(
        scenario(
            {"respond": {"when": metadata, "status": 503, "headers": {"retry-after": "1"}, "times": 1}},
            {"run": client(retry_once)},
            {"expect": [{**metadata, "min": 2, "max": 2}]},
        )
    )
    assert [r.outcome for r in played] == ["pass", "pass", "pass"], played
    assert [(r.status, r.injected) for r in player.journal.requests()] == [(503, True), (200, False)]


def test_a_retry_storm_exceeds_the_expected_maximum(player: ScenarioPlayer) -> None:
    storm = "for _ in range(5): httpx.get(base + '/metadata')"
    played = player.play(
        scenario({"run": client(storm)}, {"expect": [{"method": "GET", "path": "/fhir/metadata", "max": 2}]})
    )
    assert played[1].outcome == "fail"
    assert played[1].message.startswith("expected at most 2 × GET /fhir/metadata, received 5.")


def test_the_client_command_replaces_every_run_step(player: ScenarioPlayer) -> None:
    player.client_command = client("sys.exit(0 if os.environ['EQLAB_SCENARIO'] == 'read-metadata' else 1)")
    played = player.play(scenario({"run": "false"}))
    assert played[0].outcome == "pass"


def test_a_stop_request_leaves_the_remaining_steps_not_tested(player: ScenarioPlayer) -> None:
    player.stop = StopRequest()
    player.stop.signal_name = "SIGINT"
    played = player.play(scenario({"say": "one"}, {"say": "two"}))
    assert [(r.outcome, r.message) for r in played] == [("not-tested", "interrupted")] * 2


@pytest.mark.parametrize(
    ("step", "problem"),
    [
        ({"say": "x", "run": "true"}, "exactly one of say, run, expect, respond; this one has ['say', 'run']"),
        ({}, "exactly one of say, run, expect, respond; this one has none"),
        ({"expect": [{"path": "/fhir/x", "min": 3, "max": 1}]}, "max (1) is below min (3)"),
        ({"expect": []}, "at least 1 item"),
        ({"respond": {"when": {"path": "/x"}, "status": 42}}, "greater than or equal to 100"),
        ({"run": "true", "timeout_s": 0}, "greater than 0"),
    ],
)
def test_a_badly_written_step_is_refused_with_the_reason(step: dict[str, object], problem: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(problem)):
        scenario(step)


def test_a_scenario_names_real_requirement_ids_and_plain_input_names() -> None:
    with pytest.raises(ValidationError, match="should match pattern"):
        scenario({"say": "x"}, requirements=["PKCE"])
    with pytest.raises(ValidationError, match="input names"):
        scenario({"say": "x"}, inputs={"the patient": "pat-0001"})


class TypedKeys:
    """What a person types, through a pipe the player's keyboard reads."""

    def __init__(self) -> None:
        read_end, self._write_end = os.pipe()
        self.keyboard = Keyboard(os.fdopen(read_end, encoding="utf-8"))

    def type(self, text: str) -> None:
        os.write(self._write_end, text.encode())


def test_a_person_ends_a_step_with_enter_and_the_count_so_far_is_judged(player: ScenarioPlayer) -> None:
    keys = TypedKeys()
    player.keyboard = keys.keyboard
    shown: list[str] = []
    player.say = shown.append
    two_reads = {"expect": [{"method": "GET", "path": "/fhir/metadata", "min": 2}], "timeout_s": 30}
    typist = threading.Timer(1.0, keys.type, args=("\n",))
    typist.start()
    began = time.monotonic()
    played = player.play(scenario({"run": client("httpx.get(base + '/metadata')")}, two_reads))
    assert time.monotonic() - began < 15, "Enter ended the wait, not the step's 30 s"
    assert played[0].message == "left to the person at the keyboard (interactive)"
    assert player.journal.requests() == [], "the run step is the person's, not the lab's"
    assert played[1].outcome == "fail"
    assert played[1].message.startswith(
        "expected 2 × GET /fhir/metadata before the step was ended at the keyboard, received 0."
    )
    assert any("Enter: the step is done" in line for line in shown)
    assert "  0/2 × GET /fhir/metadata" in shown


def test_a_person_skips_a_step_and_it_is_not_tested(player: ScenarioPlayer) -> None:
    keys = TypedKeys()
    player.keyboard = keys.keyboard
    keys.type("s\n")
    played = player.play(scenario({"expect": [{"path": "/fhir/Patient"}], "timeout_s": 30}))
    assert [(r.outcome, r.message) for r in played] == [("not-tested", "skipped by the person at the keyboard")]
