"""Who reads the shared care record (SPEC section 5): the DSP's rule in the one access policy.

It governs the record's documents only: DocumentReferences, the Binaries they point to, and the
SubmissionSet Lists (other patient data keeps the platform's rules). Asked for every read, include,
history and search (before it runs, and for each match), it lets through:

- systems, and the patient (whose token the platform already limits to their own compartment);
- a professional (a user token whose ``fhirUser`` is a PractitionerRole or Practitioner) on a record
  that is open (``controls.py``: not closed, not opted out), who is not blocked by the patient, and who
  has an active care relationship with the patient (a treating or referent CareTeam naming them, in its
  period) or whose token's purpose of use is EMERGENCY (allowed, and flagged in the audit:
  ``audit/access.py``);
- of a masked document (and its Binary), only its author among professionals.

A professional's search must name the patient (``patient=`` or ``subject=``): it is refused before it
runs unless the professional may read that patient's record, so "no relationship" and "no such
patient" are the same 403. Everyone else (a user token naming no professional) gets that 403 too.
"""

from __future__ import annotations

import weakref
from typing import Any

from sqlalchemy import Connection, RootTransaction, and_, select

from reference_impl.auth.policy import NOT_PERMITTED, Question, forbidden
from reference_impl.auth.principal import Principal
from reference_impl.faults import FaultSwitches, declare
from reference_impl.fhir.dates import now_instant
from reference_impl.fhir.errors import FhirError
from reference_impl.fhir.query import Criterion
from reference_impl.rest.handler import Context
from reference_impl.services.dsp import controls
from reference_impl.store import resources as store
from reference_impl.store.resources import StoredResource
from reference_impl.store.schema import URI_REVERSED, idx_uri

STRANGERS_CHANGE_DOCUMENTS = declare(
    "strangers-change-documents",
    "any professional may update, patch or delete a document, care relationship or not; patients may delete them",
    ("dsp@46",),
)
MASKED_VISIBLE = declare(
    "masked-visible-to-professionals",
    "a document the patient masked is still found and retrieved by the professionals treating them",
    ("dsp@33",),
)
AUTHOR_CANNOT_SEE_MASKED = declare(
    "author-cannot-see-masked", "a masked document is hidden from its own author too", ("dsp@34",)
)
BLOCKED_PROFESSIONAL_READS = declare(
    "blocked-professional-reads", "a professional the patient blocked still reads the record", ("dsp@36",)
)
CLOSED_RECORD_READABLE = declare(
    "closed-record-readable",
    "a record the patient closed is still read by the professionals treating them",
    ("dsp@38",),
)
EXPIRED_CARE_RELATIONSHIP_HONOURED = declare(
    "expired-care-relationship-honoured",
    "a care relationship past its period (six months) still opens the record",
    ("dsp@31",),
)

RECORD_TYPES = frozenset({"DocumentReference", "List", "Binary"})
READS = frozenset({"read", "vread", "search-type", "history-instance"})
# Changing a document is reading it first: the same care relationship, for the document as it is and as sent.
CHANGES = frozenset({"update", "patch", "delete"})
PATIENT_PARAMS = ("patient", "subject")
NO_RELATIONSHIP = "no care relationship with this patient lets you read their shared care record"


def dsp_access(asked: Question) -> None:
    """The access rule (``Service.access_rules``): raises a 403 to refuse."""
    principal = asked.principal
    if asked.type_name not in RECORD_TYPES or principal.is_system:
        return
    if asked.kind in CHANGES and asked.faults.on(STRANGERS_CHANGE_DOCUMENTS):
        return
    if principal.is_patient:
        if asked.kind == "delete":  # the record keeps what professionals wrote: the patient masks it instead
            raise forbidden("a patient masks a document of the shared care record (meta.security R), never deletes it")
        return
    if asked.kind not in READS | CHANGES:
        return
    if not _is_professional(principal) or asked.conn is None:
        raise forbidden(NOT_PERMITTED, "access_denied")
    if asked.search is not None:
        for searched in _searched_patients(asked):
            _may_read_record(asked.conn, principal, searched, asked.faults)
        return
    if asked.resource is None:
        return  # nothing there: the read answers 404 whoever asks
    document = _governing_document(asked.conn, asked.resource)
    patient_id = _patient_of(document) if document else None
    if document is None or patient_id is None:
        raise forbidden(NOT_PERMITTED, "access_denied")
    _may_read_record(asked.conn, principal, patient_id, asked.faults)
    if document.get("resourceType") == "DocumentReference" and controls.is_masked(document):
        _may_read_masked(asked.conn, principal, document, asked.faults)


def _is_professional(principal: Principal) -> bool:
    return (principal.fhir_user or "").split("/", 1)[0] in controls.PROFESSIONAL_TYPES


def _searched_patients(asked: Question) -> set[str]:
    """The patient ids a professional's search names; none named is refused (no browsing of records)."""
    assert asked.search is not None
    named: set[str] = set()
    for criterion in asked.search.criteria:
        if isinstance(criterion, Criterion) and criterion.param.code in PATIENT_PARAMS and _plain(criterion):
            named.update(v.code for v in criterion.values if v.ref_type in (None, "Patient") and v.code)
    if not named:
        raise forbidden("a professional's search of the shared care record names the patient (patient=)")
    return named


def _plain(criterion: Criterion) -> bool:
    """A reference criterion naming patients by id (no chain, no :identifier or :missing)."""
    return criterion.modifier is None and not criterion.chains and criterion.missing is None


# Decisions on whole records within one transaction: a search judges each matching document, and a
# patient's documents share one decision (measured: 3+ queries per document before).
_DECIDED: weakref.WeakKeyDictionary[RootTransaction, dict[tuple[str, str], FhirError | None]] = (
    weakref.WeakKeyDictionary()
)


def _may_read_record(conn: Connection, principal: Principal, patient_id: str, faults: FaultSwitches) -> None:
    transaction = conn.get_transaction()
    if transaction is None:
        _decide_record(conn, principal, patient_id, faults)
        return
    decided = _DECIDED.setdefault(transaction, {})
    key = (principal.jti, patient_id)
    if key not in decided:
        try:
            _decide_record(conn, principal, patient_id, faults)
            decided[key] = None
        except FhirError as refused:
            decided[key] = refused
    refusal = decided[key]
    if refusal is not None:
        raise refusal


def forget_record_decisions(ctx: Context, _stored: StoredResource) -> None:
    """After a Consent or a CareTeam is written: the transaction's decisions on records may have changed."""
    transaction = ctx.conn.get_transaction()
    if transaction is not None:
        _DECIDED.pop(transaction, None)


def _decide_record(conn: Connection, principal: Principal, patient_id: str, faults: FaultSwitches) -> None:
    consents = controls.record_consents(conn, patient_id)
    if consents.state != "open" and not faults.on(CLOSED_RECORD_READABLE):
        raise forbidden(NOT_PERMITTED, "access_denied")
    identities = _identities(conn, principal)
    if identities & consents.blocked and not faults.on(BLOCKED_PROFESSIONAL_READS):
        raise forbidden(NOT_PERMITTED, "access_denied")
    if principal.purpose_of_use == "EMERGENCY":
        return  # break the glass: allowed, flagged in the audit
    if not _has_care_relationship(conn, identities, patient_id, faults):
        raise forbidden(NO_RELATIONSHIP, "access_denied")


def _identities(conn: Connection, principal: Principal) -> set[str]:
    """The references naming the professional: their ``fhirUser``, and a role's Practitioner."""
    fhir_user = principal.fhir_user or ""
    found = {fhir_user}
    type_name, _, res_id = fhir_user.partition("/")
    if type_name == "PractitionerRole":
        role = store.current(conn, type_name, res_id)
        practitioner = (role.parsed().get("practitioner") or {}).get("reference") if role and role.content else None
        if isinstance(practitioner, str):
            found.add(practitioner)
    return found


def _has_care_relationship(conn: Connection, identities: set[str], patient_id: str, faults: FaultSwitches) -> bool:
    now, _ = now_instant()
    for team in controls.referencing(conn, "CareTeam", ("subject", "patient"), patient_id):
        if team.get("status") != "active" or not controls.codes(team) & {controls.TREATING, controls.REFERENT}:
            continue
        members = {(p.get("member") or {}).get("reference") for p in team.get("participant") or []}
        if not members & identities:
            continue
        start, end = controls.period_bounds(team)
        started = start is None or start <= now
        ongoing = end is None or now < end or faults.on(EXPIRED_CARE_RELATIONSHIP_HONOURED)
        if started and ongoing:
            return True
    return False


def _governing_document(conn: Connection, resource: dict[str, Any]) -> dict[str, Any] | None:
    """The resource whose patient and mask decide: itself, or for a Binary the document pointing to it."""
    if resource.get("resourceType") != "Binary":
        return resource
    res_id = resource.get("id")
    if not isinstance(res_id, str):
        return None
    # A document names its Binary by its attachment URL, its ``location`` parameter, which the index holds
    # as written: relative (as a transaction rewrites it), found by equality; absolute, by its ending, on
    # the index too (never the documents' JSON, which could mention the Binary anywhere): on PostgreSQL a
    # range of the reversed URLs (``schema.URI_REVERSED``), on SQLite a scan of the documents' URLs.
    # Candidates are checked here: SQLite's LIKE ignores case, URLs do not.
    relative = f"Binary/{res_id}"
    located = (idx_uri.c.res_type == "DocumentReference", idx_uri.c.param == "location")
    by_relative = select(idx_uri.c.res_id, idx_uri.c.value).where(*located, idx_uri.c.value == relative)
    ending = f"/{relative}"
    if conn.dialect.name == "postgresql":
        reversed_ending = ending[::-1]  # ends with "/": the URLs so reversed sort before it with "0" instead
        ends_with = and_(URI_REVERSED >= reversed_ending, URI_REVERSED < reversed_ending[:-1] + "0")  # noqa: SIM300
    else:
        ends_with = idx_uri.c.value.endswith(ending, autoescape=True)
    by_absolute = select(idx_uri.c.res_id, idx_uri.c.value).where(*located, ends_with)
    for query in (by_relative, by_absolute):
        for document_id, url in conn.execute(query):
            if url != relative and not (url.endswith(f"/{relative}") and "://" in url):
                continue
            stored = store.current(conn, "DocumentReference", document_id)
            if stored and stored.content:
                return stored.parsed()
    return None


def binary_owners(conn: Connection, binary: dict[str, Any]) -> set[str]:
    """The patient whose document points to this Binary (``AccessPolicy.owners``: the patient retrieves it)."""
    document = _governing_document(conn, binary)
    patient_id = _patient_of(document) if document else None
    return {f"Patient/{patient_id}"} if patient_id else set()


def _patient_of(resource: dict[str, Any]) -> str | None:
    reference = (resource.get("subject") or {}).get("reference")
    if isinstance(reference, str) and reference.startswith("Patient/"):
        return reference.removeprefix("Patient/")
    return None


def _may_read_masked(conn: Connection, principal: Principal, document: dict[str, Any], faults: FaultSwitches) -> None:
    if faults.on(MASKED_VISIBLE):
        return
    authors = {a.get("reference") for a in document.get("author") or []}
    if authors & _identities(conn, principal) and not faults.on(AUTHOR_CANNOT_SEE_MASKED):
        return
    raise forbidden(NOT_PERMITTED, "access_denied")
