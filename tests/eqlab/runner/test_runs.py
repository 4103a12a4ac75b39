"""Whole runs through the engine: the golden fixture run, hostile systems, partial reruns."""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from eqlab.catalogue import Catalogue
from eqlab.plan.loader import load_plan
from eqlab.runner.options import RunOptions
from eqlab.runner.run import RunOutcome, run_plan
from eqlab.signing import LabKey, verify_run
from reference_impl.embedded import serve_in_thread
from tests.fixtures.lab.fixture_server import app
from tests.support.paths import FIXTURES

LAB = FIXTURES / "lab"
GOLDEN = LAB / "golden-results.json"
# Times, ids, places and hashes of files that are edited; the machine's and libraries' headers.
VOLATILE = {
    "run_id",
    "started",
    "finished",
    "duration_s",
    "elapsed_ms",
    "valid_until",
    "path",
    "rerun_of",
    "carried_forward_from",
    "sha256",
    "signing_key",
}
VOLATILE_HEADERS = {"date", "server", "content-length", "x-request-id", "host", "user-agent", "accept-encoding"}


@pytest.fixture(scope="module")
def fixture_url() -> Iterator[str]:
    with serve_in_thread(app) as base:
        yield base


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return Catalogue.load(LAB / "suites" / "requirements")


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> LabKey:
    return LabKey.load_or_create(tmp_path_factory.mktemp("key") / "lab.pem")


def run(plan: str, catalogue: Catalogue, key: LabKey, out: Path, **options: Any) -> RunOutcome:
    loaded = load_plan(LAB / plan, catalogue, LAB / "suites")
    return run_plan(loaded, catalogue, RunOptions(out=out, progress=False, **options), LAB / "suites", out, key)


def normalise(node: Any, base_url: str) -> Any:
    """results.json without what changes from run to run (times, ids, ports, server headers)."""
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k in VOLATILE:
                out[k] = "<volatile>" if v is not None else None
            elif k == "headers":
                out[k] = {h: ("<volatile>" if h in VOLATILE_HEADERS else normalise(x, base_url)) for h, x in v.items()}
            else:
                out[k] = normalise(v, base_url)
        return out
    if isinstance(node, list):
        return [normalise(x, base_url) for x in node]
    if isinstance(node, str):
        text = node.replace(base_url, "<target>")
        return re.sub(r"eqlab (\d+\.)+\d+", "eqlab <version>", text)
    return node


def test_golden_run_matches_the_committed_results(
    fixture_url: str, catalogue: Catalogue, key: LabKey, tmp_path: Path
) -> None:
    outcome = run("golden.yaml", catalogue, key, tmp_path, target=fixture_url)
    actual = normalise(json.loads((outcome.run_dir / "results.json").read_text()), fixture_url)
    actual["tool"]["version"] = "<version>"
    if os.environ.get("EQLAB_UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(json.dumps(actual, indent=2, sort_keys=True) + "\n")
    expected = json.loads(GOLDEN.read_text())
    assert actual == expected, (
        "golden results changed; if intended, rerun with EQLAB_UPDATE_GOLDEN=1 and review the diff"
    )
    assert verify_run(outcome.run_dir, key.public_path).ok


def test_golden_run_verdict_and_trace(fixture_url: str, catalogue: Catalogue, key: LabKey, tmp_path: Path) -> None:
    outcome = run("golden.yaml", catalogue, key, tmp_path, target=fixture_url)
    results = outcome.results
    statuses = {r.id: r.status for r in results.requirements}
    assert statuses == {"demo@1": "pass", "demo@2": "pass", "demo@3": "fail", "demo@4": "skip", "demo@5": "not-tested"}
    assert results.decision.verdict == "inconclusive"  # demo@5 is a SHALL the plan leaves untested
    triggered = [s.rule for s in results.decision.reasons if s.outcome == "triggered"]
    assert triggered == ["shall-unverified", "reservations"]
    not_tested = next(r for r in results.requirements if r.id == "demo@5")
    assert not_tested.reason == "not tested: the fixture server has no such feature"
    failed = next(i for i in results.items if i.outcome == "fail")
    assert failed.message == "reading an unknown patient answered 404, expected 410"
    assert failed.exchanges[0].status == 404
    assert "abcdefghijklmnopqrstuvwxyz0123" not in (outcome.run_dir / "results.json").read_text()  # the note's token


def test_rerun_failed_carries_passing_evidence_forward(
    fixture_url: str, catalogue: Catalogue, key: LabKey, tmp_path: Path
) -> None:
    first = run("golden.yaml", catalogue, key, tmp_path, target=fixture_url)
    second = run("golden.yaml", catalogue, key, tmp_path, target=fixture_url, rerun_failed=first.run_dir)
    by_id = {i.id: i for i in second.results.items}
    assert len(by_id) == len(first.results.items)
    rerun = [i for i in by_id.values() if i.carried_forward_from is None]
    assert [i.name for i in rerun] == ["An unknown patient answers 410 (the fixture server answers 404)."]
    carried = [i for i in by_id.values() if i.carried_forward_from == first.results.run_id]
    assert {i.outcome for i in carried} == {"pass", "skip"} and all(i.exchanges for i in carried)
    assert second.results.rerun_of == first.results.run_id
    assert verify_run(second.run_dir, key.public_path).ok


def test_hostile_system_ends_as_errors_and_failures_never_a_lab_crash(
    fixture_url: str, catalogue: Catalogue, key: LabKey, tmp_path: Path
) -> None:
    began = time.monotonic()
    outcome = run("hostile.yaml", catalogue, key, tmp_path, target=fixture_url)
    elapsed = time.monotonic() - began
    items = {i.name: i for i in outcome.results.items}
    hang = items["A server that never answers."]
    assert hang.outcome == "error" and "did not answer" in str(hang.message)
    dropped = items["A server that drops the connection mid-answer."]
    assert dropped.outcome == "error" and "connection" in str(dropped.message)
    endless = items["A server that streams an endless body."]
    assert endless.outcome == "error" and "sent too much" in str(endless.message)
    garbage = items["A server that answers invalid UTF-8."]
    assert garbage.outcome == "fail" and "not valid JSON/UTF-8" in str(garbage.message)
    crash = items["A check whose process dies (as a segfaulting library would)."]
    assert crash.outcome == "error" and "stopped" in str(crash.message)
    assert any("pytest exited with status 3" in e for e in outcome.results.lab_errors)
    # the invalid body is a proven failure of a SHALL requirement: it outranks the lab error
    assert outcome.results.decision.verdict == "refused"
    assert elapsed < 60, f"the hostile run took {elapsed:.0f} s; per-check timeouts are 6 s"
    assert (outcome.run_dir / "summary.html").is_file() and verify_run(outcome.run_dir, key.public_path).ok


def test_a_corrupt_event_stream_ends_as_lab_errors_and_an_error_never_a_lab_crash(
    fixture_url: str, catalogue: Catalogue, key: LabKey, tmp_path: Path
) -> None:
    outcome = run("corrupt-events.yaml", catalogue, key, tmp_path, target=fixture_url)
    items = {i.name: i for i in outcome.results.items}
    writer = items["Writes lines that are no events: not JSON, an unknown kind, an event without its fields."]
    assert writer.outcome == "pass"
    lost = items["Its own result is written half."]
    assert lost.outcome == "error" and "no result could be read for this check" in str(lost.message)
    unreadable = [e for e in outcome.results.lab_errors if "a line the lab cannot read" in e]
    assert len(unreadable) == 4, outcome.results.lab_errors  # three lines that are no events, one cut in half
    assert outcome.results.decision.verdict == "inconclusive"
    assert verify_run(outcome.run_dir, key.public_path).ok


def test_attested_evidence_is_kept_in_the_signed_run(
    fixture_url: str, catalogue: Catalogue, key: LabKey, tmp_path: Path
) -> None:
    """The run keeps a copy of what the reviewer attested: the manifest signs its content, not its name."""
    reviewed = b"demo@5 reviewed by hand: screenshots 1-3\n"
    (tmp_path / "review.md").write_bytes(reviewed)
    plan = tmp_path / "attested.yaml"
    excused = "not_tested:\n  - requirement: demo@5\n    reason: the fixture server has no such feature\n"
    attested = "attestations:\n  - {requirement: demo@5, evidence: review.md, reviewer: A. Auditor, date: 2026-11-23}\n"
    plan.write_text((LAB / "golden.yaml").read_text(encoding="utf-8").replace(excused, attested), encoding="utf-8")
    out = tmp_path / "out"
    outcome = run_plan(
        load_plan(plan, catalogue, LAB / "suites"),
        catalogue,
        RunOptions(target=fixture_url, out=out, progress=False),
        LAB / "suites",
        out,
        key,
    )
    (requirement,) = [r for r in outcome.results.requirements if r.id == "demo@5"]
    assert requirement.status == "attested" and requirement.attestation is not None
    copy = requirement.attestation["evidence_copy"]
    assert (outcome.run_dir / copy).read_bytes() == reviewed
    assert requirement.attestation["evidence_sha256"] == hashlib.sha256(reviewed).hexdigest()
    manifest = json.loads((outcome.run_dir / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["artefacts"][copy] == requirement.attestation["evidence_sha256"]
    (tmp_path / "review.md").write_text("edited after the run\n")  # the plan's copy may change later
    assert verify_run(outcome.run_dir, key.public_path).ok
    (outcome.run_dir / copy).write_text("edited in the run folder\n")
    assert not verify_run(outcome.run_dir, key.public_path).ok
