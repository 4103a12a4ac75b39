"""Index rows remembered per group of parameters and the values they read: ``index_rows``, faster where
resources repeat each other's values (a bulk load's generated resources, the audit trail's AuditEvents)."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from typing import Any

import orjson

from reference_impl.fhir.fhirpath import PlainPath, values_at
from reference_impl.fhir.indexing import ROWS_BY_TYPE, Row
from reference_impl.fhir.searchparams import SearchParam, SearchParamRegistry
from reference_impl.fhir.structure import ElementContext

IndexSuffix = tuple[Any, ...]  # (param code, *values) of one index row
TypedRows = list[tuple[str, list[IndexSuffix]]]  # (param type, rows) per param type with rows
MEMO_LIMIT = 200_000  # remembered answers, all groups together; all forgotten when full
TRIAL = 2_000  # lookups after which a group whose answers rarely come back is keyed further, or no longer remembered
WORTH_REMEMBERING = 0.1  # ... rarely: less than this share of its lookups found a remembered answer


class _Group:
    """The parameters of a type that read the same top-level elements (``keys``; None: any element,
    evaluated every time), and their remembered rows per value of what they read.

    What they read is first those top-level elements' values; a group whose answers rarely come back
    keyed so and whose parameters' paths are all plain (``leaves``) is then keyed by the values those
    paths select (a document's attachment holds its own data, but the type and language its
    parameters read repeat); a group whose answers still rarely come back is evaluated every time."""

    def __init__(
        self, keys: tuple[str, ...] | None, params: list[SearchParam], leaves: tuple[PlainPath, ...] | None
    ) -> None:
        self.keys, self.params, self.leaves = keys, params, leaves
        self.remembered = keys is not None
        self.by_leaves = False
        self.memo: dict[bytes, TypedRows] = {}
        self.lookups = self.found = 0

    def read(self, resource: dict[str, Any]) -> bytes:
        """What the group's rows are a function of, as a memo key."""
        if self.by_leaves:
            assert self.leaves is not None
            return orjson.dumps([values_at(path, resource) for path in self.leaves])
        assert self.keys is not None
        return orjson.dumps([resource.get(k) for k in self.keys])

    def rarely_found(self, trial: int) -> bool:
        return self.lookups >= trial and self.found < WORTH_REMEMBERING * self.lookups

    def key_further(self) -> None:
        """Forget the answers; key by the leaves next if not yet and they are known, else stop remembering."""
        self.memo.clear()
        self.lookups = self.found = 0
        if self.by_leaves or self.leaves is None:
            self.remembered = False
        else:
            self.by_leaves = True


class IndexRowMemo:
    """``SearchParamRegistry.index_rows``, remembered per group of parameters and the values it reads.

    Hand-written for speed: the registry evaluates every parameter's FHIRPath on every resource
    (about 120 µs a resource, most of a load's time), while most parameters of a generated resource
    read elements many resources share (a status, a type, the patient, the same ``meta``). A
    parameter whose every path starts with a child of the resource reads only those top-level
    elements, so its rows are a function of their values: the parameters reading the same elements
    are computed together once per distinct values and remembered. A group whose elements rarely come
    back is tried again keyed by the values its paths select (``_Group``: a document's ``content`` is its
    own, its content type is not; a national load's index rows 45 -> 35 µs a resource, measured in one
    process alternately). A group whose values still rarely come back (an identifier, a date: each
    resource its own) is evaluated every time after its trials, as is any other parameter: remembering
    them was most of this class's own time (serialising the values, storing answers never asked for
    again). The rows are those of ``index_rows`` (same evaluation, same de-duplication):
    ``tests/reference_impl/seed`` compares both on every resource of a generated dataset,
    ``tests/reference_impl/audit`` on the AuditEvents the platform writes. Shared by a process's
    threads: an answer is complete before it is remembered, and a race at worst computes one twice.
    """

    def __init__(self, search: SearchParamRegistry, trial: int = TRIAL) -> None:
        self._registry = search
        self._trial = trial
        self._plans: dict[str, list[_Group]] = {}
        self._remembered = 0

    def rows(self, resource: dict[str, Any]) -> Iterator[tuple[str, list[IndexSuffix]]]:
        """(param type, rows) for the parameters of ``resource``'s type (a type may come more than once)."""
        type_name = resource["resourceType"]
        plan = self._plans.get(type_name)
        if plan is None:
            plan = self._plans[type_name] = self._plan(type_name)
        for group in plan:
            keys = group.keys
            if keys is not None:
                for key in keys:
                    if key in resource:
                        break
                else:
                    continue  # paths that start at absent elements select nothing: no rows
            if not group.remembered:
                yield from self._evaluate(group.params, resource)
                continue
            read = group.read(resource)
            found = group.memo.get(read)
            group.lookups += 1
            if found is not None:
                group.found += 1
            else:
                found = self._evaluate(group.params, resource)
                self._remember(group, read, found)
            yield from found

    def _remember(self, group: _Group, read: bytes, found: TypedRows) -> None:
        if group.rarely_found(self._trial):
            self._remembered -= len(group.memo)
            group.key_further()
            return
        if self._remembered >= MEMO_LIMIT:
            for plan in list(self._plans.values()):  # shared by threads: another may add a type meanwhile
                for other in plan:
                    other.memo.clear()
            self._remembered = 0
        group.memo[read] = found
        self._remembered += 1

    def _plan(self, type_name: str) -> list[_Group]:
        structure = self._registry.structure
        by_keys: dict[tuple[str, ...] | None, list[SearchParam]] = {}
        for param in self._registry.for_type(type_name).values():
            if param.is_column:
                continue
            keys: set[str] | None = set()
            for path in param.paths:
                if not path or path[0].kind != "child" or keys is None:
                    keys = None
                    continue
                keys.update(c.json_key for c in structure.children(ElementContext(type_name), path[0].name))
            by_keys.setdefault(tuple(sorted(keys)) if keys is not None else None, []).append(param)
        return [_Group(keys, params, self._leaves(type_name, params)) for keys, params in by_keys.items()]

    def _leaves(self, type_name: str, params: list[SearchParam]) -> tuple[PlainPath, ...] | None:
        """The plain paths ``params`` select, each once; None if one of them is not plain."""
        leaves: dict[PlainPath, None] = {}
        for param in params:
            paths = self._registry.plain_paths(type_name, param)
            if paths is None:
                return None
            leaves.update(dict.fromkeys(paths))
        return tuple(leaves)

    def _evaluate(self, params: list[SearchParam], resource: dict[str, Any]) -> TypedRows:
        # index_rows' evaluation of each parameter, row for row, gathered per param type.
        by_type: dict[str, list[IndexSuffix]] = {}
        for param in params:
            nodes = self._registry.selected(resource, param)
            seen: set[Row] = set()
            for row in ROWS_BY_TYPE[param.type](nodes):
                if row not in seen:
                    seen.add(row)
                    by_type.setdefault(param.type, []).append((param.code, *row))
        return list(by_type.items())


@cache
def shared(search: SearchParamRegistry) -> IndexRowMemo:
    """The memo this process's writes share for ``search``: an AuditEvent's kind of access, client and
    outcome repeat from one access to the next (its index rows: 33 -> 20 µs, over 20,000 AuditEvents of
    ``benchmarks/fhir_core.py``'s reads and searches; the patient and the entity are evaluated every time)."""
    return IndexRowMemo(search)
