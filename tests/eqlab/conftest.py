"""An embedded reference implementation with the demo accounts, for the lab's auth tests.

One server per test worker, shared: each test gets its own tokens (the lab's cache lives in the
TokenProvider a test makes) and registers clients under its own ids.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from eqlab.commands.store_admin import demo_secrets
from reference_impl.app import create_app
from reference_impl.embedded import serve_in_thread
from reference_impl.settings import Settings
from tests.support.paths import REPO

DEMO_KEY = REPO / "testplans" / "keys" / "demo-system-client.private.jwk"
TEST_MASTER_KEY = base64.b64encode(b"eqlab lab tests: not a secret!!!").decode()


@dataclass(frozen=True)
class DemoReference:
    base_url: str  # the FHIR base
    db_url: str


@pytest.fixture(scope="session")
def demo_reference(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoReference]:
    db_url = f"sqlite:///{tmp_path_factory.mktemp('reference') / 'store.sqlite3'}"
    app = create_app(Settings(db_url=db_url, seed="demo", master_key=TEST_MASTER_KEY))
    with serve_in_thread(app) as base:
        yield DemoReference(base, db_url)


@pytest.fixture
def demo_passwords() -> Iterator[None]:
    """The demo accounts' passwords in the variables testplans/reference.yaml names (as `eqlab demo` does)."""
    with demo_secrets():
        yield
