"""The ``eqlab`` command as a user runs it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from reference_impl.platform import SERVICES
from reference_impl.seed.demo import demo_bundle
from tests.support.postgres import drop_schema, new_schema_url
from tests.support.servers import ServerProcess, sqlite_url


def eqlab(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eqlab.cli", *args], capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "COLUMNS": "80", **(env or {})},
    )  # fmt: skip


def test_help_lists_serve() -> None:
    result = eqlab("--help")
    assert result.returncode == 0 and "serve" in result.stdout


@pytest.mark.parametrize("group", [(), ("catalogue",), ("client",), ("platform-keys",)])
def test_help_lists_whole_descriptions_on_an_80_column_terminal(group: tuple[str, ...]) -> None:
    """Click cuts each command's description at the width ("Run a test plan against a system; print the...")."""
    result = eqlab(*group, "--help")
    assert result.returncode == 0, result.stderr
    listing = result.stdout.split("Commands:")[1]
    assert "..." not in listing
    if not group:
        assert "Run a test plan against a system; print the verdict and the\n" in listing
        assert all(len(line) <= 80 for line in listing.splitlines())


def test_token_reads_eqlab_base_and_says_where_its_base_came_from() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}/fhir"
    from_env = eqlab("token", env={"EQLAB_BASE": closed})
    assert from_env.returncode != 0 and f"{closed} came from EQLAB_BASE" in from_env.stderr
    by_default = eqlab("token", env={"EQLAB_BASE": ""})
    if "Connection refused" in by_default.stderr:  # nothing listens on the default port here
        assert "is the default: pass --base or set EQLAB_BASE" in by_default.stderr
    assert "EQLAB_BASE" in eqlab("token", "--help").stdout


def test_token_uses_the_platform_eqlab_base_names(tmp_path: Path) -> None:
    server = ServerProcess(sqlite_url(tmp_path), extra=("--seed", "demo"))
    server.start()
    try:
        token = eqlab("token", env={"EQLAB_BASE": server.base})
    finally:
        server.stop()
    assert token.returncode == 0, token.stderr
    assert token.stdout.count(".") == 2, "a JWT access token"


def demo_patients() -> int:
    """The Patients of the demo dataset, the national services' demo people included."""
    resources = [e["resource"] for e in demo_bundle()["entry"]]
    resources += [r for service in SERVICES if service.demo_data for r in service.demo_data()]
    return sum(r["resourceType"] == "Patient" for r in resources)


@pytest.mark.slow
def test_serve_prints_base_url_and_serves_demo_data(tmp_path: Path) -> None:
    server = ServerProcess(sqlite_url(tmp_path), extra=("--seed", "demo"))
    server.start()
    try:
        total = httpx.get(f"{server.base}/Patient", params={"_summary": "count"}, headers=server.auth()).json()["total"]
        assert total == demo_patients()
    finally:
        server.stop()
    output = server.output()
    assert f"http://127.0.0.1:{server.port}/fhir" in output
    assert "/fhir/metadata" in output


@pytest.mark.slow
@pytest.mark.postgres
def test_serve_on_postgresql_hides_password(postgres_unavailable: str | None) -> None:
    if postgres_unavailable:
        pytest.skip(postgres_unavailable)
    url, schema = new_schema_url()
    with_password = url.replace("postgres@", "postgres:s3cret-pw@")
    server = ServerProcess(with_password)
    try:
        server.start()
        assert httpx.get(f"{server.base}/metadata").status_code == 200
    finally:
        server.stop()
        drop_schema(schema)
    assert "s3cret-pw" not in server.output()
    assert "***" in server.output()


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = eqlab("serve", "--port", port, "--db", sqlite_url(tmp_path))
    assert result.returncode != 0
    assert "cannot listen" in result.stderr


def test_bad_database_url_is_a_clear_error(tmp_path: Path) -> None:
    result = eqlab("serve", "--port", "0", "--db", "mysql://localhost/x")
    assert result.returncode != 0
    assert "unsupported database URL" in result.stderr + result.stdout


def test_a_bad_platform_setting_is_named_without_its_value(tmp_path: Path) -> None:
    key = "not-a-key-but-private"
    bad = {"EQLAB_MAX_STATEMENT_SECONDS": "0", "EQLAB_MAX_TRANSACTION_ENTRIES": "many", "EQLAB_SERVICES": key}
    result = eqlab("serve", "--port", "0", "--db", sqlite_url(tmp_path), env=bad)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    for name in bad:
        assert name in result.stderr
    assert "greater than 0" in result.stderr
    assert key not in result.stderr
    unknown = eqlab("serve", "--port", "0", "--db", sqlite_url(tmp_path), env={"EQLAB_SERVICES": '["mpi", "nope"]'})
    assert unknown.returncode == 2
    assert "EQLAB_SERVICES: unknown service(s) nope; known: mpi" in unknown.stderr


def test_ctrl_c_outside_a_run_exits_130_not_1_the_code_for_refused() -> None:
    from click.testing import CliRunner

    from eqlab.cli import EqlabCommands

    group = EqlabCommands()

    @group.command()
    def slow() -> None:
        raise KeyboardInterrupt

    result = CliRunner().invoke(group, ["slow"])
    assert result.exit_code == 130 and "Aborted!" not in result.output
