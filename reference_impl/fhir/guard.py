"""Who is asking, and what to write in the audit trail about it.

Authentication turns the bearer token into a Principal (or a 401). Audit records describe each
access to patient data, and each refused or failed attempt: the access policy itself lives in
``auth/policy.py``; the pipeline that calls both is ``FhirServer`` (``server.py``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from sqlalchemy import Connection, select

from reference_impl.audit import FAILED, REFUSED, SUCCESS, Action, AuditRecord
from reference_impl.auth.policy import patient_compartment, unauthenticated
from reference_impl.auth.principal import Principal
from reference_impl.auth.tokens import TokenInvalid
from reference_impl.fhir.context import FhirResponse
from reference_impl.fhir.errors import FhirError, Issue
from reference_impl.fhir.routing import FhirRequest, Interaction, Kind
from reference_impl.store.schema import idx_reference

if TYPE_CHECKING:
    from reference_impl.fhir.server import FhirServer

ACTIONS: dict[Kind, Action] = {
    Kind.CREATE: "C",
    Kind.UPDATE: "U",
    Kind.PATCH: "U",
    Kind.DELETE: "D",
    Kind.READ: "R",
    Kind.VREAD: "R",
    Kind.HISTORY_INSTANCE: "R",
}
MAX_ENTITIES = 50  # resources named in one AuditEvent; a search's query entity says what was asked
SEARCHES = frozenset({Kind.SEARCH_TYPE, Kind.SEARCH_SYSTEM, Kind.HISTORY_TYPE, Kind.HISTORY_SYSTEM})


def bearer_token(request: FhirRequest) -> str | None:
    header = request.header("authorization")
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthenticated("the Authorization header must be 'Bearer <access token>'")
    return token.strip()


def authenticate(server: FhirServer, conn: Connection, request: FhirRequest) -> Principal | None:
    token = bearer_token(request)
    if token is None:
        return None
    try:
        return server.auth.authenticate(conn, token, request.base_url)
    except TokenInvalid as exc:
        if server.faults.on("challenge-echoes-token"):
            challenge = f'Bearer error="invalid_token", error_description="{exc.reason}"'
            raise FhirError(401, [Issue(exc.reason, "login")], {"WWW-Authenticate": challenge}) from None
        raise unauthenticated(exc.reason) from None


def touches_patient_data(interaction: Interaction, request: FhirRequest | None = None) -> bool:
    """Whether the interaction may reach patient data (and so must be audited); a search of other
    data may too, through what it includes (``_include``, ``_revinclude``, or a POST form's)."""
    if interaction.kind is Kind.CAPABILITIES:
        return False
    type_name = interaction.type_name
    if type_name is None or type_name == "Patient" or type_name in patient_compartment():
        return True
    if request is None or interaction.kind is not Kind.SEARCH_TYPE:
        return False
    return request.method == "POST" or any(k in ("_include", "_revinclude") for k, _ in request.query)


def success_records(
    conn: Connection, request: FhirRequest, interaction: Interaction, response: FhirResponse, per_patient: bool = True
) -> list[AuditRecord]:
    """The AuditEvents of a successful access: one per patient whose data it touched (IHE BALP), each
    naming that patient and that patient's resources only, so each lands in that patient's log alone;
    one naming no patient when it touched none. ``per_patient`` False is the fault "audit-per-search"."""
    stored = response.stored
    touched = response.touched or (((stored.type_name, stored.id),) if stored else ())
    owners = patients_by_resource(conn, touched)
    patients = sorted({p for found in owners.values() for p in found})
    kind = interaction.kind
    record = AuditRecord(
        action=ACTIONS.get(kind, "E"),
        subtype=str(kind),
        outcome=SUCCESS,
        description=f"{request.method} {interaction_path(request)} -> {response.status}",
        principal=request.principal,
        query=urlencode(list(request.query)) if kind in SEARCHES else None,
        network_address=request.client_address,
        request_id=request.request_id,
    )

    def entities(keys: list[tuple[str, str]]) -> tuple[str, ...]:
        return tuple(f"{t}/{i}" for t, i in keys if t != "Patient")[:MAX_ENTITIES]

    if not patients:
        return [replace(record, entities=entities(list(touched)))]
    if not per_patient:
        return [replace(record, patients=tuple(patients), entities=entities(list(touched)))]
    return [
        replace(record, patients=(patient,), entities=entities([k for k in touched if patient in owners.get(k, ())]))
        for patient in patients
    ]


def failure_record(request: FhirRequest, interaction: Interaction | None, exc: FhirError) -> AuditRecord:
    kind = interaction.kind if interaction else None
    target = (
        [f"{interaction.type_name}/{interaction.res_id}"]
        if interaction and interaction.type_name and interaction.res_id
        else []
    )
    patients = tuple(r for r in target if r.startswith("Patient/"))
    reasons = "; ".join(issue.diagnostics for issue in exc.issues)
    return AuditRecord(
        action=ACTIONS.get(kind, "E") if kind else "E",
        subtype=str(kind or "unknown"),
        outcome=REFUSED if exc.status < 500 else FAILED,
        description=f"{request.method} {interaction_path(request)} -> {exc.status}: {reasons}",
        principal=request.principal,
        patients=patients,
        entities=tuple(r for r in target if r not in patients),
        query=urlencode(list(request.query)) if request.query else None,
        network_address=request.client_address,
        request_id=request.request_id,
    )


def should_audit_failure(interaction: Interaction | None, exc: FhirError) -> bool:
    return exc.status in (401, 403) or (interaction is not None and touches_patient_data(interaction))


def interaction_path(request: FhirRequest) -> str:
    return "/" + request.path if request.path else "/"


def patients_by_resource(conn: Connection, touched: tuple[tuple[str, str], ...]) -> dict[tuple[str, str], set[str]]:
    """For each touched resource, the patients whose compartment holds it (from the search index)."""
    owners: dict[tuple[str, str], set[str]] = {}
    compartment = patient_compartment()
    by_type: dict[str, list[str]] = {}
    for type_name, res_id in touched:
        if type_name == "Patient":  # a Patient record is about that patient
            owners.setdefault((type_name, res_id), set()).add(f"Patient/{res_id}")
        elif type_name in compartment:
            by_type.setdefault(type_name, []).append(res_id)
    ref = idx_reference.c
    for type_name, ids in by_type.items():
        query = select(ref.res_id, ref.target_id).where(
            ref.res_type == type_name,
            ref.res_id.in_(ids),
            ref.param.in_(compartment[type_name]),
            ref.target_type == "Patient",
        )
        for res_id, patient_id in conn.execute(query):
            if patient_id:
                owners.setdefault((type_name, res_id), set()).add(f"Patient/{patient_id}")
    return owners
