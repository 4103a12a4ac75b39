"""Load a plan file and check it against the catalogue and the suites on disk.

Every problem names the file, line, column and key; unknown keys and unknown requirement IDs get
the closest valid one as a suggestion.
"""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eqlab import yamlsource
from eqlab.auth.keys import load_signing_key
from eqlab.auth.model import AuthConfigError
from eqlab.catalogue import SELECTOR, Catalogue, selector_matches
from eqlab.plan.model import Plan


@dataclass(frozen=True)
class LoadedPlan:
    plan: Plan
    path: Path
    sha256: str
    document: yamlsource.YamlDocument

    def suite_path(self, index: int, suites_root: Path) -> Path:
        suite = self.plan.suites[index]
        return (suites_root / (suite.path or suite.kind)).resolve()


def load_plan(path: Path, catalogue: Catalogue, suites_root: Path, allow_production: bool = False) -> LoadedPlan:
    document = yamlsource.load(path)
    plan: Plan = yamlsource.validate(document, Plan, context={"allow_production": allow_production})
    loaded = LoadedPlan(plan, path.resolve(), hashlib.sha256(path.read_bytes()).hexdigest(), document)
    problems = [
        *_requirement_problems(loaded, catalogue),
        *_suite_problems(loaded, suites_root),
        *_attestation_problems(loaded),
        *_auth_problems(loaded),
    ]
    if problems:
        raise yamlsource.SourceError(problems)
    return loaded


def _unknown(
    document: yamlsource.YamlDocument, location: yamlsource.Location, rid: str, catalogue: Catalogue
) -> yamlsource.Problem:
    close = difflib.get_close_matches(rid, list(catalogue.requirements), n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]}?" if close else ""
    return document.problem(location, f"unknown requirement ID {rid}{hint}")


def _requirement_problems(loaded: LoadedPlan, catalogue: Catalogue) -> list[yamlsource.Problem]:
    plan, document = loaded.plan, loaded.document
    problems = []
    for key in ("include", "exclude"):
        for i, selector in enumerate(getattr(plan.requirements, key)):
            match = SELECTOR.match(selector)
            assert match is not None  # the model checked the syntax
            if match["range"].isdigit() and selector not in catalogue:
                problems.append(_unknown(document, ("requirements", key, i), selector, catalogue))
            elif not any(selector_matches(selector, rid) for rid in catalogue.requirements):
                problems.append(document.problem(("requirements", key, i), f"'{selector}' matches no requirement"))
    for key in ("not_tested", "attestations"):
        for i, entry in enumerate(getattr(plan, key)):
            if entry.requirement not in catalogue:
                problems.append(_unknown(document, (key, i, "requirement"), entry.requirement, catalogue))
    return problems


def _suite_problems(loaded: LoadedPlan, suites_root: Path) -> list[yamlsource.Problem]:
    problems = []
    for i, suite in enumerate(loaded.plan.suites):
        folder = loaded.suite_path(i, suites_root)
        if not folder.exists():
            problems.append(
                loaded.document.problem(("suites", i, "path" if suite.path else "kind"), f"no suite at {folder}")
            )
        elif not _has_checks(suite.kind, folder):
            problems.append(
                loaded.document.problem(("suites", i, "kind"), f"the {suite.kind} suite at {folder} has no checks yet")
            )
    return problems


def _has_checks(kind: str, folder: Path) -> bool:
    if kind == "load":  # a locust scenario file
        return folder.suffix == ".py" or (folder / "locustfile.py").is_file()
    return folder.name.startswith("test_") or any(folder.rglob("test_*.py"))


def _attestation_problems(loaded: LoadedPlan) -> list[yamlsource.Problem]:
    problems = []
    for i, attestation in enumerate(loaded.plan.attestations):
        if not (loaded.path.parent / attestation.evidence).is_file():
            problems.append(
                loaded.document.problem(
                    ("attestations", i, "evidence"), f"evidence file {attestation.evidence} not found next to the plan"
                )
            )
    return problems


def auth_settings(plan: Plan, plan_path: Path) -> dict[str, Any]:
    """A plan's ``target.auth`` as checks use it, the key file's path made absolute (they run elsewhere).

    Names of environment variables only: the processes that need a secret inherit the environment
    and read it themselves, so no secret is ever written to a file.
    """
    auth = plan.target.auth
    if auth is None:
        return {}
    settings = auth.model_dump(exclude_none=True)
    if auth.key_file:
        settings["key_file"] = str((plan_path.resolve().parent / auth.key_file).resolve())
    return settings


def _auth_problems(loaded: LoadedPlan) -> list[yamlsource.Problem]:
    """The system client's key file must be there and be a key the lab can sign with, before any check runs."""
    auth = loaded.plan.target.auth
    if auth is None or not auth.key_file:
        return []
    path = Path(auth_settings(loaded.plan, loaded.path)["key_file"])
    where = ("target", "auth", "key_file")
    if not path.is_file():
        return [loaded.document.problem(where, f"key file {auth.key_file} not found (looked for {path})")]
    try:
        load_signing_key(path)
    except AuthConfigError as exc:
        return [loaded.document.problem(where, str(exc))]
    return []
