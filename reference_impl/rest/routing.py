"""Map a method and a path under the FHIR base to an interaction (FHIR R4 RESTful API table)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from reference_impl.auth.principal import Principal
from reference_impl.fhir.errors import FhirError, Issue, error, invalid
from reference_impl.fhir.structure import RESOURCE_ID, structure


class Kind(StrEnum):
    READ = "read"
    VREAD = "vread"
    UPDATE = "update"
    PATCH = "patch"
    DELETE = "delete"
    HISTORY_INSTANCE = "history-instance"
    HISTORY_TYPE = "history-type"
    HISTORY_SYSTEM = "history-system"
    CREATE = "create"
    SEARCH_TYPE = "search-type"
    SEARCH_SYSTEM = "search-system"
    CAPABILITIES = "capabilities"
    BATCH = "batch"  # batch or transaction: the Bundle type decides
    OPERATION = "operation"


WRITES = frozenset({Kind.UPDATE, Kind.PATCH, Kind.DELETE, Kind.CREATE, Kind.BATCH})


@dataclass(frozen=True, slots=True)
class FhirRequest:
    """A request to the FHIR layer, from HTTP or from a Bundle entry."""

    method: str
    path: str  # below the base, without leading slash: "Patient/123/_history"
    query: tuple[tuple[str, str], ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes = b""
    base_url: str = ""
    request_id: str = ""
    assigned_id: str | None = None  # the id a transaction gave this entry's new resource
    principal: Principal | None = None  # who the access token says is asking (None: no token)
    client_address: str | None = None

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    @property
    def prefer(self) -> dict[str, str]:
        out = {}
        for part in (self.header("prefer") or "").split(";"):
            key, _, value = part.strip().partition("=")
            if key:
                out[key.strip().lower()] = value.strip().strip('"')
        return out


@dataclass(frozen=True, slots=True)
class Interaction:
    kind: Kind
    type_name: str | None = None
    res_id: str | None = None
    version_id: str | None = None
    operation: str | None = None  # "$match" without the dollar

    @property
    def writes(self) -> bool:
        return self.kind in WRITES


def route(method: str, path: str) -> Interaction:
    parts = [p for p in path.strip("/").split("/") if p] if path else []
    method = method.upper()
    if parts and parts[-1].startswith("$"):
        return _operation(method, parts)
    if not parts:
        return _allow(method, {"GET": Kind.SEARCH_SYSTEM, "POST": Kind.BATCH})
    head = parts[0]
    if len(parts) == 1 and head == "metadata":
        return _allow(method, {"GET": Kind.CAPABILITIES})
    if len(parts) == 1 and head == "_history":
        return _allow(method, {"GET": Kind.HISTORY_SYSTEM})
    if len(parts) == 1 and head == "_search":
        return _allow(method, {"POST": Kind.SEARCH_SYSTEM})
    type_name = _type(head)
    if len(parts) == 1:
        kinds = {"GET": Kind.SEARCH_TYPE, "POST": Kind.CREATE, "PUT": Kind.UPDATE, "DELETE": Kind.DELETE}
        return _allow(method, kinds, type_name)
    second = parts[1]
    if len(parts) == 2 and second == "_search":
        return _allow(method, {"POST": Kind.SEARCH_TYPE}, type_name)
    if len(parts) == 2 and second == "_history":
        return _allow(method, {"GET": Kind.HISTORY_TYPE}, type_name)
    res_id = _id(second)
    if len(parts) == 2:
        kinds = {"GET": Kind.READ, "PUT": Kind.UPDATE, "PATCH": Kind.PATCH, "DELETE": Kind.DELETE}
        return _allow(method, kinds, type_name, res_id)
    if len(parts) == 3 and parts[2] == "_history":
        return _allow(method, {"GET": Kind.HISTORY_INSTANCE}, type_name, res_id)
    if len(parts) == 4 and parts[2] == "_history":
        return _allow(method, {"GET": Kind.VREAD}, type_name, res_id, _id(parts[3]))
    raise error(404, f"no FHIR interaction is served at '{path}'", "not-found")


def _operation(method: str, parts: list[str]) -> Interaction:
    if method not in ("GET", "POST"):
        raise _not_allowed(method, ["GET", "POST"])
    name = parts[-1][1:]
    if len(parts) == 1:
        return Interaction(Kind.OPERATION, operation=name)
    type_name = _type(parts[0])
    if len(parts) == 2:
        return Interaction(Kind.OPERATION, type_name, operation=name)
    if len(parts) == 3:
        return Interaction(Kind.OPERATION, type_name, _id(parts[1]), operation=name)
    raise error(404, f"no operation is served at '{'/'.join(parts)}'", "not-found")


def _type(name: str) -> str:
    if not structure().is_served(name):
        raise error(404, f"unknown resource type '{name}'", "not-supported")
    return name


def _id(value: str) -> str:
    if not RESOURCE_ID.match(value):
        raise invalid(f"'{value}' is not a valid resource id (1-64 of A-Z a-z 0-9 - .)")
    return value


def _allow(
    method: str,
    kinds: dict[str, Kind],
    type_name: str | None = None,
    res_id: str | None = None,
    version: str | None = None,
) -> Interaction:
    kind = kinds.get(method)
    if kind is None:
        raise _not_allowed(method, list(kinds))
    return Interaction(kind, type_name, res_id, version)


def _not_allowed(method: str, allowed: list[str]) -> FhirError:
    issue = Issue(f"method {method} is not allowed here; allowed: {', '.join(allowed)}", "not-supported")
    return FhirError(405, [issue], {"Allow": ", ".join(allowed)})
