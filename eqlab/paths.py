"""Where the lab finds its suites, catalogue and plans, and where runs go.

The suites are found as a folder (never imported: the engine does not depend on them). The lab is
used from a checkout (``make demo`` installs it in editable mode), so plans and report output
live beside the suites in the project folder.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path


def suites_dir() -> Path:
    spec = importlib.util.find_spec("suites")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the 'suites' folder of eqlab is not installed (run `make demo` or `pip install -e .`)")
    return Path(next(iter(spec.submodule_search_locations))).resolve()


def project_dir() -> Path:
    return suites_dir().parent


def catalogue_dir() -> Path:
    return suites_dir() / "requirements"


def testplans_dir() -> Path:
    return project_dir() / "testplans"


def reports_out_dir() -> Path:
    return project_dir() / "reports" / "out"
