"""What a handler gets (a Context) and gives back (a FhirResponse), and the hooks it calls on writes.

A handler sees the request, its interaction, the transaction's connection, the caller's access, and
the few parts of the platform it uses (settings, search parameters, access policy, fault switches,
the services' write hooks and operations): never the server itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Connection

from reference_impl.auth.policy import Access, AccessPolicy
from reference_impl.faults import FaultSwitches
from reference_impl.fhir.query import QueryParser
from reference_impl.fhir.searchparams import SearchParamRegistry
from reference_impl.rest.routing import FhirRequest, Interaction
from reference_impl.settings import Settings
from reference_impl.store.resources import StoredResource


@dataclass
class FhirResponse:
    status: int
    body: dict[str, Any] | bytes | None = None  # bytes: JSON already serialised
    headers: dict[str, str] = field(default_factory=dict)
    stored: StoredResource | None = None  # the resource version this response is about
    raw_media_type: str | None = None  # set when ``body`` is raw (non-FHIR) content, e.g. a Binary
    # The resource versions the access touched, for its audit, when ``stored`` alone does not say:
    # a search's, a history's or an operation's, a change's version replaced, a delete's version deleted.
    touched: tuple[StoredResource, ...] = ()

    def json_bytes(self) -> bytes:
        if self.body is None:
            return b""
        return self.body if isinstance(self.body, bytes) else orjson.dumps(self.body)


@dataclass
class Context:
    request: FhirRequest
    interaction: Interaction
    conn: Connection
    access: Access
    settings: Settings
    registry: SearchParamRegistry
    policy: AccessPolicy
    faults: FaultSwitches
    writes: WriteHooks
    operations: Mapping[tuple[str | None, bool, str], Operation]

    @property
    def type_name(self) -> str:
        assert self.interaction.type_name is not None
        return self.interaction.type_name

    @property
    def res_id(self) -> str:
        assert self.interaction.res_id is not None
        return self.interaction.res_id

    def url(self, *parts: str) -> str:
        return "/".join([self.request.base_url.rstrip("/"), *parts])

    def parser(self) -> QueryParser:
        s = self.settings
        return QueryParser(self.registry, s.default_page_size, s.max_page_size, self.request.base_url)


Handler = Callable[[Context], FhirResponse]
# Before a create, update or patch is stored: raise a FhirError (422, with the element's expression) to refuse it;
# it may also add to the resource what the platform assigns (e.g. the patient index's platform id).
WriteCheck = Callable[[Context, dict[str, Any]], None]
# After a version is stored (a deletion too: ``stored.deleted``), in the same transaction.
AfterWrite = Callable[[Context, StoredResource], None]


@dataclass
class WriteHooks:
    """The services' business rules on writes, per resource type; every write calls them, by HTTP or in a Bundle."""

    checks: dict[str, list[WriteCheck]] = field(default_factory=dict)
    followers: dict[str, list[AfterWrite]] = field(default_factory=dict)

    def add(self, type_name: str, check: WriteCheck | None = None, after: AfterWrite | None = None) -> None:
        if check is not None:
            self.checks.setdefault(type_name, []).append(check)
        if after is not None:
            self.followers.setdefault(type_name, []).append(after)

    def before_write(self, ctx: Context, resource: dict[str, Any]) -> None:
        for check in self.checks.get(str(resource.get("resourceType")), ()):
            check(ctx, resource)

    def after_write(self, ctx: Context, stored: StoredResource) -> None:
        for follow in self.followers.get(stored.type_name, ()):
            follow(ctx, stored)


@dataclass(frozen=True)
class Operation:
    """A FHIR operation ($name) at system, type or instance level."""

    name: str
    handler: Handler
    type_name: str | None = None  # None: system level
    instance: bool = False
    writes: bool = False
    definition: str = ""  # canonical URL of its OperationDefinition

    @property
    def key(self) -> tuple[str | None, bool, str]:
        return (self.type_name, self.instance, self.name)
