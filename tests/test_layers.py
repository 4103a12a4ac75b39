"""ARCHITECTURE.md's layer rules, checked on the source: who may import whom.

The engine must run against any vendor's system without the reference implementation, the suites
must see a system under test only over HTTP, and the reference implementation must not lean on
the lab that judges it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "eqlab": ("reference_impl", "suites", "reference_client"),
    "suites": ("reference_impl",),
    "reference_impl": ("eqlab", "suites"),
    # An independent program: it talks to a platform over HTTP only, like a vendor's client.
    "reference_client": ("eqlab", "reference_impl", "suites"),
}
# reference_impl and reference_client inside commands only
LAZY_ONLY = {Path("eqlab/cli.py"), Path("eqlab/commands/store_admin.py"), Path("eqlab/commands/detection.py")}
FHIR_MODELS = Path("reference_impl/fhir/models.py")


def imports(tree: ast.Module, top_level_only: bool) -> Iterator[tuple[int, str]]:
    nodes = tree.body if top_level_only else ast.walk(tree)
    for node in nodes:
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module


def sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_each_package_imports_only_what_its_layer_may(package: str) -> None:
    broken = []
    for path in sources(package):
        relative = path.relative_to(ROOT)
        tree = ast.parse(path.read_text(encoding="utf-8"), str(relative))
        for line, module in imports(tree, top_level_only=relative in LAZY_ONLY):
            if module.split(".")[0] in FORBIDDEN[package]:
                broken.append(f"{relative}:{line} imports {module}")
    assert not broken, "layer rule broken (ARCHITECTURE.md):\n" + "\n".join(broken)


# The suites see the lab only through its public API for checks (ARCHITECTURE.md, "Suites").
SUITES_API = ("eqlab.checks",)


def test_suites_import_only_the_public_api_for_checks() -> None:
    broken = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in sources("suites")
        for line, module in imports(ast.parse(path.read_text(encoding="utf-8")), top_level_only=False)
        if module.split(".")[0] == "eqlab" and not module.startswith(SUITES_API)
    ]
    assert not broken, "suites import eqlab only through eqlab.checks:\n" + "\n".join(broken)


# The lab meets its pytest plugin (which runs in a child process) through their contract alone: the
# run configuration it writes and the events it reads, two modules that import no pytest.
PLUGIN_CONTRACT = ("eqlab.pytest_plugin.events", "eqlab.pytest_plugin.run_config")


def test_the_lab_meets_its_pytest_plugin_only_through_their_contract() -> None:
    lab = [path for folder in ("eqlab/runner", "eqlab/commands") for path in sources(folder)]
    contract = [ROOT / (name.replace(".", "/") + ".py") for name in PLUGIN_CONTRACT]
    broken = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in lab + contract
        for line, module in imports(ast.parse(path.read_text(encoding="utf-8")), top_level_only=False)
        if (module.startswith("eqlab.pytest_plugin") and module not in PLUGIN_CONTRACT)
        or (path in contract and module.split(".")[0] == "pytest")
    ]
    assert not broken, "the runner and the plugin share only their contract modules:\n" + "\n".join(broken)


def test_version_specific_fhir_models_are_imported_in_one_module() -> None:
    broken = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for package in FORBIDDEN
        for path in sources(package)
        if path.relative_to(ROOT) != FHIR_MODELS
        for line, module in imports(ast.parse(path.read_text(encoding="utf-8")), top_level_only=False)
        if module.startswith("fhir.resources")
    ]
    assert not broken, "\n".join(broken)


def test_the_rules_see_the_imports_they_judge() -> None:
    """The checker itself: it finds a lazy import inside a function, and a top-level one."""
    tree = ast.parse("import os\n\ndef serve():\n    from reference_impl.app import create_app\n")
    assert list(imports(tree, top_level_only=False)) == [(1, "os"), (4, "reference_impl.app")]
    assert list(imports(tree, top_level_only=True)) == [(1, "os")]
