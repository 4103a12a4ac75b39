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
LAZY_ONLY = {
    Path("eqlab/cli.py"),
    Path("eqlab/commands/store_admin.py"),
    Path("eqlab/commands/detection.py"),
    Path("eqlab/commands/seeding.py"),
}
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


# reference_impl's rooms, bottom to top: a module imports from its own room and the rooms below, never above.
REFERENCE_ROOMS: tuple[tuple[str, ...], ...] = (
    ("settings", "vault", "faults", "naming", "lru"),  # what every room may use
    ("fhir",),  # FHIR knowledge: structures, search parameters, FHIRPath, queries, validation
    ("store",),
    ("audit",),
    ("auth",),
    ("rest",),  # the REST pipeline
    ("services",),  # the national services, each registered through its descriptor
    ("platform",),  # the services installed, the migrations of the whole store
    ("seed",),
    ("app", "embedded"),
)


def reference_modules() -> dict[str, Path]:
    found = {}
    for path in sources("reference_impl"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def reference_imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The reference_impl modules ``path`` imports (``from package import module`` names the module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name in known}
        elif isinstance(node, ast.ImportFrom) and node.module in known and node.level == 0:
            submodules = {f"{node.module}.{alias.name}" for alias in node.names} & known.keys()
            found |= submodules or {node.module}
    return found - {"reference_impl"}


def room_rank(module: str) -> int:
    room = module.split(".")[1]
    return next(rank for rank, rooms in enumerate(REFERENCE_ROOMS) if room in rooms)


def test_every_reference_impl_module_is_in_a_room() -> None:
    assert not [
        m
        for m in reference_modules()
        if m != "reference_impl" and not any(m.split(".")[1] in rooms for rooms in REFERENCE_ROOMS)
    ]


def test_reference_impl_imports_point_downward() -> None:
    known = reference_modules()
    broken = [
        f"{path.relative_to(ROOT)} ({module.split('.')[1]}) imports {target} ({target.split('.')[1]}): an upward arrow"
        for module, path in known.items()
        if module != "reference_impl"
        for target in sorted(reference_imports(path, known))
        if room_rank(target) > room_rank(module)
    ]
    assert not broken, "\n".join(broken)


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles of ``graph`` (module -> modules it imports), one path each."""
    found, done, path = [], set(), []

    def visit(node: str) -> None:
        if node in path:
            found.append([*path[path.index(node) :], node])
            return
        if node in done:
            return
        path.append(node)
        for target in sorted(graph.get(node, ())):
            visit(target)
        path.pop()
        done.add(node)

    for node in sorted(graph):
        visit(node)
    return found


def test_reference_impl_has_no_import_circle() -> None:
    known = reference_modules()
    graph = {module: reference_imports(path, known) for module, path in known.items()}
    assert circles(graph) == []


def registers(func: ast.expr) -> bool:
    """``server.add_operation``, ``....writes.add``, ``....rules`` or ``....login_rules`` ``.append/extend/insert``:
    what install() alone calls."""
    if not isinstance(func, ast.Attribute):
        return False
    owner = func.value.attr if isinstance(func.value, ast.Attribute) else None
    return (
        func.attr == "add_operation"
        or (func.attr == "add" and owner == "writes")
        or (func.attr in ("append", "extend", "insert") and owner in ("rules", "login_rules"))
    )


def test_services_register_only_through_their_descriptor() -> None:
    """Only the descriptor installs a service's parts into the server: a service declares, never registers itself."""
    descriptor = ROOT / "reference_impl/services/descriptor.py"
    broken = []
    for path in sources("reference_impl/services"):
        if path == descriptor:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and registers(node.func):
                broken.append(
                    f"{path.relative_to(ROOT)}:{node.lineno} registers a part itself: {ast.unparse(node.func)}"
                )
        for line, module in imports(tree, top_level_only=False):
            if module == "reference_impl.rest.server":
                broken.append(f"{path.relative_to(ROOT)}:{line} imports the server")
    assert not broken, "\n".join(broken)


def test_the_registration_finder_tells_registering_from_using() -> None:
    calls = [
        "server.add_operation(op)",
        "server.writes.add('Patient', check=c)",
        "server.policy.rules.append(r)",
        "server.auth.login_rules.extend(rules)",
    ]
    assert all(registers(ast.parse(c).body[0].value.func) for c in calls)  # type: ignore[attr-defined]
    uses = ["ctx.writes.before_write(ctx, resource)", "ctx.faults.on(X)", "found.add(x)"]
    assert not any(registers(ast.parse(c).body[0].value.func) for c in uses)  # type: ignore[attr-defined]


def test_the_circle_finder_finds_circles() -> None:
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert circles({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []


def test_the_rules_see_the_imports_they_judge() -> None:
    """The checker itself: it finds a lazy import inside a function, and a top-level one."""
    tree = ast.parse("import os\n\ndef serve():\n    from reference_impl.app import create_app\n")
    assert list(imports(tree, top_level_only=False)) == [(1, "os"), (4, "reference_impl.app")]
    assert list(imports(tree, top_level_only=True)) == [(1, "os")]
