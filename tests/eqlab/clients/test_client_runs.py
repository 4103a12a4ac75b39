"""``eqlab run`` of a client plan, end to end: the embedded reference implementation is the platform,
the client under test is a small program (a system client paging through a search), the recorder
journals what it sends, and the client checks judge it."""

from __future__ import annotations

import json
import re
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from tests.support.paths import REPO
from tests.support.runs import eqlab_cli, eqlab_run
from tests.support.terminal import LabOnTerminal

pytestmark = pytest.mark.slow

KEY = REPO / "testplans" / "keys" / "demo-system-client.private.jwk"

# A system client: SMART discovery, a private_key_jwt token (ES384), then a search it pages through.
# PAGES says how: "follow" the next links the server gives, or "build" page URLs of its own (with
# the page's number where the server's links count items: a URL built by hand that happened to equal
# the server's link could not be told apart, and is no deviation).
CLIENT = """\
import json, os, sys, time, uuid
import httpx
from joserfc import jwt
from joserfc.jwk import ECKey

base = os.environ["EQLAB_FHIR_BASE"]
client_id = os.environ["EQLAB_CLIENT_ID"]
key = ECKey.import_key(json.load(open(sys.argv[1])))
with httpx.Client(timeout=30) as http:
    token_url = http.get(base + "/.well-known/smart-configuration").json()["token_endpoint"]
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": token_url, "iat": now, "exp": now + 120,
              "jti": uuid.uuid4().hex}
    assertion = jwt.encode({"alg": "ES384", "kid": key.kid}, claims, key, algorithms=["ES384"])
    token = http.post(token_url, data={
        "grant_type": "client_credentials", "scope": "system/Patient.rs",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion}).json()["access_token"]
    headers = {"authorization": f"Bearer {token}", "accept": "application/fhir+json"}
    first = http.get(base + "/Patient", params={"_count": "2"}, headers=headers)
    if first.status_code == 503:  # the platform is busy: wait as long as it says, once
        time.sleep(float(first.headers["retry-after"]))
        first = http.get(base + "/Patient", params={"_count": "2"}, headers=headers)
    page = first.json()
    for number in range(2):
        link = next((l["url"] for l in page.get("link", []) if l["relation"] == "next"), None)
        if link is None:
            break
        if sys.argv[2] == "build":
            link = f"{base}/Patient?_count=2&_offset={number + 1}"
        page = http.get(link, headers=headers).json()
print("paged")
"""

# The client under test of these plans: a system client with the demo key, on the embedded platform.
SYSTEM_CLIENT = """\
environment: integration
platform: {{embedded: reference}}
client:
  client_id: vendor-system
  kind: system
  scope: system/Patient.rs
  jwks_file: {key}
"""

PLAN = (
    """\
name: A system client paging through a search
label: paging-client
version: "1"
"""
    + SYSTEM_CLIENT
    + """\
requirements:
  include: ["fhirclient@1", "fhirclient@4", "fhirclient@5", "smartclient@1", "smartclient@7"]
suites:
  - kind: client
    path: client
    timeout: 30
    scenarios:
      - name: paging
        requirements: ["fhirclient@4"]
        steps:
          - say: "Search the patients and read two more pages"
          - respond:
              when: {{method: GET, path: /fhir/Patient, query: {{_count: "2"}}}}
              status: 503
              headers: {{retry-after: "1"}}
          - run: "{python} {client} {key} {pages}"
            timeout_s: 60
          - expect:
              - {{method: GET, path: /fhir/Patient, min: 3}}
"""
)


def client_plan(folder: Path, pages: str) -> str:
    program = folder / "client.py"
    program.write_text(CLIENT, encoding="utf-8")
    return PLAN.format(python=sys.executable, client=program, key=KEY, pages=pages)


def test_a_client_that_follows_the_next_links_is_granted(tmp_path: Path) -> None:
    run = eqlab_run(client_plan(tmp_path, "follow"), tmp_path)
    results = run.results()
    outcomes = {item["id"].split("::")[-1]: item["outcome"] for item in results["items"]}
    assert outcomes["paging"] == "pass", run.printed[-4000:]
    assert results["decision"]["verdict"] == "granted", run.printed[-4000:]
    assert run.exit_code == 0
    assert {r["id"]: r["status"] for r in results["requirements"]} == {
        "fhirclient@1": "pass",
        "fhirclient@4": "pass",
        "fhirclient@5": "pass",
        "smartclient@1": "pass",
        "smartclient@7": "pass",
    }
    journal = (run.run_dir / "client-requests.jsonl").read_text(encoding="utf-8")
    assert "[SEALED s256=" in journal and '"scenario":"paging"' in journal
    scenario = next(i for i in results["items"] if i["id"] == "client-scenario::paging")
    assert any(x["url"].endswith("/auth/token") for x in scenario["exchanges"])
    injected = next(x for x in scenario["exchanges"] if x["status"] == 503)
    assert scenario["notes"] == [f"answered by the lab in the platform's place (respond steps): {injected['id']} (503)"]
    assert "1 say: pass" in scenario["detail"] and "instruction shown: Search the patients" in scenario["detail"]
    assert "embedded reference platform: http://127.0.0.1:" in run.printed


def test_a_client_that_builds_its_own_page_urls_is_refused_with_the_request_that_proves_it(tmp_path: Path) -> None:
    run = eqlab_run(client_plan(tmp_path, "build"), tmp_path)
    results = run.results()
    assert results["decision"]["verdict"] == "refused", run.printed[-4000:]
    failed = next(i for i in results["items"] if i["outcome"] == "fail")
    assert failed["requirements"] == ["fhirclient@4"]
    assert "pages fetched with URLs the server never gave (page parameters ['_offset'])" in failed["message"]
    assert "GET /fhir/Patient (scenario paging)" in failed["message"]
    assert failed["exchanges"], "the request that proves it is the check's evidence"
    assert run.exit_code == 1


def test_the_client_command_replaces_the_plans_run_steps(tmp_path: Path) -> None:
    plan = client_plan(tmp_path, "follow")
    command = f"{sys.executable} {tmp_path / 'client.py'} {KEY} build"
    run = eqlab_run(plan, tmp_path, "--client-command", command)
    assert run.results()["decision"]["verdict"] == "refused", run.printed[-4000:]


def test_a_client_plan_is_refused_without_its_client_or_with_a_target(tmp_path: Path) -> None:
    plan = client_plan(tmp_path, "follow")
    no_client = plan.replace("client:\n  client_id", "other:\n  client_id")
    path = tmp_path / "plan.yaml"
    path.write_text(no_client, encoding="utf-8")
    done = eqlab_cli("plan", "validate", str(path))
    assert done.exit_code != 0
    assert "other" in done.printed
    with_target = plan.replace("platform:", "target: {base_url: 'http://127.0.0.1:1/fhir'}\nplatform:")
    path.write_text(with_target, encoding="utf-8")
    done = eqlab_cli("plan", "validate", str(path))
    assert done.exit_code != 0 and "a client plan's target is its 'platform'" in done.printed


INTERACTIVE_PLAN = (
    """\
name: A client driven by hand
label: manual-client
version: "1"
"""
    + SYSTEM_CLIENT
    + """\
requirements:
  include: ["fhirclient@1"]
suites:
  - kind: client
    path: client/fhir
    scenarios:
      - name: read-metadata
        requirements: ["fhirclient@1"]
        steps:
          - say: "Open the platform's capability statement twice"
          - expect:
              - {{method: GET, path: /fhir/metadata, min: 2}}
            timeout_s: 120
"""
)


def _interactive_lab(tmp_path: Path) -> tuple[LabOnTerminal, Path]:
    """``eqlab run --interactive`` of INTERACTIVE_PLAN on a pseudo-terminal; its output folder."""
    plan = tmp_path / "plan.yaml"
    plan.write_text(INTERACTIVE_PLAN.format(key=KEY), encoding="utf-8")
    out = tmp_path / "out"
    args = [str(plan), "--interactive", "--no-progress", "--out", str(out), "--key", str(tmp_path / "lab.pem")]
    return LabOnTerminal(args, marker=uuid.uuid4().hex), out


def test_a_person_at_the_keyboard_sees_the_instruction_and_the_count_and_ends_the_step(tmp_path: Path) -> None:
    lab, out = _interactive_lab(tmp_path)
    shown = lab.read_until(lambda text: "EQLAB_FHIR_BASE=" in text and "0/2 ×" in text, timeout_s=120)
    assert "[read-metadata] Open the platform's capability statement twice" in shown, shown[-3000:]
    base = re.search(r"EQLAB_FHIR_BASE=(\S+)", shown)
    assert base is not None, shown[-3000:]
    assert httpx.get(f"{base.group(1)}/metadata", headers={"accept": "application/fhir+json"}, timeout=30).is_success
    lab.read_until(lambda text: "1/2 ×" in text, timeout_s=30)
    lab.type("\n")
    assert lab.wait(timeout_s=120) == 1, lab.text[-3000:]  # refused: the step failed its SHALL requirement
    (run_dir,) = out.iterdir()
    results = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
    scenario = next(i for i in results["items"] if i["id"] == "client-scenario::read-metadata")
    assert scenario["outcome"] == "fail"
    ended = "expected 2 × GET /fhir/metadata before the step was ended at the keyboard, received 1"
    assert ended in scenario["message"]


def test_ctrl_c_while_a_person_drives_the_client_keeps_a_signed_partial_run(tmp_path: Path) -> None:
    lab, out = _interactive_lab(tmp_path)
    lab.read_until(lambda text: "0/2 ×" in text, timeout_s=120)
    lab.type_ctrl_c()
    assert lab.wait(timeout_s=60) == 130, lab.text[-3000:]
    (run_dir,) = out.iterdir()
    results = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
    assert results["interrupted"].startswith("interrupted by SIGINT")
    scenario = next(i for i in results["items"] if i["id"] == "client-scenario::read-metadata")
    assert (scenario["outcome"], scenario["message"]) == ("not-tested", "step 2 expect: interrupted")
    assert (run_dir / "manifest.sig").is_file()


def test_rerun_failed_plays_every_scenario_and_client_check_again(tmp_path: Path) -> None:
    first = eqlab_run(client_plan(tmp_path, "build"), tmp_path)
    assert first.results()["decision"]["verdict"] == "refused", first.printed[-3000:]
    fixed = f"{sys.executable} {tmp_path / 'client.py'} {KEY} follow"
    again = eqlab_cli(
        "run", str(tmp_path / "plan.yaml"), "--no-progress", "--out", str(tmp_path / "again"),
        "--key", str(tmp_path / "lab.pem"), "--rerun-failed", str(first.run_dir), "--client-command", fixed,
    )  # fmt: skip
    (run_dir,) = (tmp_path / "again").iterdir()
    results = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
    assert results["decision"]["verdict"] == "granted", again.printed[-3000:]
    assert results["rerun_of"] == first.results()["run_id"]
    assert all(item["carried_forward_from"] is None for item in results["items"]), "nothing judged on old requests"
    assert again.exit_code == 0
