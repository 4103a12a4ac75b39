"""Fuzzing settings from the plan: ``max_examples`` per operation (default 25), ``operations``.

Fuzzing is derandomized: the same plan sends the same requests, so a vendor can reproduce a
failure by running the plan again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hypothesis
import pytest

from eqlab.checks import SESSION_KEY

DEFAULT_MAX_EXAMPLES = 25


def _params(config: pytest.Config) -> dict[str, Any]:
    lab = config.stash.get(SESSION_KEY, None)
    here = Path(__file__).parent.resolve()
    for suite in lab.run_config.suites if lab else []:
        if suite.kind == "fuzz" and any(
            here.is_relative_to(p.resolve()) or p.resolve().is_relative_to(here) for p in suite.paths
        ):
            return dict(suite.params)
    return {}


def pytest_configure(config: pytest.Config) -> None:
    params = _params(config)
    hypothesis.settings.register_profile(
        "eqlab-fuzz",
        max_examples=int(params.get("max_examples", DEFAULT_MAX_EXAMPLES)),
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    hypothesis.settings.load_profile("eqlab-fuzz")


@pytest.fixture(scope="session")
def fuzz_params(pytestconfig: pytest.Config) -> dict[str, Any]:
    return _params(pytestconfig)
