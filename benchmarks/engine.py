"""The lab engine's own cost: per check item, and per captured HTTP exchange.

1. N trivial checks (``assert True``) run by ``eqlab``'s runner (child pytest, plugin, events,
   decision, reports, signing) against plain ``pytest -q`` on the same files; prints both times,
   the overhead per item and the ratio.
2. M GET requests to a hello-world server with the evidence client (recording, redaction,
   capping) against a plain httpx client; prints the overhead per exchange and the ratio.
3. M GET requests from a plain client through the client-run recorder (the recording proxy a
   client under test talks to: forwarding, sealing, journal, evidence) against calling the same
   server directly; prints the overhead per proxied request and the ratio.

    python benchmarks/engine.py [--items 300] [--exchanges 2000]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.servers import hello_server
from eqlab.catalogue import Catalogue
from eqlab.clients.journal import Journal
from eqlab.clients.proxy import RecordingProxy, serve_on_loopback
from eqlab.evidence.recorder import EvidenceClient, EvidenceRecorder
from eqlab.plan.loader import load_plan
from eqlab.runner.options import RunOptions
from eqlab.runner.run import run_plan
from eqlab.signing import LabKey

REQUIREMENT = "  - {{id: bench@{n}, level: SHALL, actor: server, source: benchmark, text: Trivial requirement {n}.}}\n"
CATALOGUE = "service: bench\ntitle: Benchmark requirements\nrequirements:\n" + "".join(
    REQUIREMENT.format(n=n) for n in range(1, 11)
)
CHECKS = """\
import pytest

@pytest.mark.requirement("bench@{n}")
@pytest.mark.parametrize("i", range({count}))
def test_trivial(i):
    assert True
"""
PLAN = """\
name: Engine benchmark
label: engine-bench
version: "1"
environment: integration
target: {base_url: "http://127.0.0.1:9/fhir"}
suites: [{kind: contract, path: contract/bench}]
"""


def build(root: Path, items: int) -> Path:
    suites = root / "suites"
    (suites / "requirements").mkdir(parents=True)
    (suites / "requirements" / "bench.yaml").write_text(CATALOGUE, encoding="utf-8")
    checks = suites / "contract" / "bench"
    checks.mkdir(parents=True)
    per_file = items // 10
    for n in range(1, 11):
        (checks / f"test_bench_{n}.py").write_text(CHECKS.format(n=n, count=per_file), encoding="utf-8")
    (root / "plan.yaml").write_text(PLAN, encoding="utf-8")
    return suites


def time_engine(root: Path, suites: Path) -> float:
    catalogue = Catalogue.load(suites / "requirements")
    loaded = load_plan(root / "plan.yaml", catalogue, suites)
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # the per-check progress lines
        outcome = run_plan(
            loaded,
            catalogue,
            # the bench checks never contact the target, so there is nothing to pre-flight
            RunOptions(out=root / "out", progress=False, preflight=False),
            suites,
            root / "out",
            LabKey.load_or_create(root / "key.pem"),
        )
    elapsed = time.perf_counter() - started
    assert outcome.results.decision.verdict == "granted", outcome.results.decision
    return elapsed


def time_plain_pytest(suites: Path) -> float:
    ini = suites.parent / "plain.ini"
    ini.write_text("[pytest]\naddopts =\n", encoding="utf-8")
    command = [
        sys.executable,
        "-m",
        "pytest",
        str(suites / "contract"),
        "-q",
        "-c",
        str(ini),
        "--rootdir",
        str(suites.parent),
        "-p",
        "no:cacheprovider",
    ]
    # Without the installed plugins, as eqlab's runner starts its child pytest (runner/pytest_suites.py):
    # with them (schemathesis, playwright, hypothesis...), plain pytest took 4 s longer to start than
    # eqlab's whole run, and the overhead per item came out negative.
    environment = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=environment)
    return time.perf_counter() - started


def time_exchanges(base_url: str, count: int, record: bool) -> float:
    recorder = EvidenceRecorder()
    client: httpx.Client = EvidenceClient(base_url, recorder) if record else httpx.Client(base_url=base_url + "/")
    with client:
        for _ in range(50):
            client.get("hello")
        started = time.perf_counter()
        for _ in range(count):
            client.get("hello")
        return time.perf_counter() - started


def time_through_recorder(origin: str, count: int) -> float:
    with serve_on_loopback(RecordingProxy(origin, Journal())) as recorder:
        return time_exchanges(recorder, count, record=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--exchanges", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="eqlab-engine-bench-") as tmp:
        suites = build(Path(tmp), args.items)
        items = args.items // 10 * 10
        plain = min(time_plain_pytest(suites) for _ in range(3))
        engine = min(time_engine(Path(tmp), suites) for _ in range(3))
    print(f"engine overhead ({items} trivial checks, best of 3)")
    print(f"  plain pytest:          {plain:6.2f} s")
    print(f"  eqlab run (+reports):  {engine:6.2f} s")
    print(f"  overhead per item:     {(engine - plain) / items * 1000:6.2f} ms")
    print(f"  ratio eqlab / pytest:  {engine / plain:6.2f}")
    with hello_server() as base:
        bare = time_exchanges(base, args.exchanges, record=False)
        recorded = time_exchanges(base, args.exchanges, record=True)
    print(f"\nevidence capture ({args.exchanges} GET exchanges on loopback)")
    print(f"  plain httpx client:    {bare / args.exchanges * 1e6:7.0f} us per exchange")
    print(f"  evidence client:       {recorded / args.exchanges * 1e6:7.0f} us per exchange")
    print(f"  overhead per exchange: {(recorded - bare) / args.exchanges * 1e6:7.0f} us")
    print(f"  ratio:                 {recorded / bare:7.2f}")
    with hello_server() as base:
        direct = time_exchanges(base, args.exchanges, record=False)
        proxied = time_through_recorder(base, args.exchanges)
    print(f"\nclient-run recorder ({args.exchanges} GET requests on loopback, plain client)")
    print(f"  platform called directly: {direct / args.exchanges * 1e3:6.2f} ms per request")
    print(f"  through the recorder:     {proxied / args.exchanges * 1e3:6.2f} ms per request")
    print(f"  overhead per request:     {(proxied - direct) / args.exchanges * 1e3:6.2f} ms")
    print(f"  ratio:                    {proxied / direct:6.2f}")


if __name__ == "__main__":
    main()
