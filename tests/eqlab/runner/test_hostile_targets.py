"""The lab against systems that turn on it (issue 9): ``eqlab run`` with the real suites, as a vendor runs it.

* Off-origin: the system sends the browser sign-in, the token request and the load suite's requests
  to another host (127.0.0.2). A listener there counts connections: it must count none, and the
  checks that were misled fail with the reason.
* A trickling 10 GiB answer: the run ends within the plan's time budget, with a verdict.
* ANSI escapes in a text/plain error: nothing the system sends reaches the terminal, the reports or
  the CSV as a control character.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reference_impl.embedded import serve_in_thread
from tests.fixtures.lab.hostile_server import hostile_app
from tests.support.paths import REPO
from tests.support.runs import eqlab_cli, eqlab_run, fhir_rest_plan

pytestmark = pytest.mark.slow

SYSTEM_KEY = REPO / "testplans" / "keys" / "demo-system-client.private.jwk"
PASSWORD_ENV = "EQLAB_HOSTILE_TEST_PASSWORD"
# Control characters a terminal or a spreadsheet acts upon (line feed and tab are text).
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


class Listener:
    """A TCP listener on another loopback address that counts the connections it gets."""

    def __init__(self) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.2", 0))
        self.socket.listen(64)
        self.socket.settimeout(0.2)
        self.connections = 0
        self.running = True
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.2:{self.socket.getsockname()[1]}"

    def _accept(self) -> None:
        while self.running:
            try:
                conn, _ = self.socket.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.running = False
        self.thread.join()
        self.socket.close()


@pytest.fixture(scope="module")
def elsewhere() -> Iterator[Listener]:
    listener = Listener()
    yield listener
    listener.close()


@pytest.fixture(scope="module")
def hostile(elsewhere: Listener) -> Iterator[str]:
    """The hostile system's origin (its FHIR bases are <origin>/<trick>/fhir)."""
    with serve_in_thread(hostile_app(elsewhere.url)) as base:
        yield base.removesuffix("/fhir")


def cli(plan: str, folder: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, Path]:
    run = eqlab_run(plan, folder, *args, env=env)
    return run.exit_code, run.printed, run.run_dir


AUTH_PLAN = """\
name: Hostile system, sign-in
label: hostile-auth
version: "1"
environment: integration
target:
  base_url: {base}
  auth:
    client_id: eqlab-demo-system
    key_file: {key}
    login_client: {{client_id: portal, redirect_uri: "http://127.0.0.1:8400/callback"}}
    users:
      patient: {{username: patient1, password_env: {password_env}}}
requirements:
  include: ["auth@31"]
suites:
  - kind: contract
    path: contract/auth
    timeout: 20
"""


@pytest.mark.parametrize("trick", ["redirect", "foreign"])
def test_sign_in_and_tokens_never_go_to_another_host(
    hostile: str, elsewhere: Listener, tmp_path: Path, trick: str
) -> None:
    plan = AUTH_PLAN.format(base=f"{hostile}/{trick}/fhir", key=SYSTEM_KEY, password_env=PASSWORD_ENV)
    code, printed, run_dir = cli(
        plan, tmp_path, "-k", "reads_the_own_record or cannot_reach_another", "--no-preflight",
        env={PASSWORD_ENV: "secret-pw-1234"},
    )  # fmt: skip
    items = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))["items"]
    assert isinstance(items, list) and items
    signed_in = [i for i in items if "reads_the_own_record" in i["id"]]
    assert signed_in and signed_in[0]["outcome"] == "fail", signed_in
    assert "another origin" in signed_in[0]["message"] and "127.0.0.2" in signed_in[0]["message"]
    if trick == "foreign":  # the system token's request, refused before it was sent
        others = [i for i in items if "cannot_reach_another" in i["id"]]
        assert others and all(i["outcome"] == "fail" and "another origin" in i["message"] for i in others)
    assert elsewhere.connections == 0, "the lab connected to the other host"
    assert "secret-pw-1234" not in printed and code in (1, 2)


@pytest.mark.parametrize("trick", ["redirect", "foreign"])
def test_the_preflight_token_never_goes_to_another_host(
    hostile: str, elsewhere: Listener, tmp_path: Path, trick: str
) -> None:
    plan = AUTH_PLAN.format(base=f"{hostile}/{trick}/fhir", key=SYSTEM_KEY, password_env=PASSWORD_ENV)
    (tmp_path / "plan.yaml").write_text(plan, encoding="utf-8")
    done = eqlab_cli("run", str(tmp_path / "plan.yaml"), "--out", str(tmp_path / "out"), "--key",
                     str(tmp_path / "lab.pem"), env={PASSWORD_ENV: "secret-pw-1234"})  # fmt: skip
    assert done.exit_code == 2, done.printed
    assert "pre-flight: the lab could not get a token" in done.printed
    assert elsewhere.connections == 0, "the lab connected to the other host"
    assert "secret-pw-1234" not in done.printed and not (tmp_path / "out").exists()


LOAD_PLAN = """\
name: Hostile system, load
label: hostile-load
version: "1"
environment: integration
target:
  base_url: {base}
requirements:
  include: ["fhir@1"]
suites:
  - kind: load
    path: load/fhir
    timeout: 30
    params: {{users: 4, spawn_rate: 4, duration: 3}}
slos:
  error_rate: 0.01
"""


def test_the_load_suite_follows_no_redirect(hostile: str, elsewhere: Listener, tmp_path: Path) -> None:
    code, printed, run_dir = cli(LOAD_PLAN.format(base=f"{hostile}/redirect/fhir"), tmp_path)
    (stats_file,) = run_dir.glob("load-*.json")
    stats = json.loads(stats_file.read_text(encoding="utf-8"))
    assert stats["requests"] > 0 and stats["failures"] == stats["requests"], stats
    assert any(
        "redirected (307)" in e["error"] and "the lab follows no redirect" in e["error"] for e in stats["errors"]
    )
    assert elsewhere.connections == 0, "the load suite connected to the other host"
    assert code == 1, printed  # the error-rate SLO is breached: refused


def test_the_load_suite_reads_a_bounded_answer(hostile: str, tmp_path: Path) -> None:
    code, printed, run_dir = cli(LOAD_PLAN.format(base=f"{hostile}/huge/fhir"), tmp_path)
    (stats_file,) = run_dir.glob("load-*.json")
    stats = json.loads(stats_file.read_text(encoding="utf-8"))
    assert stats["requests"] > 0 and stats["failures"] == stats["requests"], stats
    assert any("exceeded" in e["error"] for e in stats["errors"]), stats["errors"]
    assert code == 1, printed


def test_a_trickling_system_ends_within_the_time_budget_with_a_verdict(hostile: str, tmp_path: Path) -> None:
    began = time.monotonic()
    code, printed, run_dir = cli(
        fhir_rest_plan(f"{hostile}/trickle/fhir", "hostile-rest", timeout_s=60, time_budget_s=8),
        tmp_path,
        "-k",
        "test_crud or test_errors",
        "--no-preflight",
    )
    elapsed = time.monotonic() - began
    results = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
    decision = results["decision"]
    assert isinstance(decision, dict) and decision["verdict"] == "inconclusive"
    assert any("time budget (8 s) was spent" in e for e in results["lab_errors"])  # type: ignore[union-attr]
    items = results["items"]
    assert isinstance(items, list)
    assert any(i["outcome"] == "not-tested" and "time budget" in i["message"] for i in items)
    assert code == 2, printed
    assert elapsed < 8 + 40, f"the run took {elapsed:.0f} s"  # the budget, start-up and reports


def test_ansi_escapes_from_the_system_reach_neither_terminal_nor_reports(hostile: str, tmp_path: Path) -> None:
    code, printed, run_dir = cli(
        fhir_rest_plan(f"{hostile}/ansi/fhir", "hostile-rest", timeout_s=60, time_budget_s=300),
        tmp_path,
        "-k",
        "test_errors",
    )
    results = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
    assert any("\\x1b[32mlabel reference-platform" in str(i["message"]) for i in results["items"])  # type: ignore[union-attr]
    assert not CONTROL.search(printed), repr(CONTROL.findall(printed)[:5])
    for report in ("summary.html", "detailed.html", "results.json", "junit.xml"):
        text = (run_dir / report).read_text(encoding="utf-8")
        assert not CONTROL.search(text), (report, CONTROL.findall(text)[:5])
    rows = (run_dir / "results.csv").read_text(encoding="utf-8").replace("\r\n", "\n")
    assert not CONTROL.search(rows), CONTROL.findall(rows)[:5]
    assert code in (1, 2)
