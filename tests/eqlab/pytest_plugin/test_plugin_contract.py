"""The contract between the lab and its pytest plugin: the run configuration it is given and the
events it writes back, one model on each side. Each event kind survives its line; a configuration
or a line that is not one is refused with what is wrong, never half-read."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import get_args

import pytest

from eqlab.pytest_plugin.events import (
    Collected,
    CollectedItem,
    CollectionError,
    ItemFinished,
    ItemStarted,
    PluginEvent,
    SessionFinished,
    UnreadableEvent,
    event_line,
    read_event,
)
from eqlab.pytest_plugin.run_config import (
    ClientRunSettings,
    RunConfig,
    RunConfigError,
    SuiteSettings,
    TargetSettings,
    read_run_config,
    write_run_config,
)
from eqlab.results import Exchange, ItemResult, Message

ITEM = CollectedItem(
    id="contract/fhir/test_read.py::test_read", name="A read", suite="contract", requirements=["fhir@3"]
)
EXCHANGE = Exchange(
    id="x1",
    method="GET",
    url="http://127.0.0.1:9/fhir/Patient/1",
    request=Message(headers={"accept": "application/fhir+json"}),
    status=200,
    response=Message(body_excerpt='{"resourceType": "Patient", "name": "Zoë"}', body_size=41),
    started="2026-01-01T00:00:00.000+00:00",
    elapsed_ms=3.5,
)
EVENTS: list[PluginEvent] = [
    Collected(items=[ITEM, ITEM.model_copy(update={"id": "b"})]),
    CollectionError(where="contract/fhir/test_broken.py", message="SyntaxError: invalid syntax\n  line 3"),
    ItemStarted(id=ITEM.id),
    ItemFinished(
        result=ItemResult(
            **ITEM.model_dump(),
            outcome="fail",
            message="expected 200, got 404",
            detail="assert 404 == 200",
            duration_s=0.25,
            started="2026-01-01T00:00:00.000+00:00",
            exchanges=[EXCHANGE],
            notes=["a remark"],
        )
    ),
    SessionFinished(exitstatus=1),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: e.event)
def test_each_event_kind_reads_back_as_written(event: PluginEvent) -> None:
    line = event_line(event)
    assert line.endswith("\n") and "\n" not in line[:-1]  # one line each: the runner reads the file as it grows
    assert read_event(line) == event


def test_every_kind_the_plugin_writes_is_covered() -> None:
    union = get_args(PluginEvent)[0]
    written = {kind.model_fields["event"].default for kind in get_args(union)}
    assert {e.event for e in EVENTS} == written


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("not json", "Invalid JSON"),
        ('{"event": "party"}', "party"),
        ('{"event": "item_finished"}', "result"),
        ('{"event": "item_started", "id": "a", "extra": 1}', "extra"),
        ('{"event": "stopping", "signal": "SIGINT"}', "stopping"),  # the runner's own: never in the file
        ('{"event": "item_finished", "result": {"id": "a"}}', "result.name"),
    ],
)
def test_a_line_that_is_no_event_is_refused_with_why(line: str, reason: str) -> None:
    with pytest.raises(UnreadableEvent, match=reason):
        read_event(line)


def test_the_run_configuration_reads_back_as_written(tmp_path: Path) -> None:
    config = RunConfig(
        target=TargetSettings(
            base_url="https://sut.example/fhir",
            auth={"token_url": "https://sut.example/auth/token", "client_id": "lab"},
            allowed_origins=["https://login.example"],
        ),
        run_id="20260101T000000Z-demo-abcdef",
        run_dir=tmp_path / "run",
        catalogue=tmp_path / "requirements",
        requirements=["fhir@1", "fhir@2"],
        environment="qualification",
        suites=[SuiteSettings(kind="fuzz", paths=[tmp_path / "fuzz"], timeout=30, params={"max_examples": 5})],
        client=ClientRunSettings(journal=tmp_path / "journal.jsonl", client_id="app", scopes=["openid"]),
    )
    path = tmp_path / "run-config.json"
    write_run_config(config, path)
    assert read_run_config(path) == config


def test_a_malformed_run_configuration_is_refused_naming_each_problem(tmp_path: Path) -> None:
    path = tmp_path / "run-config.json"
    path.write_text('{"target": {}, "suites": [{"kind": "fuzz", "timout": 3}], "environment": "staging"}')
    with pytest.raises(RunConfigError) as refused:
        read_run_config(path)
    message = str(refused.value)
    assert str(path) in message
    assert "target.base_url: Field required" in message
    assert "suites.0.timout: Extra inputs are not permitted" in message
    assert "environment: Input should be 'integration'" in message


def test_a_run_configuration_that_is_not_json_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "run-config.json"
    path.write_text("{target: ")
    with pytest.raises(RunConfigError, match=r"\(file\): Invalid JSON"):
        read_run_config(path)
    with pytest.raises(RunConfigError, match="cannot be read"):
        read_run_config(tmp_path / "missing.json")


def test_pytest_given_a_malformed_run_configuration_stops_before_any_check(tmp_path: Path) -> None:
    (tmp_path / "test_one.py").write_text("def test_one(): pass\n")
    config = tmp_path / "run-config.json"
    config.write_text('{"target": {"base_url": "http://127.0.0.1:9/fhir"}, "run_dir": 7, "suites": "all"}')
    command = [sys.executable, "-m", "pytest", str(tmp_path), "-p", "no:cacheprovider", "--eqlab-config", str(config)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path)
    printed = done.stdout + done.stderr
    assert done.returncode == 4, printed  # a usage error: nothing ran
    assert f"--eqlab-config: run configuration {config} is not valid" in printed
    assert "run_dir: Input is not a valid path" in printed and "suites: Input should be a valid array" in printed
