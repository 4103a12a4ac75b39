"""The lab against a FHIR server it was not written with: sekmet-fhir (PyPI), a small open server.

Every check of the generic REST suite runs against it over HTTP; the lab must reach a verdict
without a lab error, report the server's real deviations as failures with their reason, and never
follow the server elsewhere (its paging links name its configured host, not the one called).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.paths import REPO
from tests.support.runs import eqlab_run, fhir_rest_plan
from tests.support.servers import free_port

pytestmark = pytest.mark.slow


@pytest.fixture
def sekmet(tmp_path: Path) -> Iterator[str]:
    executable = shutil.which("sekmet", path=str(Path(sys.executable).parent))
    assert executable, "sekmet-fhir is a test dependency (pyproject: test extra)"
    port = free_port()
    base = f"http://127.0.0.1:{port}/fhir"
    log = (tmp_path / "sekmet.log").open("wb")
    # It keeps its data in ./data: a folder of the test's own.
    server = subprocess.Popen(
        [executable, "serve", "--host", "127.0.0.1", "--port", str(port)], cwd=tmp_path, stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, (tmp_path / "sekmet.log").read_text(errors="replace")
            try:
                if httpx.get(f"{base}/metadata", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "sekmet did not answer in 60 s"
            time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def test_the_lab_judges_an_independent_server_without_a_lab_error(sekmet: str, tmp_path: Path) -> None:
    run = eqlab_run(fhir_rest_plan(sekmet, "fhir-rest", timeout_s=30), tmp_path)
    assert run.exit_code == 1, run.printed[-6000:]  # refused, not a lab error (2)
    run_dir, results = run.run_dir, run.results()
    assert results["decision"]["verdict"] == "refused"
    assert not results["lab_errors"], results["lab_errors"]
    status = {r["id"]: r for r in results["requirements"]}
    assert sum(r["status"] == "pass" for r in status.values()) >= 20, "most of generic REST works there"
    # Its defects, each reported as a failure with the reason a vendor would act on:
    assert status["fhir@36"]["status"] == "fail"
    assert "leads to another server than the one called" in status["fhir@36"]["reason"]
    assert status["fhir@28"]["status"] == "fail" and "415" in status["fhir@28"]["reason"]
    assert status["fhir@17"]["status"] == "fail" and "412" in status["fhir@17"]["reason"]
    done = subprocess.run(
        [sys.executable, "-m", "eqlab.cli", "verify", str(run_dir), "--pubkey", str(run_dir / "lab-public-key.pem")],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
