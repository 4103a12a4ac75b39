"""Fixtures of the detection tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from eqlab.commands.detection import seed_store


@pytest.fixture(scope="session")
def seeded_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A reference store with the demo data, seeded once per test process: each detection run starts
    from a copy of it, as `eqlab detection` does, instead of seeding its own."""
    return seed_store(tmp_path_factory.mktemp("seeded"))
