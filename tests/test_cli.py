"""The ``eqlab`` command as a user runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.postgres import drop_schema, new_schema_url
from tests.support.servers import ServerProcess, sqlite_url


def eqlab(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eqlab.cli", *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_help_lists_serve() -> None:
    result = eqlab("--help")
    assert result.returncode == 0 and "serve" in result.stdout


@pytest.mark.slow
def test_serve_prints_base_url_and_serves_demo_data(tmp_path: Path) -> None:
    server = ServerProcess(sqlite_url(tmp_path), extra=("--seed", "demo"))
    server.start()
    try:
        total = httpx.get(f"{server.base}/Patient", params={"_summary": "count"}, headers=server.auth()).json()["total"]
        assert total == 40
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
