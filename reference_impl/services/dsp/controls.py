"""The patient's controls over their shared care record (SPEC section 5), as FHIR resources.

How each control is expressed (the access rule, ``access.py``, reads them; the write checks below
keep them in the patient's hands):

- **Mask a document**: the patient updates the DocumentReference adding ``meta.security``
  ``http://terminology.hl7.org/CodeSystem/v3-Confidentiality|R`` (restricted); unmasking removes it.
  Professionals then neither find nor retrieve it (nor its Binary); its author (``author`` naming the
  professional's PractitionerRole or Practitioner) still does. A patient's update of a document may
  change its security labels only: the content is the professionals'.
- **Record consents**: a ``Consent`` of the patient (``patient``) with ``category``
  ``urn:oid:1.3.182.6.2|dsp-record`` and ``scope`` patient-privacy, written by the patient (or a
  system), never by a professional:
  - *block a professional*: ``status`` active, ``provision.type`` deny, ``provision.actor.reference``
    naming the PractitionerRole or Practitioner: that professional gets 403 (a Practitioner blocks
    each of their roles); deleting the Consent or making it inactive lifts the block;
  - *close the record*: a Consent without actor, ``status`` inactive: professionals get 403, the
    content is retained and the patient still reads it; reopening makes it active (or deletes it);
  - *opt out*: a Consent without actor, ``status`` active, ``provision.type`` deny: the patient
    refuses the record: professionals get 403 as on a closed record, and no professional adds a
    document to it;
  - *open* (the default, no such Consent, or one ``status`` active with ``provision.type`` permit).
- **Care relationships** (the professionals' side): a ``CareTeam`` with ``status`` active,
  ``subject`` the patient, ``participant.member`` the PractitionerRole or Practitioner, and
  ``category`` ``urn:oid:1.3.182.6.2|treating`` (declared by the professional, naming themselves,
  with a token of purpose TREAT; valid 6 months: ``period.end`` is set to ``period.start`` + 6 months
  when absent, and may not be later) or ``urn:oid:1.3.182.6.2|referent`` (the patient's designated
  referring doctor, named by the patient or a system; valid until ``period.end`` if any).
- **The access log**: ``GET AuditEvent?patient=<self>`` (SPEC section 2): every access, with who
  (``agent.who``), role (``agent.role``), when (``recorded``), what (``entity``) and purpose
  (``purposeOfEvent``); emergency accesses carry the break-the-glass label (``audit/access.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Connection

from reference_impl.auth.policy import forbidden
from reference_impl.fhir.dates import InvalidDate, format_instant, from_us, now_instant, parse_range
from reference_impl.fhir.errors import FhirError, Issue
from reference_impl.rest.handler import Context
from reference_impl.rest.routing import Kind
from reference_impl.services.dsp.demo import demo_documents
from reference_impl.store import resources as store
from reference_impl.store.driver import DriverStatement

CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
RESTRICTED = "R"
DSP_SYSTEM = "urn:oid:1.3.182.6.2"  # the DSP's codes for its consents and care relationships
RECORD_CONSENT = "dsp-record"
CONSENT_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
TREATING = "treating"
REFERENT = "referent"
RELATIONSHIP_MONTHS = 6
RELATIONSHIP_DAYS = 183  # six months, as a duration the period is checked against
PROFESSIONAL_TYPES = ("PractitionerRole", "Practitioner")

RecordState = Literal["open", "closed", "opted-out"]


def is_masked(document: dict[str, Any]) -> bool:
    labels = (document.get("meta") or {}).get("security") or []
    return any(label.get("system") == CONFIDENTIALITY and label.get("code") == RESTRICTED for label in labels)


def codes(resource: dict[str, Any], element: str = "category") -> set[str]:
    """The DSP codes among ``resource``'s categories."""
    return {
        coding.get("code")
        for concept in resource.get(element) or []
        for coding in concept.get("coding") or []
        if coding.get("system") == DSP_SYSTEM
    }


def referencing(conn: Connection, type_name: str, params: tuple[str, ...], patient_id: str) -> list[dict[str, Any]]:
    """The current ``type_name`` resources whose ``params`` reference ``Patient/<patient_id>``, found by the
    search index in the same query: every access of a professional to a record asks twice (consents, care
    relationships), on the driver (``DriverStatement``: SQLAlchemy, which expanded the list of parameters
    anew at every execution, made a lookup of an empty record 28-31 µs on SQLite and 296-318 µs on
    PostgreSQL; now 9-10 and 158-199 µs)."""
    found = REFERENCING.rows(conn, referencing_values(type_name, params, patient_id))
    return [s.parsed() for s in store.opened_rows(conn, found) if s.content]


REFERENCING = DriverStatement(
    "SELECT res_type, res_id, version_id, last_updated, deleted, content, sealed FROM resources"
    " WHERE res_type = ? AND deleted = ? AND res_id IN (SELECT res_id FROM idx_reference"
    " WHERE res_type = ? AND param IN (?, ?) AND target_type = 'Patient' AND target_id = ?) ORDER BY res_id"
)


def referencing_values(type_name: str, params: tuple[str, ...], patient_id: str) -> tuple[object, ...]:
    """``REFERENCING``'s parameters: ``params`` are one search parameter or two."""
    if not 1 <= len(params) <= 2:
        raise ValueError(f"one or two reference parameters, not {params}")
    return (type_name, False, type_name, params[0], params[-1], patient_id)


@dataclass(frozen=True)
class RecordConsents:
    """What the patient's record consents say: the record's state and the professionals blocked."""

    state: RecordState
    blocked: frozenset[str]  # "PractitionerRole/x" or "Practitioner/y"


def record_consents(conn: Connection, patient_id: str) -> RecordConsents:
    state: RecordState = "open"
    blocked: set[str] = set()
    for consent in referencing(conn, "Consent", ("patient",), patient_id):
        if RECORD_CONSENT not in codes(consent):
            continue
        provision = consent.get("provision") or {}
        actors = [a.get("reference", {}).get("reference") for a in provision.get("actor") or []]
        if actors:
            if consent.get("status") == "active" and provision.get("type") == "deny":
                blocked.update(a for a in actors if isinstance(a, str))
        elif consent.get("status") == "inactive":
            state = "closed"
        elif consent.get("status") == "active" and provision.get("type") == "deny" and state == "open":
            state = "opted-out"
    return RecordConsents(state, frozenset(blocked))


def period_bounds(resource: dict[str, Any]) -> tuple[int | None, int | None]:
    """(start, end) of ``resource.period`` in epoch microseconds (end exclusive); unparsable is open-ended."""
    period = resource.get("period") or {}

    def bound(name: str, low: bool) -> int | None:
        value = period.get(name)
        if not isinstance(value, str):
            return None
        try:
            start, end = parse_range(value)
        except InvalidDate:
            return None
        return start if low else end

    return bound("start", True), bound("end", False)


# --- write checks: the controls stay in the patient's hands ------------------------------------------


def check_document_write(ctx: Context, document: dict[str, Any]) -> None:
    """No professional adds to a record the patient opted out of; a patient may change a document's
    security labels (mask, unmask) and nothing else."""
    principal = ctx.access.principal
    if principal is None or principal.is_system:
        return
    if not principal.is_patient:
        patient = ((document.get("subject") or {}).get("reference") or "").removeprefix("Patient/")
        if patient and record_consents(ctx.conn, patient).state == "opted-out":
            raise forbidden("the patient opted out of the shared care record", "access_denied")
        return
    if ctx.interaction.kind is Kind.CREATE:
        return
    res_id = document.get("id")
    current = store.current(ctx.conn, "DocumentReference", res_id) if isinstance(res_id, str) else None
    if current is None or not current.content:
        return
    if _without_meta(current.parsed()) != _without_meta(document):
        raise FhirError(
            422,
            [
                Issue(
                    "a patient may mask or unmask a document (meta.security) and change nothing else of it",
                    "business-rule",
                    expression=("DocumentReference",),
                )
            ],
        )


def _without_meta(resource: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in resource.items() if k != "meta"}


def check_record_consent(ctx: Context, consent: dict[str, Any]) -> None:
    """Record consents are the patient's (or a system's): a professional cannot write one."""
    principal = ctx.access.principal
    if RECORD_CONSENT not in codes(consent) or principal is None or principal.is_patient or principal.is_system:
        return
    raise forbidden("only the patient decides who reads their shared care record", "access_denied")


def check_care_team(ctx: Context, team: dict[str, Any]) -> None:
    """A treating relationship is declared by the professional, for themselves, for TREAT, for at
    most six months; a referring doctor is designated by the patient (or a system)."""
    principal = ctx.access.principal
    kinds = codes(team)
    if principal is None or not kinds & {TREATING, REFERENT} or principal.is_system:
        return
    if REFERENT in kinds and not principal.is_patient:
        raise forbidden("the patient designates their referring doctor, not a professional", "access_denied")
    if TREATING not in kinds:
        return
    members = {(p.get("member") or {}).get("reference") for p in team.get("participant") or []}
    if principal.is_patient or principal.fhir_user not in members:
        raise forbidden("a professional declares a treating relationship naming themselves", "access_denied")
    if principal.purpose_of_use not in (None, "TREAT"):
        raise forbidden("a treating relationship is declared with a token of purpose TREAT", "access_denied")
    _bound_period(team)


def _bound_period(team: dict[str, Any]) -> None:
    _, now = now_instant()
    period = team.setdefault("period", {})
    period.setdefault("start", now)
    start, end = period_bounds(team)
    if start is None:
        raise FhirError(422, [Issue("period.start is not a date", "value", expression=("CareTeam.period.start",))])
    latest = from_us(start) + timedelta(days=RELATIONSHIP_DAYS)
    if end is None:
        period["end"] = format_instant(latest)
    elif from_us(end) > latest + timedelta(days=1):
        raise FhirError(
            422,
            [
                Issue(
                    f"a treating relationship lasts at most {RELATIONSHIP_MONTHS} months from period.start",
                    "business-rule",
                    expression=("CareTeam.period.end",),
                )
            ],
        )


# --- demo: the DSP's demo documents with care relationships and the patients' controls ------------

DEMO_TREATED = ("pat-0005", "pat-0006", "pat-0007")  # doctor1's patients (not the plans' users)
DEMO_DOCTOR = "PractitionerRole/role-001"  # the demo user doctor1
DEMO_REFERENT = ("pat-0005", "Practitioner/prac-002")  # the patient's referring doctor: doctor2
DEMO_MASKED = ("doc-0027", "doc-0048")  # doc-0048 is doctor1's own: still visible to them
DEMO_CLOSED = "pat-0006"


def demo_record() -> list[dict[str, Any]]:
    """The DSP's demo documents (``demo.py``) with some masked, plus doctor1's care relationships (six
    months from the day the demo is built), a referring doctor, and one closed record."""
    today = datetime.now(UTC).date()
    period = {"start": today.isoformat(), "end": (today + timedelta(days=RELATIONSHIP_DAYS - 3)).isoformat()}
    masked = [
        {**r, "meta": {"security": [{"system": CONFIDENTIALITY, "code": RESTRICTED}]}} if r["id"] in DEMO_MASKED else r
        for r in demo_documents()
    ]
    teams = [_demo_team(f"care-{patient}-role-001", patient, DEMO_DOCTOR, TREATING, period) for patient in DEMO_TREATED]
    patient, referent = DEMO_REFERENT
    teams.append(_demo_team(f"referent-{patient}", patient, referent, REFERENT, {"start": today.isoformat()}))
    closed = {
        "resourceType": "Consent",
        "id": f"dsp-closed-{DEMO_CLOSED}",
        "status": "inactive",
        "scope": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]
        },
        "category": [{"coding": [{"system": DSP_SYSTEM, "code": RECORD_CONSENT}]}],
        "patient": {"reference": f"Patient/{DEMO_CLOSED}"},
        "provision": {"type": "permit"},
    }
    return [*masked, *teams, closed]


def _demo_team(res_id: str, patient: str, member: str, kind: str, period: dict[str, str]) -> dict[str, Any]:
    return {
        "resourceType": "CareTeam",
        "id": res_id,
        "status": "active",
        "category": [{"coding": [{"system": DSP_SYSTEM, "code": kind}]}],
        "subject": {"reference": f"Patient/{patient}"},
        "participant": [{"member": {"reference": member}}],
        "period": period,
    }
