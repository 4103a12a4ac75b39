"""Parse FHIR search parameters into typed criteria.

Repeating a parameter ANDs its criteria, commas inside one value OR them. Unknown parameters are
ignored (and left out of the ``self`` link) unless the client sends ``Prefer: handling=strict``;
an invalid value of a known parameter, or an unsupported modifier, is always a 400.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Protocol

from reference_impl.fhir.dates import InvalidDate, parse_range
from reference_impl.fhir.errors import invalid
from reference_impl.fhir.indexing import split_reference
from reference_impl.fhir.searchparams import SYSTEM_LEVEL, SearchParam, SearchParamRegistry
from reference_impl.fhir.structure import RESOURCE_ID

PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
ORDERED_TYPES = frozenset({"date", "number", "quantity"})
MODIFIERS = {
    "string": {"exact", "contains", "missing"},
    "token": {"not", "text", "missing"},
    "date": {"missing"},
    "number": {"missing"},
    "quantity": {"missing"},
    "reference": {"identifier", "missing"},
    "uri": {"below", "missing"},
}
SUMMARY_MODES = ("true", "false", "count", "text", "data")
_ESCAPED_COMMA = "\x00"
_DIGITS = re.compile(r"^[0-9]{1,12}\Z")


@dataclass(frozen=True, slots=True)
class Value:
    raw: str
    prefix: str = "eq"
    low: float = 0.0  # date: epoch us; number/quantity: lower bound of the implied precision range
    high: float = 0.0
    number: float = 0.0
    system: str | None = None
    code: str | None = None
    has_system: bool = False  # "sys|code" or "|code" (system given, possibly empty)
    ref_type: str | None = None


@dataclass(frozen=True, slots=True)
class Criterion:
    param: SearchParam
    modifier: str | None
    values: tuple[Value, ...]
    chains: tuple[tuple[str, Criterion], ...] = ()  # (target type, criterion on it): any may match
    missing: bool | None = None


@dataclass(frozen=True, slots=True)
class HasCriterion:
    source_type: str
    reference: SearchParam  # the source's reference parameter that points at us
    criterion: Criterion


@dataclass(frozen=True, slots=True)
class Include:
    source_type: str
    param: SearchParam
    target_type: str | None
    reverse: bool

    @property
    def text(self) -> str:
        return ":".join([self.source_type, self.param.code, *([self.target_type] if self.target_type else [])])


@dataclass(frozen=True, slots=True)
class Reach:
    """Which resources of one type a caller may see: all, none, or one patient's compartment.

    The access policy decides it (``auth/policy.py``); the SQL of a search applies it to the
    searched type and to every other type a search touches: chained and ``_has`` sub-queries,
    included resources, conditional matching.
    """

    allowed: bool = True
    patient: str | None = None  # only resources in this patient's compartment
    via: tuple[str, ...] = ()  # the reference parameters that put a resource of the type in it
    reason: str = ""  # why not allowed

    @property
    def unlimited(self) -> bool:
        return self.allowed and self.patient is None


EVERYTHING = Reach()


class Visibility(Protocol):
    def of(self, type_name: str, kind: str) -> Reach:
        """The caller's reach into ``type_name`` for interaction ``kind`` (read, search-type...)."""

    def limited(self, kind: str) -> dict[str, Reach]:
        """Every served type the caller does not see in full, with its reach."""

    def judged_one_by_one(self, type_name: str) -> bool:
        """Whether the services' rules judge each resource of ``type_name`` for this caller (no SQL reach can
        say which they may read: such a type is searched on its own, never through a chain or ``_has``)."""


class SeesEverything:
    """The visibility of the platform itself (seeding, maintenance): nothing hidden."""

    def of(self, type_name: str, kind: str) -> Reach:
        return EVERYTHING

    def limited(self, kind: str) -> dict[str, Reach]:
        return {}

    def judged_one_by_one(self, type_name: str) -> bool:
        return False


@dataclass
class SearchRequest:
    type_name: str | None
    criteria: list[Criterion | HasCriterion] = field(default_factory=list)
    count: int = 50
    offset: int = 0
    sort: list[tuple[SearchParam, bool]] = field(default_factory=list)  # (param, descending)
    includes: list[Include] = field(default_factory=list)
    summary: str | None = None
    elements: list[str] = field(default_factory=list)
    types: list[str] = field(default_factory=list)  # _type, for system-level search
    used: list[tuple[str, str]] = field(default_factory=list)  # for the self link
    count_capped: bool = False
    visibility: Visibility = field(default_factory=SeesEverything)  # what the caller may see, type by type
    kind: str = "search-type"  # the interaction the search serves (a conditional update's matching: update)


class QueryParser:
    """Parses one request's search parameters; ``base_url`` makes absolute local references local."""

    def __init__(self, registry: SearchParamRegistry, default_count: int, max_count: int, base_url: str = "") -> None:
        self.registry = registry
        self.default_count = default_count
        self.max_count = max_count
        self._base = base_url.rstrip("/") + "/" if base_url else None

    def parse(self, type_name: str | None, params: list[tuple[str, str]], strict: bool) -> SearchRequest:
        request = SearchRequest(type_name, count=self.default_count)
        for name, value in params:
            if self._result_parameter(request, name, value):
                request.used.append((name, value))
                continue
            criterion = self._criterion(type_name, name, value, request)
            if criterion is None:
                if strict:
                    raise invalid(f"unknown search parameter '{name}' for {type_name or 'system search'}")
                continue
            request.criteria.append(criterion)
            request.used.append((name, value))
        return request

    def _result_parameter(self, request: SearchRequest, name: str, value: str) -> bool:
        if name == "_count":
            count = non_negative_int(name, value)
            request.count_capped = count > self.max_count
            request.count = min(count, self.max_count)
        elif name == "_offset":
            request.offset = non_negative_int(name, value)
        elif name == "_sort":
            request.sort = [self._sort_key(request.type_name, key) for key in value.split(",") if key]
        elif name in ("_include", "_revinclude"):
            request.includes.append(self._include(request.type_name, value, reverse=name == "_revinclude"))
        elif name == "_summary":
            if value not in SUMMARY_MODES:
                raise invalid(f"_summary must be one of {', '.join(SUMMARY_MODES)}, not '{value}'")
            request.summary = value
        elif name == "_elements":
            request.elements = [e.strip() for e in value.split(",") if e.strip()]
        elif name == "_type" and request.type_name is None:
            request.types = [t for t in value.split(",") if t]
            unknown = [t for t in request.types if not self.registry.structure.is_served(t)]
            if unknown:
                raise invalid(f"_type names unknown resource types: {', '.join(unknown)}")
        elif name in ("_format", "_pretty", "_total"):
            pass  # presentation only: content negotiation and formatting happen elsewhere
        else:
            return False
        return True

    def _sort_key(self, type_name: str | None, key: str) -> tuple[SearchParam, bool]:
        descending = key.startswith("-")
        code = key.lstrip("-")
        param = self._param(type_name, code)
        if param is None:
            raise invalid(f"cannot sort by unknown search parameter '{code}'")
        return param, descending

    def _include(self, type_name: str | None, value: str, reverse: bool) -> Include:
        parts = value.split(":")
        if len(parts) not in (2, 3):
            raise invalid(f"_include/_revinclude value '{value}' must be Type:parameter[:targetType]")
        source, code = parts[0], parts[1]
        param = self.registry.get(source, code)
        if param is None or param.type != "reference":
            raise invalid(f"'{source}:{code}' is not a reference search parameter")
        if not reverse and source != type_name:
            raise invalid(f"_include must start with the searched type {type_name}, not '{source}'")
        target = parts[2] if len(parts) == 3 else None
        if target is not None and not self.registry.structure.is_served(target):
            raise invalid(f"unknown target type '{target}' in '{value}'")
        return Include(source, param, target, reverse)

    def _param(self, type_name: str | None, code: str) -> SearchParam | None:
        # System-level searches take the parameters every type has (_id, _lastUpdated, _tag...).
        return self.registry.get(type_name or SYSTEM_LEVEL, code)

    def _criterion(
        self, type_name: str | None, name: str, value: str, request: SearchRequest
    ) -> Criterion | HasCriterion | None:
        if name.startswith("_has:"):
            return self._has(type_name, name, value)
        chain = None
        if "." in name:
            name, chain = name.split(".", 1)
        code, _, modifier = name.partition(":")
        param = self._param(type_name, code)
        if param is None:
            return None
        if chain is not None:
            return self._chain(param, modifier or None, chain, value)
        return self.criterion(param, modifier or None, value)

    def _chain(self, param: SearchParam, type_modifier: str | None, chain: str, value: str) -> Criterion:
        if param.type != "reference":
            raise invalid(f"'{param.code}' is not a reference parameter and cannot be chained")
        if "." in chain:
            raise invalid("chained searches go one level deep")
        targets = [type_modifier] if type_modifier else list(param.targets)
        code, _, modifier = chain.partition(":")
        candidates = [(t, self.registry.get(t, code)) for t in targets]
        matches = [(t, p) for t, p in candidates if p is not None]
        if not matches:
            raise invalid(f"no target of '{param.code}' has a search parameter '{code}'")
        # Several targets with the parameter (patient.identifier: Patient or Group): any may match.
        chains = tuple(
            (target, self.criterion(inner, modifier or None, value)) for target, inner in matches if inner is not None
        )
        return Criterion(param, None, (), chains=chains)

    def _has(self, type_name: str | None, name: str, value: str) -> HasCriterion:
        parts = name.split(":")
        if len(parts) != 4 or type_name is None:
            raise invalid(f"'{name}' must be _has:Type:reference:parameter on a type-level search")
        _, source, ref_code, inner = parts
        reference = self.registry.get(source, ref_code)
        if reference is None or reference.type != "reference":
            raise invalid(f"'{source}:{ref_code}' in '{name}' is not a reference search parameter")
        code, _, modifier = inner.partition(":")
        inner_param = self.registry.get(source, code)
        if inner_param is None:
            raise invalid(f"{source} has no search parameter '{code}'")
        return HasCriterion(source, reference, self.criterion(inner_param, modifier or None, value))

    def criterion(self, param: SearchParam, modifier: str | None, value: str) -> Criterion:
        structure = self.registry.structure
        type_modifier = param.type == "reference" and modifier is not None and structure.is_served(modifier)
        if modifier is not None and modifier not in MODIFIERS[param.type] and not type_modifier:
            raise invalid(f"modifier ':{modifier}' is not supported on {param.type} parameter '{param.code}'")
        if modifier == "missing":
            if value not in ("true", "false"):
                raise invalid(f"{param.code}:missing must be true or false, not '{value}'")
            return Criterion(param, modifier, (), missing=value == "true")
        if value == "":
            raise invalid(f"search parameter '{param.code}' has an empty value")
        parts = [p.replace(_ESCAPED_COMMA, ",") for p in value.replace("\\,", _ESCAPED_COMMA).split(",")]
        return Criterion(param, modifier, tuple(self._value(param, modifier, p) for p in parts))

    def _value(self, param: SearchParam, modifier: str | None, raw: str) -> Value:
        prefix = "eq"
        if param.type in ORDERED_TYPES and raw[:2] in PREFIXES and not raw[:2].isdigit():
            prefix, raw = raw[:2], raw[2:]
        if param.type == "date":
            try:
                start, end = parse_range(raw)
            except InvalidDate as exc:
                raise invalid(f"{param.code}: {exc}") from None
            return Value(raw, prefix, start, end)
        if param.type in ("number", "quantity"):
            number_text, _, unit = raw.partition("|")
            low, number, high = _number_range(param.code, number_text)
            system, _, code = unit.partition("|") if unit else ("", "", "")
            if unit and not code:
                system, code = "", unit
            return Value(raw, prefix, low, high, number, system or None, code or None)
        if param.type == "token" or modifier == "identifier":
            if "|" in raw:
                system, code = raw.split("|", 1)
                return Value(raw, system=system or None, code=code or None, has_system=True)
            return Value(raw, code=raw)
        if param.type == "reference":
            if self._base and raw.startswith(self._base):
                raw = raw[len(self._base) :]
            return _reference_value(param, modifier, raw)
        return Value(raw)


def _reference_value(param: SearchParam, modifier: str | None, raw: str) -> Value:
    if modifier is not None:  # a type modifier: subject:Patient=123
        if not RESOURCE_ID.match(raw):
            raise invalid(f"{param.code}:{modifier}: '{raw}' is not a resource id")
        return Value(raw, ref_type=modifier, code=raw)
    if "/" in raw:
        ref_type, ref_id = split_reference(raw)
        if "://" in raw:  # an absolute URL
            return Value(raw, system=raw, ref_type=ref_type, code=ref_id)
        if ref_type is None or ref_id is None:
            raise invalid(f"{param.code}: '{raw[:100]}' is not a reference (Type/id with a FHIR id, or a URL)")
        return Value(raw, ref_type=ref_type, code=ref_id)
    if not RESOURCE_ID.match(raw):
        raise invalid(f"{param.code}: '{raw}' is not a reference (Type/id, id or an absolute URL)")
    return Value(raw, code=raw)


MAX_INT = 2**31 - 1  # beyond this, counts and offsets overflow the databases' integers


def non_negative_int(name: str, value: str) -> int:
    if not _DIGITS.match(value) or int(value) > MAX_INT:
        raise invalid(f"{name} must be a whole number from 0 to {MAX_INT}, not '{value[:40]}'")
    return int(value)


def _number_range(code: str, text: str) -> tuple[float, float, float]:
    """(low, value, high): the interval implied by the precision of ``text`` (FHIR number search)."""
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise invalid(f"{code}: '{text}' is not a number") from None
    if not number.is_finite():
        raise invalid(f"{code}: '{text}' is not a finite number")
    exponent = number.as_tuple().exponent
    assert isinstance(exponent, int)
    half = Decimal(5).scaleb(exponent - 1)
    return float(number - half), float(number), float(number + half)
