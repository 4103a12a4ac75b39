"""The FHIR request pipeline: route, authenticate, decide, run the handler, audit; one transaction.

``FhirServer.handle`` is the single entry for HTTP requests and for batch entries;
``FhirServer.execute`` runs one interaction inside a given transaction (a transaction Bundle runs
all its entries through it on one connection). Authorization and audit attach here, never to
individual handlers: every interaction is decided by the access policy, and every access to
patient data adds an audit record. A change's records are written in the same transaction as the
change; a read's are committed by the audit log's group commit (``audit/group_commit.py``) before
its answer leaves. A refused or failed attempt is audited in a transaction of its own (the
attempt's own changes, if any, are rolled back; its audit event is not).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import TypeVar

from sqlalchemy import Connection

from reference_impl.audit import balp as audit
from reference_impl.audit.access import (
    Attempt,
    CompartmentMemory,
    failure_record,
    naming_its_patients,
    success_records,
)
from reference_impl.audit.balp import AuditRecord
from reference_impl.audit.group_commit import AuditLog
from reference_impl.auth import bearer
from reference_impl.auth.policy import AccessPolicy
from reference_impl.auth.service import AuthService
from reference_impl.faults import FaultSwitches, declare
from reference_impl.fhir.errors import FhirError, error
from reference_impl.fhir.searchparams import registry
from reference_impl.rest import bundles, capability, crud, searching
from reference_impl.rest.handler import Context, FhirResponse, Handler, Operation, WriteHooks
from reference_impl.rest.routing import FhirRequest, Interaction, Kind, route
from reference_impl.settings import Settings
from reference_impl.store.database import Database

T = TypeVar("T")
CONTENT_READS_NOT_AUDITED = declare(
    "content-reads-not-audited",
    "a read of a document's content (Binary, whose patient only its document names) writes no AuditEvent",
    ("dsp@47",),
)


class FhirServer:
    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.faults = FaultSwitches(settings.faults)
        self.db = db
        self.registry = registry()
        self.auth = AuthService.from_settings(settings)
        self.auth.watch_revocations(db)
        self.policy = AccessPolicy(self.registry, faults=self.faults)
        self.operations: dict[tuple[str | None, bool, str], Operation] = {}
        self.writes = WriteHooks()
        self.audit_log = AuditLog(db, self.registry)
        self.compartments = CompartmentMemory(self.registry)
        self.handlers: dict[Kind, Handler] = {
            Kind.READ: crud.read,
            Kind.VREAD: crud.vread,
            Kind.CREATE: crud.create,
            Kind.UPDATE: crud.update,
            Kind.PATCH: crud.patch,
            Kind.DELETE: crud.delete,
            Kind.SEARCH_TYPE: searching.search,
            Kind.SEARCH_SYSTEM: searching.search,
            Kind.HISTORY_INSTANCE: searching.history,
            Kind.HISTORY_TYPE: searching.history,
            Kind.HISTORY_SYSTEM: searching.history,
            Kind.CAPABILITIES: capability.capabilities,
            Kind.OPERATION: self._operation,
        }

    def add_operation(self, operation: Operation) -> None:
        if operation.key in self.operations:
            raise ValueError(f"operation ${operation.name} is installed twice on {operation.type_name or 'the system'}")
        self.operations[operation.key] = operation

    def _find_operation(self, interaction: Interaction) -> Operation:
        key = (interaction.type_name, interaction.res_id is not None, interaction.operation or "")
        found = self.operations.get(key)
        if found is None:
            raise error(404, f"operation ${interaction.operation} is not supported here", "not-supported")
        return found

    def writes_data(self, interaction: Interaction) -> bool:
        if interaction.kind is Kind.OPERATION:
            return self._find_operation(interaction).writes
        return interaction.writes

    async def handle(self, request: FhirRequest) -> FhirResponse:
        interaction: Interaction | None = None
        try:
            interaction = route(request.method, request.path)
            if interaction.kind is Kind.BATCH:  # its entries are sub-requests of this caller: known first
                request = await self.db.run_async(lambda conn: self._authenticated(conn, request), write=False)
        except FhirError as exc:
            await self._audit_failure(request, interaction, exc, [])
            raise
        if interaction.kind is Kind.BATCH:
            return await bundles.process(self, request)
        found = interaction
        return await self.run_audited(
            request,
            found,
            lambda conn, caller, trail: self.execute(conn, caller, found, trail),
            self.writes_data(found),
        )

    def _authenticated(self, conn: Connection, request: FhirRequest) -> FhirRequest:
        """``request`` with the principal its bearer token names (as it is when that is known already)."""
        if request.principal is not None:
            return request
        principal = bearer.authenticate(self.auth, self.faults, conn, request.header("authorization"), request.base_url)
        return replace(request, principal=principal)

    async def run_audited(
        self,
        request: FhirRequest,
        interaction: Interaction,
        work: Callable[[Connection, FhirRequest, list[AuditRecord]], T],
        write: bool,
        long: bool = False,
    ) -> T:
        """Authenticate the caller, run ``work`` for them and write the audit records it collects: a
        change's in its own transaction, a read's by group commit before returning (a refusal is
        audited in a transaction of its own, as the work's is rolled back)."""
        trail: list[AuditRecord] = []
        caller = request

        def unit(conn: Connection) -> T:
            nonlocal caller
            trail.clear()  # a retried unit starts its trail again
            caller = self._authenticated(conn, request)
            result = work(conn, caller, trail)
            if write:
                audit.write_all(conn, self.registry, trail)
            return result

        try:
            result = await self.db.run_async(unit, write, long)
        except FhirError as exc:
            await self._audit_failure(caller, interaction, exc, trail)
            raise
        if not write:
            await self.audit_log.record(trail)
        return result

    async def _audit_failure(
        self, request: FhirRequest, interaction: Interaction | None, exc: FhirError, trail: list[AuditRecord]
    ) -> None:
        reasons = "; ".join(issue.diagnostics for issue in exc.issues)
        record = failure_record(attempt(request, interaction), exc.status, reasons, self.faults)
        if record is None:
            return

        def unit(conn: Connection) -> None:
            audit.write(conn, self.registry, naming_its_patients(conn, record))

        await self.db.run_async(unit, write=True)

    def context(self, conn: Connection, request: FhirRequest, interaction: Interaction) -> Context:
        """What a handler of ``interaction`` gets: the caller's access as the policy decides it (or a refusal)."""
        access = self.policy.decide(request.principal, str(interaction.kind), interaction.type_name, conn=conn)
        return Context(
            request,
            interaction,
            conn,
            access,
            self.settings,
            self.registry,
            self.policy,
            self.faults,
            self.writes,
            self.operations,
        )

    def execute(
        self, conn: Connection, request: FhirRequest, interaction: Interaction, trail: list[AuditRecord] | None = None
    ) -> FhirResponse:
        response = self.handlers[interaction.kind](self.context(conn, request, interaction))
        if trail is not None and response.status < 400:
            touched = response.touched or ((response.stored,) if response.stored else ())
            access = attempt(request, interaction)
            owners = {} if self.faults.on(CONTENT_READS_NOT_AUDITED) else self.policy.owners
            owned = {type_name: partial(patients, conn) for type_name, patients in owners.items()}
            trail += success_records(self.compartments, access, response.status, touched, self.faults, owned)
        return response

    def _operation(self, ctx: Context) -> FhirResponse:
        return self._find_operation(ctx.interaction).handler(ctx)


def attempt(request: FhirRequest, interaction: Interaction | None) -> Attempt:
    """The interaction as the audit sees it."""
    return Attempt(
        request.method,
        request.path,
        str(interaction.kind) if interaction else None,
        interaction.type_name if interaction else None,
        interaction.res_id if interaction else None,
        request.query,
        request.principal,
        request.client_address,
        request.request_id,
    )
