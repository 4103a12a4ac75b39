"""A pytest plugin for a child pytest that collects the contract suite: it writes ``{node id: [requirement
IDs]}`` as JSON to the file named by ``EQLAB_REQUIREMENT_MAP`` (``-p tests.suites.requirement_map``)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

OUTPUT_ENV = "EQLAB_REQUIREMENT_MAP"


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    output = os.environ.get(OUTPUT_ENV)
    if output:
        mapping = {
            item.nodeid: [rid for mark in item.iter_markers("requirement") for rid in mark.args] for item in items
        }
        Path(output).write_text(json.dumps(mapping, indent=1), encoding="utf-8")
