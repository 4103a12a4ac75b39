"""Ctrl-C and SIGTERM during ``eqlab run``: every child stops, the partial run is concluded, reported
and signed, the exit code says "interrupted", and ``--resume`` completes it.

The Ctrl-C test runs the lab on a pseudo-terminal of its own and types ^C there, so the terminal
driver sends SIGINT to the whole foreground process group, as it does for a user.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from tests.eqlab.conftest import DemoReference
from tests.support.paths import REPO
from tests.support.runs import eqlab_cli
from tests.support.terminal import LabOnTerminal

EXIT_INTERRUPTED = 130
STOP_WITHIN_S = 10.0  # from the signal to the lab's exit, results written and signed
SCOPE = ["--suites", "contract", "--requirements", "fhir@1-12"]


def _lab_processes(marker: str) -> list[int]:
    """Processes whose environment carries ``marker``: the lab and every child it started."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _only_run(out: Path, besides: Path | None = None) -> Path:
    """The one run folder in ``out`` (other than ``besides``, an earlier run)."""
    folders = [f for f in out.iterdir() if f != besides]
    assert len(folders) == 1, folders
    return folders[0]


def test_ctrl_c_stops_every_child_and_leaves_a_signed_partial_run_that_resume_completes(
    demo_reference: DemoReference, demo_passwords: None, tmp_path: Path
) -> None:
    marker = uuid.uuid4().hex
    out, key = tmp_path / "out", tmp_path / "lab.pem"
    args = ["testplans/reference.yaml", "--target", demo_reference.base_url, "--no-progress", "--out", str(out)]
    lab = LabOnTerminal([*args, *SCOPE, "--key", str(key)], marker)
    lab.read_until(lambda text: "PASS " in text, timeout_s=180)
    assert "PASS " in lab.text, lab.text[-3000:]
    assert len(_lab_processes(marker)) >= 2, "the checks run in a child process"

    lab.type_ctrl_c()
    typed = time.monotonic()
    exit_code = lab.wait(timeout_s=60)
    stopped_in = time.monotonic() - typed
    assert exit_code == EXIT_INTERRUPTED, lab.text[-3000:]
    assert stopped_in < STOP_WITHIN_S
    time.sleep(0.5)
    assert _lab_processes(marker) == [], "a child of the lab outlived it"
    assert "Aborted!" not in lab.text and "Traceback" not in lab.text
    run_dir = _only_run(out)
    assert f"--resume {run_dir}" in lab.text.replace("\n", " ")

    results = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
    assert results["interrupted"].startswith("interrupted by SIGINT")
    assert results["decision"]["verdict"] == "inconclusive"
    outcomes = {item["outcome"] for item in results["items"]}
    assert "pass" in outcomes and "not-tested" in outcomes
    unfinished = [i for i in results["items"] if i["outcome"] == "not-tested"]
    assert all(i["message"].startswith("interrupted") for i in unfinished)
    for report in ("summary.html", "detailed.html", "junit.xml", "results.csv", "manifest.sig"):
        assert (run_dir / report).is_file(), report

    public_key = tmp_path / "lab.pub.pem"
    verified = eqlab_cli("verify", str(run_dir), "--pubkey", str(public_key))
    assert verified.exit_code == 0, verified.printed
    rendered = eqlab_cli("report", str(run_dir), "--key", str(key))
    assert rendered.exit_code == 0, rendered.printed

    resumed = subprocess.run(
        [sys.executable, "-m", "eqlab.cli", "run", *args, *SCOPE, "--key", str(key), "--resume", str(run_dir)],
        cwd=REPO, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    completed = json.loads((_only_run(out, besides=run_dir) / "results.json").read_text(encoding="utf-8"))
    assert resumed.returncode != EXIT_INTERRUPTED, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert completed["interrupted"] is None and completed["rerun_of"] == results["run_id"]
    triggered = [step["rule"] for step in completed["decision"]["reasons"] if step["outcome"] == "triggered"]
    assert triggered == ["slo-unmeasured"], "only because this scope leaves the load suite out"
    assert {i["outcome"] for i in completed["items"]} == {"pass"}
    assert any(i["carried_forward_from"] for i in completed["items"])


def test_sigterm_to_the_lab_alone_stops_its_children_too(
    demo_reference: DemoReference, demo_passwords: None, tmp_path: Path
) -> None:
    """A CI runner's SIGTERM reaches the lab only, not its children (they are in their own session)."""
    marker = uuid.uuid4().hex
    out = tmp_path / "out"
    process = subprocess.Popen(
        [sys.executable, "-m", "eqlab.cli", "run", "testplans/reference.yaml", "--target", demo_reference.base_url,
         "--no-progress", "--out", str(out), "--key", str(tmp_path / "lab.pem"), *SCOPE],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "EQLAB_TEST_MARKER": marker},
    )  # fmt: skip
    assert process.stdout is not None
    seen = ""
    while "PASS " not in seen:
        line = process.stdout.readline()
        assert line, seen[-3000:]
        seen += line
    process.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    rest, _ = process.communicate(timeout=60)
    assert process.returncode == EXIT_INTERRUPTED, (seen + rest)[-3000:]
    assert time.monotonic() - sent < STOP_WITHIN_S
    time.sleep(0.5)
    assert _lab_processes(marker) == []
    results = json.loads((_only_run(out) / "results.json").read_text(encoding="utf-8"))
    assert results["interrupted"].startswith("interrupted by SIGTERM")
    assert any("interrupted by SIGTERM" in error for error in results["lab_errors"])
