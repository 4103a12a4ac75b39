"""The DSP's rules on a provided document descriptor (SPEC section 5, IHE MHD ITI-65).

A provide is a transaction Bundle (SubmissionSet ``List``, ``DocumentReference``s, ``Binary``s) and
therefore atomic like any transaction: these checks run on every DocumentReference the Bundle (or a
single request) writes, and a refusal of one rolls back all of it.

- The subject is an active Patient of the patient index: a ``Patient/<id>`` reference, or the person's
  platform id or matricule as ``subject.identifier``, which is resolved here to the Patient reference
  before the document is stored, so that finding by ``patient=`` (and every access rule keyed on the
  patient) sees it.
- Each content's attachment says its media type and where the bytes are: a Binary of this platform
  (``Binary/<id>``, as the transaction rewrites the Binary's ``urn:uuid:`` full URL) or inline data.
  Only the form of the URL is checked: a Bundle may list the Binary after the document that points to
  it, so it need not be stored yet when the document is.
- A document enters the record as ``current``: superseding is what a replacement does (``replace.py``).
"""

from __future__ import annotations

import re
from typing import Any

from reference_impl.faults import declare
from reference_impl.fhir.errors import FhirError, Issue
from reference_impl.naming import NATIONAL_ID, PLATFORM_ID
from reference_impl.rest.handler import Context
from reference_impl.rest.routing import Kind
from reference_impl.services.dsp.refusal import refused
from reference_impl.store import resources as store
from reference_impl.store.resources import StoredResource
from reference_impl.store.search_run import run_search

SUBJECT_UNRESOLVED = declare(
    "provide-subject-unresolved",
    "a document whose subject is a patient identifier is stored with that identifier only, never resolved "
    "to the Patient: finding by patient misses it",
    ("dsp@6",),
)
PERSON_SYSTEMS = (PLATFORM_ID, NATIONAL_ID)
MAX_RECORDS = 50  # Patient records of one person looked at (one per institution: a handful)
_LOCAL_REFERENCE = re.compile(r"^Patient/([A-Za-z0-9\-.]{1,64})$")
_BINARY_ID = r"[A-Za-z0-9\-.]{1,64}"


def is_provided(ctx: Context, document: dict[str, Any]) -> bool:
    """Whether this write brings a new document into the record (a create, or an update of nothing)."""
    if ctx.interaction.kind is Kind.CREATE:
        return True
    res_id = document.get("id") or ctx.interaction.res_id or ctx.request.assigned_id
    current = store.current(ctx.conn, "DocumentReference", res_id) if isinstance(res_id, str) else None
    return current is None or current.deleted


def check_descriptor(ctx: Context, document: dict[str, Any]) -> None:
    """The subject resolved to an active Patient, usable attachments, and ``current`` on provide."""
    issues = [*_attachment_issues(ctx, document)]
    if is_provided(ctx, document) and document.get("status") != "current":
        issues.append(
            Issue(
                f"a document is provided with status current, not {document.get('status')!r}",
                "business-rule",
                expression=("DocumentReference.status",),
            )
        )
    if issues:
        raise FhirError(422, issues)
    document["subject"] = resolved_subject(ctx, document.get("subject"))


def resolved_subject(ctx: Context, subject: Any) -> dict[str, Any]:
    """``subject`` as a reference to an active Patient (an identifier subject keeps its identifier)."""
    where = ("DocumentReference.subject",)
    if not isinstance(subject, dict) or not (subject.get("reference") or subject.get("identifier")):
        raise refused("a DSP document names its patient in subject", "required", *where)
    reference = subject.get("reference")
    if reference:
        match = _LOCAL_REFERENCE.match(str(reference))
        record = store.current(ctx.conn, "Patient", match.group(1)) if match else None
        if record is None or record.deleted:
            raise refused(f"the subject {reference} is no Patient of the platform", "not-found", *where)
        _require_active(record, str(reference))
        return subject
    identifier = subject["identifier"]
    system, value = str(identifier.get("system", "")), str(identifier.get("value", ""))
    if system not in PERSON_SYSTEMS or not value:
        raise refused(
            f"a subject identifier is the platform id ({PLATFORM_ID}) or the matricule ({NATIONAL_ID}) of the patient",
            "value",
            *where,
        )
    if ctx.faults.on(SUBJECT_UNRESOLVED):
        return subject
    active = [r for r in _records(ctx, system, value) if r.parsed().get("active") is not False]
    if not active:
        raise refused(f"no active Patient has the identifier {system}|{value}", "not-found", *where)
    # The records of one person (one per institution) share the platform id and the matricule: any of
    # them is the person; the first by id makes the choice the same on every provide.
    chosen = min(active, key=lambda r: r.id)
    return {**subject, "reference": f"Patient/{chosen.id}"}


def _records(ctx: Context, system: str, value: str) -> list[StoredResource]:
    """The Patients with ``system|value`` as the platform sees them (the caller's reach plays no part)."""
    token = f"{system}|{value}".replace(",", "\\,")
    request = ctx.parser().parse("Patient", [("identifier", token)], strict=True)
    request.count = MAX_RECORDS
    return run_search(ctx.conn, request, with_total=False).matches


def _require_active(record: StoredResource, reference: str) -> None:
    patient = record.parsed()
    if patient.get("active") is not False:
        return
    survivors = [
        link["other"]["reference"]
        for link in patient.get("link") or ()
        if link.get("type") == "replaced-by" and isinstance(link.get("other"), dict)
    ]
    hint = f": it was merged into {survivors[0]}" if survivors else ""
    raise refused(f"the subject {reference} is an inactive Patient{hint}", "business-rule", "DocumentReference.subject")


def _attachment_issues(ctx: Context, document: dict[str, Any]) -> list[Issue]:
    binary_url = re.compile(rf"^(?:{re.escape(ctx.request.base_url.rstrip('/'))}/)?Binary/{_BINARY_ID}$")
    issues = []
    contents = document.get("content") or []
    for i, content in enumerate(contents):
        attachment = content.get("attachment") if isinstance(content, dict) else None
        where = f"DocumentReference.content[{i}].attachment"
        if not isinstance(attachment, dict):
            continue  # the FHIR validation already requires content.attachment
        if not attachment.get("contentType"):
            issues.append(
                Issue(
                    "an attachment says its media type (contentType)", "required", expression=(f"{where}.contentType",)
                )
            )
        url = attachment.get("url")
        if "data" not in attachment and not (isinstance(url, str) and binary_url.match(url)):
            shown = f"{url!r}" if url else "neither url nor data"
            issues.append(
                Issue(
                    f"an attachment points to a Binary of this platform (url Binary/<id>) or carries "
                    f"its data inline; got {shown}",
                    "value",
                    expression=(f"{where}.url",),
                )
            )
    return issues
