"""The pre-flight: a run that cannot succeed stops in seconds, before any check, with one message.

Before it, a run without the demo passwords spent 93 s printing the same missing variable 46 times,
and one against a closed port 40 s printing 219 connection errors.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import time
from pathlib import Path

from tests.eqlab.conftest import DemoReference
from tests.support.paths import REPO
from tests.support.runs import eqlab_cli

EXIT_CANNOT_RUN = 2
WITHIN_S = 10.0


def _run(
    folder: Path, *args: str, drop_demo_secrets: bool = False, secrets: dict[str, str] | None = None
) -> tuple[int, str, float, Path]:
    env = {k: "" for k in os.environ if drop_demo_secrets and k.startswith("EQLAB_DEMO_")} | (secrets or {})
    out = folder / "out"
    started = time.monotonic()
    done = eqlab_cli("run", "--no-progress", "--out", str(out), "--key", str(folder / "lab.pem"), *args, env=env)
    return done.exit_code, done.printed, time.monotonic() - started, out


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_missing_secrets_are_all_named_at_once_before_any_check(demo_reference: DemoReference, tmp_path: Path) -> None:
    code, printed, took, out = _run(
        tmp_path, "testplans/reference.yaml", "--target", demo_reference.base_url, drop_demo_secrets=True
    )
    assert code == EXIT_CANNOT_RUN, printed
    assert took < WITHIN_S
    assert not out.exists(), "no run folder for a run that never started"
    assert printed.count("error:") == 1
    for name in ("PATIENT1", "PATIENT2", "DOCTOR1", "DOCTOR2", "AUDITOR"):
        assert printed.count(f"EQLAB_DEMO_PASSWORD_{name} ") == 1, printed
    assert "EQLAB_DEMO_WEBAPP_SECRET" in printed
    assert 'eval "$(eqlab demo-secrets)"' in printed


def test_an_unreachable_target_stops_the_run_in_seconds(demo_passwords: None, tmp_path: Path) -> None:
    target = f"http://127.0.0.1:{_closed_port()}/fhir"
    code, printed, took, out = _run(tmp_path, "testplans/reference.yaml", "--target", target)
    assert code == EXIT_CANNOT_RUN, printed
    assert took < WITHIN_S
    assert not out.exists()
    assert f"cannot reach the target {target}" in printed
    assert printed.count("error:") == 1 and "Traceback" not in printed


def test_a_token_the_platform_refuses_stops_the_run(demo_reference: DemoReference, tmp_path: Path) -> None:
    """Secrets set but wrong: the pre-flight's one token shows it."""
    plans = tmp_path / "testplans"
    shutil.copytree(REPO / "testplans", plans)
    plan = plans / "reference.yaml"
    plan.write_text(
        plan.read_text(encoding="utf-8").replace("client_id: eqlab-demo-system", "client_id: not-registered-here", 1),
        encoding="utf-8",
    )
    named = re.findall(r"(?:password_env|secret_env): (\w+)", plan.read_text(encoding="utf-8"))
    wrong = {name: "wrong-secret" for name in named}  # every secret the plan names: set, all wrong
    code, printed, took, _ = _run(tmp_path, str(plan), "--target", demo_reference.base_url, secrets=wrong)
    assert code == EXIT_CANNOT_RUN, printed
    assert took < WITHIN_S
    assert f"the lab could not get a token from {demo_reference.base_url}" in printed
    assert "not-registered-here" in printed


def test_no_preflight_runs_the_checks_anyway(demo_passwords: None, tmp_path: Path) -> None:
    target = f"http://127.0.0.1:{_closed_port()}/fhir"
    code, printed, _, out = _run(
        tmp_path, "testplans/reference.yaml", "--target", target, "--no-preflight",
        "--suites", "contract", "--requirements", "fhir@1",
    )  # fmt: skip
    assert code == EXIT_CANNOT_RUN, printed
    assert "pre-flight" not in printed
    assert len(list(out.iterdir())) == 1, "the run went ahead and wrote its results"
