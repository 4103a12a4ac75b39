"""Load a plan file and check it against the catalogue and the suites on disk.

Every problem names the file, line, column and key; unknown keys and unknown requirement IDs get
the closest valid one as a suggestion.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

from eqlab import yamlsource
from eqlab.catalogue import REQUIREMENT_ID, SELECTOR, Catalogue, selector_matches
from eqlab.oauth_client.client_key import load_signing_key
from eqlab.oauth_client.model import AuthConfigError
from eqlab.plan.model import Plan, SuiteKind


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
    """The plan in ``path``, or a SourceError naming every problem of the file at once, in file order.

    The schema's problems and the checks against the catalogue, the suites on disk, the evidence
    files and the auth key file are all collected in one pass: the checks read the document itself,
    so a typo elsewhere in the file does not hide them.
    """
    document = yamlsource.load(path)
    problems = []
    try:
        plan: Plan = yamlsource.validate(document, Plan, context={"allow_production": allow_production})
    except yamlsource.SourceError as exc:
        problems += exc.problems
    plan_folder = path.resolve().parent
    problems += [
        *_requirement_problems(document, catalogue),
        *_suite_problems(document, suites_root),
        *_attestation_problems(document, plan_folder),
        *_auth_problems(document, plan_folder),
    ]
    if problems:
        raise yamlsource.SourceError(sorted(problems, key=lambda p: (p.line or 0, p.column or 0)))
    return LoadedPlan(plan, path.resolve(), hashlib.sha256(path.read_bytes()).hexdigest(), document)


def _mapping(data: Any, *keys: str) -> dict[str, Any]:
    """The mapping at ``keys`` in the raw document, or an empty one where the schema finds another shape."""
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None
    return data if isinstance(data, dict) else {}


def _listed(data: Any, *keys: str) -> list[tuple[int, Any]]:
    """The entries of the list at ``keys`` in the raw document (none where it is not a list)."""
    *parents, last = keys
    entries = _mapping(data, *parents).get(last)
    return list(enumerate(entries)) if isinstance(entries, list) else []


def _text(entry: Any, key: str) -> str | None:
    value = entry.get(key) if isinstance(entry, dict) else None
    return value if isinstance(value, str) else None


def _unknown(
    document: yamlsource.YamlDocument, location: yamlsource.Location, rid: str, catalogue: Catalogue
) -> yamlsource.Problem:
    close = difflib.get_close_matches(rid, list(catalogue.requirements), n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return document.problem(location, f"unknown requirement ID {rid}{hint}")


def _matches_nothing(
    document: yamlsource.YamlDocument, location: yamlsource.Location, selector: str, catalogue: Catalogue
) -> yamlsource.Problem:
    service, _, numbers = selector.partition("@")
    services = sorted({rid.partition("@")[0] for rid in catalogue.requirements})
    close = difflib.get_close_matches(service, services, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]}@{numbers}?)" if close else ""
    return document.problem(location, f"'{selector}' matches no requirement{hint}")


def _requirement_problems(document: yamlsource.YamlDocument, catalogue: Catalogue) -> list[yamlsource.Problem]:
    problems = []
    for key in ("include", "exclude"):
        for i, selector in _listed(document.data, "requirements", key):
            match = SELECTOR.match(selector) if isinstance(selector, str) else None
            if match is None:
                continue  # the schema names a malformed selector
            if match["range"].isdigit() and selector not in catalogue:
                problems.append(_unknown(document, ("requirements", key, i), selector, catalogue))
            elif not any(selector_matches(selector, rid) for rid in catalogue.requirements):
                problems.append(_matches_nothing(document, ("requirements", key, i), selector, catalogue))
    for key in ("not_tested", "attestations"):
        for i, entry in _listed(document.data, key):
            rid = _text(entry, "requirement")
            if rid and re.match(REQUIREMENT_ID, rid) and rid not in catalogue:
                problems.append(_unknown(document, (key, i, "requirement"), rid, catalogue))
    return problems


def _suite_problems(document: yamlsource.YamlDocument, suites_root: Path) -> list[yamlsource.Problem]:
    problems = []
    for i, suite in _listed(document.data, "suites"):
        kind, path = _text(suite, "kind"), _text(suite, "path")
        if kind is None or kind not in get_args(SuiteKind):
            continue  # the schema names an unknown kind
        folder = (suites_root / (path or kind)).resolve()
        if not folder.exists():
            problems.append(document.problem(("suites", i, "path" if path else "kind"), f"no suite at {folder}"))
        elif not _has_checks(kind, folder):
            problems.append(document.problem(("suites", i, "kind"), f"the {kind} suite at {folder} has no checks yet"))
    return problems


def _has_checks(kind: str, folder: Path) -> bool:
    if kind == "load":  # a locust scenario file
        return folder.suffix == ".py" or (folder / "locustfile.py").is_file()
    return folder.name.startswith("test_") or any(folder.rglob("test_*.py"))


def _attestation_problems(document: yamlsource.YamlDocument, plan_folder: Path) -> list[yamlsource.Problem]:
    problems = []
    for i, attestation in _listed(document.data, "attestations"):
        evidence = _text(attestation, "evidence")
        if evidence and not (plan_folder / evidence).is_file():
            problems.append(
                document.problem(
                    ("attestations", i, "evidence"), f"evidence file {evidence} not found next to the plan"
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


def _auth_problems(document: yamlsource.YamlDocument, plan_folder: Path) -> list[yamlsource.Problem]:
    """The system client's key file must be there and be a key the lab can sign with, before any check runs."""
    key_file = _text(_mapping(document.data, "target", "auth"), "key_file")
    if not key_file or "-----BEGIN" in key_file:
        return []  # none, or inline (which the schema refuses)
    path = (plan_folder / key_file).resolve()
    where = ("target", "auth", "key_file")
    if not path.is_file():
        return [document.problem(where, f"key file {key_file} not found (looked for {path})")]
    try:
        load_signing_key(path)
    except AuthConfigError as exc:
        return [document.problem(where, str(exc))]
    return []
