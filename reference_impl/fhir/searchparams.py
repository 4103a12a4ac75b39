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

from reference_impl.fhir.fhirpath import Path, UnsupportedExpression, compile_for_type, evaluate
from reference_impl.fhir.indexing import ROWS_BY_TYPE, Row
from reference_impl.fhir.structure import Structure, search_parameter_definitions, structure

log = logging.getLogger(__name__)
COLUMN_PARAMS = {"_id": "token", "_lastUpdated": "date"}
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
            nodes = evaluate(list(param.paths), resource, self.structure)
            seen: set[Row] = set()
            for row in ROWS_BY_TYPE[param.type](nodes):
                if row not in seen:
                    seen.add(row)
                    out[param.type].append((param.code, row))
        return out


@cache
def registry() -> SearchParamRegistry:
    return SearchParamRegistry(structure(), search_parameter_definitions())
