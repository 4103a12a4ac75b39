"""What a handler gets (a Context) and gives back (a FhirResponse)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import Connection

from reference_impl.audit import AuditRecord
from reference_impl.auth.policy import Access
from reference_impl.fhir.query import QueryParser
from reference_impl.fhir.routing import FhirRequest, Interaction
from reference_impl.store.resources import StoredResource

if TYPE_CHECKING:
    from reference_impl.fhir.server import FhirServer


@dataclass
class FhirResponse:
    status: int
    body: dict[str, Any] | bytes | None = None  # bytes: JSON already serialised
    headers: dict[str, str] = field(default_factory=dict)
    stored: StoredResource | None = None  # the resource version this response is about
    raw_media_type: str | None = None  # set when ``body`` is raw (non-FHIR) content, e.g. a Binary
    touched: tuple[tuple[str, str], ...] = ()  # (type, id) of the resources a search or history returned

    def json_bytes(self) -> bytes:
        if self.body is None:
            return b""
        return self.body if isinstance(self.body, bytes) else orjson.dumps(self.body)


@dataclass
class Context:
    server: FhirServer
    request: FhirRequest
    interaction: Interaction
    conn: Connection
    access: Access = field(default_factory=lambda: Access(None))
    trail: list[AuditRecord] = field(default_factory=list)  # accesses to audit when the unit commits

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
        s = self.server.settings
        return QueryParser(self.server.registry, s.default_page_size, s.max_page_size, self.request.base_url)


Handler = Callable[[Context], FhirResponse]


@dataclass(frozen=True)
class Operation:
    """A FHIR operation ($name) at system, type or instance level."""

    name: str
    handler: Handler
    type_name: str | None = None  # None: system level
    instance: bool = False
    writes: bool = False
    definition: str = ""  # canonical URL of its OperationDefinition
