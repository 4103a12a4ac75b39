"""The search parameters the server supports, built from the official R4 definitions.

A parameter is supported for a resource type when its type has an index table and its FHIRPath
expression compiles (see ``fhirpath.py``); the CapabilityStatement lists exactly these.
``_id`` and ``_lastUpdated`` are columns of the resource table rather than index rows.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from functools import cache
from typing import Any

from reference_impl.fhir.fhirpath import (
    Node,
    Path,
    PlainPath,
    UnsupportedExpression,
    compile_for_type,
    evaluate,
    follow,
    plain_path,
)
from reference_impl.fhir.indexing import ROWS_BY_TYPE, Row, reference_rows
from reference_impl.fhir.structure import Structure, patient_compartment, search_parameter_definitions, structure

log = logging.getLogger(__name__)
COLUMN_PARAMS = {"_id": "token", "_lastUpdated": "date"}
# Types whose resources are written on every request get only the parameters they are searched by:
# every access writes an AuditEvent, and each parameter costs index rows on that hot path. The
# access log is searched by patient, who (agent), what (entity), when, outcome, kind of access and
# the break-the-glass label; the other 14 R4 AuditEvent parameters (address, site, policy...) are
# not offered (nor listed in the CapabilityStatement).
ONLY_PARAMS = {
    "AuditEvent": frozenset(
        {
            "_id",
            "_lastUpdated",
            "_security",
            "patient",
            "agent",
            "entity",
            "date",
            "outcome",
            "type",
            "subtype",
            "action",
        }
    )
}
SYSTEM_LEVEL = "Resource"  # pseudo type holding the parameters every type has, for system search


@dataclass(frozen=True, slots=True)
class SearchParam:
    code: str
    type: str
    url: str
    description: str
    targets: tuple[str, ...]
    paths: tuple[Path, ...]

    @property
    def is_column(self) -> bool:
        return self.code in COLUMN_PARAMS


class SearchParamRegistry:
    def __init__(self, struct: Structure, definitions: list[dict[str, Any]]) -> None:
        self.structure = struct
        self._by_type: dict[str, dict[str, SearchParam]] = defaultdict(dict)
        # Per (resource type, parameter): its paths as PlainPaths, or None when one is not plain.
        self._plain: dict[tuple[str, str], tuple[PlainPath, ...] | None] = {}
        for definition in definitions:
            self._register(definition)

    def _register(self, definition: dict[str, Any]) -> None:
        code, param_type = definition["code"], definition["type"]
        if param_type not in ROWS_BY_TYPE:
            return
        bases = definition.get("base", [])
        if SYSTEM_LEVEL in bases:
            bases = [SYSTEM_LEVEL, *self.structure.served_types]
        elif "DomainResource" in bases:
            bases = [t for t in self.structure.served_types if t not in ("Bundle", "Binary", "Parameters")]
        for base in bases:
            if base != SYSTEM_LEVEL and not self.structure.is_served(base):
                continue
            if base in ONLY_PARAMS and code not in ONLY_PARAMS[base]:
                continue
            try:
                paths = tuple(compile_for_type(definition.get("expression") or "", base))
            except UnsupportedExpression as exc:
                log.debug("search parameter %s not offered on %s: %s", definition["id"], base, exc)
                continue
            targets = tuple(t for t in definition.get("target", []) if self.structure.is_served(t))
            self._by_type[base][code] = SearchParam(
                code, param_type, definition["url"], definition.get("description", ""), targets, paths
            )

    def get(self, type_name: str, code: str) -> SearchParam | None:
        return self._by_type.get(type_name, {}).get(code)

    def for_type(self, type_name: str) -> dict[str, SearchParam]:
        return self._by_type.get(type_name, {})

    def index_rows(self, resource: dict[str, Any]) -> dict[str, list[tuple[str, Row]]]:
        """Rows per index table: ``{"token": [(param_code, (system, code, text)), ...], ...}``."""
        out: dict[str, list[tuple[str, Row]]] = defaultdict(list)
        for param in self.for_type(resource["resourceType"]).values():
            if param.is_column:
                continue
            nodes = self.selected(resource, param)
            seen: set[Row] = set()
            for row in ROWS_BY_TYPE[param.type](nodes):
                if row not in seen:
                    seen.add(row)
                    out[param.type].append((param.code, row))
        return out

    def compartment_patients(self, resource: dict[str, Any]) -> set[str]:
        """The patients ("Patient/<id>") that ``resource``'s patient-compartment parameters reference: the
        rows of those parameters the search index holds for it, without the other parameters' rows."""
        type_name = str(resource.get("resourceType"))
        found: set[str] = set()
        for code in patient_compartment().get(type_name, ()):
            param = self.get(type_name, code)
            if param is None or param.type != "reference":
                continue
            for target_type, target_id, *_ in reference_rows(self.selected(resource, param)):
                if target_type == "Patient" and target_id:
                    found.add(f"Patient/{target_id}")
        return found

    def selected(self, resource: dict[str, Any], param: SearchParam) -> list[Node]:
        """The values ``param`` selects in ``resource``."""
        paths = self.plain_paths(resource["resourceType"], param)
        if paths is None:
            return evaluate(list(param.paths), resource, self.structure)
        return [node for path in paths for node in follow(path, resource)]

    def selects_only(self, type_name: str, param: SearchParam, fhir_type: str) -> bool:
        """Whether every value ``param`` selects in a ``type_name`` resource is of ``fhir_type`` (known only
        for plain paths: False for any other)."""
        paths = self.plain_paths(type_name, param)
        return bool(paths) and all(path.type_name == fhir_type for path in paths or ())

    def plain_paths(self, type_name: str, param: SearchParam) -> tuple[PlainPath, ...] | None:
        """``param``'s paths in a ``type_name`` resource as plain paths (``follow``), or None when any is not
        plain (``evaluate`` reads those)."""
        key = (type_name, param.code)
        if key not in self._plain:
            plain = [plain_path(path, type_name, self.structure) for path in param.paths]
            self._plain[key] = None if None in plain else tuple(p for p in plain if p is not None)
        return self._plain[key]


@cache
def registry() -> SearchParamRegistry:
    return SearchParamRegistry(structure(), search_parameter_definitions())
