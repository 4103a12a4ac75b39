"""What the shared care record's client checks share: the document types and identifier systems of
SPEC §5, the documents a client run sent (ITI-65 transaction Bundles, or resources alone) and the
documents, Binaries and tokens the platform answered.

References are compared by their last ``Type/id`` (``http://h/fhir/Patient/p1``, ``Patient/p1``
and ``Patient/p1/_history/2`` all name ``Patient/p1``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from eqlab.checks import ClientRequest, ClientRun, Target
from suites.client.support import token_requests

DOCUMENT_TYPES_SYSTEM = "urn:oid:1.3.182.6.1"
DOCUMENT_TYPES = frozenset(
    [
        "ALLERGY",
        "FAMHIST",
        "MEDHIST",
        "AUTONOMY",
        "FUNCTIONAL",
        "DIAGREP",
        "THERAPREP",
        "PREVREP",
        "ADMINREP",
        "DISCHARGE",
        "PALLIATIVE",
        "CERTIFICATE",
        "EDUCATION",
        "PATIENTEXPR",
        "RISK",
        "IMAGING",
        "PROSTHESIS",
        "MEDREPORT",
        "LABRESULT",
        "EMERGENCY",
        "CARESUMMARY",
        "PATSUMMARY",
        "THERAPSCHEME",
        "PLURIDISC",
        "MEDICATION",
        "PRESCRIBED",
        "PREVENTIVE",
    ]
)
PLATFORM_ID = "urn:oid:1.3.182.2.4.2"
SUBMISSION_SET = "submissionset"
WRITES = ("POST", "PUT", "PATCH", "DELETE")
SHOWN = 5  # problems cited for one check
_REFERENCE = re.compile(r"(?:^|/)([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")


def base_path(target: Target) -> str:
    return urlsplit(target.base_url).path.rstrip("/")


def reference_key(reference: Any) -> str | None:
    """``Type/id`` of a literal reference (relative, absolute or versioned), else None."""
    found = _REFERENCE.search(str(reference)) if isinstance(reference, str) else None
    return f"{found[1]}/{found[2]}" if found else None


def report(run: ClientRun, problems: list[tuple[ClientRequest, str]]) -> str:
    shown = [f"{why}: {run.cite(request)}" for request, why in problems[:SHOWN]]
    more = [f"and {len(problems) - SHOWN} more"] if len(problems) > SHOWN else []
    return "; ".join(shown + more)


def fhir_path(request: ClientRequest, target: Target) -> str | None:
    """The request's path below the FHIR base (``DocumentReference/d1``; ``""`` for the base), else None."""
    base = base_path(target)
    if request.path.rstrip("/") == base:
        return ""
    return request.path[len(base) + 1 :] if request.path.startswith(base + "/") else None


# --- what a source sends -----------------------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    """A resource the client sent: alone, or as entry ``entry`` (from 0) of a Bundle."""

    request: ClientRequest
    resource: dict[str, Any]
    entry: int | None = None
    full_url: str | None = None

    @property
    def type(self) -> str:
        return str(self.resource.get("resourceType", ""))

    @property
    def accepted(self) -> bool:
        """The platform stored it (2xx for the request, or for the entry of a Bundle)."""
        if self.entry is None:
            return self.request.status is not None and 200 <= self.request.status < 300
        return self.answered_status()[:1] == "2"

    def answered_status(self) -> str:
        entry = _answer_entry(self.request, self.entry)
        return str(entry.get("response", {}).get("status", "")) if entry else ""

    @property
    def answered_key(self) -> str | None:
        """``Type/id`` the platform gave it (Location of the answer, or of the Bundle entry's response)."""
        if self.entry is None:
            body = self.request.response_json
            if isinstance(body, dict) and body.get("id"):
                return f"{body.get('resourceType')}/{body['id']}"
            return reference_key(self.request.response_headers.get("location", "").split("/_history/")[0])
        entry = _answer_entry(self.request, self.entry)
        location = str(entry.get("response", {}).get("location", "")) if entry else ""
        return reference_key(location.split("/_history/")[0])

    def where(self) -> str:
        return "" if self.entry is None else f" (Bundle entry {self.entry})"


def _answer_entry(request: ClientRequest, entry: int | None) -> dict[str, Any] | None:
    entries = request.response_json.get("entry") if isinstance(request.response_json, dict) else None
    if entry is None or not isinstance(entries, list) or entry >= len(entries) or not isinstance(entries[entry], dict):
        return None
    found: dict[str, Any] = entries[entry]
    return found


def bundles_sent(run: ClientRun, target: Target) -> list[ClientRequest]:
    """Batch and transaction Bundles POSTed to the FHIR base."""
    return [
        r
        for r in run.requests
        if r.method == "POST"
        and fhir_path(r, target) == ""
        and isinstance(r.json_body, dict)
        and r.json_body.get("resourceType") == "Bundle"
    ]


def bundle_entries(request: ClientRequest) -> list[Sent]:
    body = request.json_body if isinstance(request.json_body, dict) else {}
    found = []
    for n, entry in enumerate(body.get("entry") or []):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict):
            full_url = entry.get("fullUrl")
            found.append(Sent(request, resource, n, str(full_url) if full_url else None))
    return found


def resources_sent(run: ClientRun, target: Target, *types: str) -> list[Sent]:
    """Every resource of ``types`` the client sent to be stored, alone or in a Bundle, in arrival order."""
    found: list[Sent] = []
    for request in run.requests:
        path, body = fhir_path(request, target), request.json_body
        if path == "" and request.method == "POST" and isinstance(body, dict) and body.get("resourceType") == "Bundle":
            found += [s for s in bundle_entries(request) if s.type in types]
        elif (
            request.method in ("POST", "PUT")
            and path
            and not path.endswith("_search")
            and "$" not in path
            and isinstance(body, dict)
            and body.get("resourceType") in types
        ):
            found.append(Sent(request, body))
    return found


def coded(concept: Any, code: str) -> bool:
    codings = concept.get("coding") if isinstance(concept, dict) else None
    return any(isinstance(c, dict) and c.get("code") == code for c in codings or [])


def is_submission_set(resource: dict[str, Any]) -> bool:
    return resource.get("resourceType") == "List" and coded(resource.get("code"), SUBMISSION_SET)


def document_types(document: dict[str, Any]) -> list[str]:
    """The codes of the document's type in the SPEC §5 system."""
    codings = document.get("type", {}).get("coding") if isinstance(document.get("type"), dict) else None
    return [
        str(c.get("code"))
        for c in codings or []
        if isinstance(c, dict) and c.get("system") == DOCUMENT_TYPES_SYSTEM and c.get("code")
    ]


def attachments(document: dict[str, Any]) -> list[dict[str, Any]]:
    contents = document.get("content")
    return [
        c["attachment"]
        for c in (contents if isinstance(contents, list) else [])
        if isinstance(c, dict) and isinstance(c.get("attachment"), dict)
    ]


def title(document: dict[str, Any]) -> str:
    """What a reader sees of a document: its first attachment's title, else its description."""
    titles = [str(a["title"]) for a in attachments(document) if a.get("title")]
    return titles[0] if titles else str(document.get("description", ""))


def subject_key(resource: dict[str, Any]) -> str | None:
    """How a DocumentReference or List names its patient: ``Patient/<id>`` or ``id:<platform id>``."""
    subject = resource.get("subject")
    if not isinstance(subject, dict):
        return None
    key = reference_key(subject.get("reference"))
    if key and key.startswith("Patient/") and not str(subject.get("reference", "")).startswith("#"):
        return key
    identifier = subject.get("identifier")
    if isinstance(identifier, dict) and identifier.get("system") == PLATFORM_ID and identifier.get("value"):
        return f"id:{identifier['value']}"
    return None


# --- what the platform answered ----------------------------------------------------------------


def resources_answered(request: ClientRequest) -> list[dict[str, Any]]:
    """The resources in the platform's answer: the answer itself, or the entries of a Bundle."""
    body = request.response_json
    if not isinstance(body, dict):
        return []
    if body.get("resourceType") != "Bundle":
        return [body]
    entries = [e.get("resource") for e in body.get("entry") or [] if isinstance(e, dict)]
    return [r for r in entries if isinstance(r, dict)]


@dataclass(frozen=True)
class Listed:
    """A document the platform answered, before request ``seen_before``."""

    document: str  # DocumentReference/<id>
    patient: str | None  # Patient/<id>
    binaries: dict[str, str]  # Binary/<id> -> the attachment's contentType ("" when none)


def documents_listed(run: ClientRun, before: int | None = None) -> Iterator[Listed]:
    for request in run.requests:
        if before is not None and request.n >= before:
            return
        for resource in resources_answered(request):
            if resource.get("resourceType") == "DocumentReference" and resource.get("id"):
                binaries = {
                    key: str(a.get("contentType", ""))
                    for a in attachments(resource)
                    if (key := reference_key(a.get("url"))) and key.startswith("Binary/")
                }
                yield Listed(f"DocumentReference/{resource['id']}", subject_key(resource), binaries)


def names(request: ClientRequest, key: str) -> bool:
    """Whether the request names ``Type/id``: in its path, a parameter, or a reference in its body."""
    kind, _, ident = key.partition("/")
    pattern = re.compile(rf"(^|/){re.escape(kind)}/{re.escape(ident)}(/|$)")
    if pattern.search(request.path):
        return True
    if any(pattern.search(value) for _, value in [*request.query, *(request.form or [])]):
        return True
    return any(pattern.search(ref) for ref in _strings(request.json_body))


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)
    elif isinstance(node, str):
        yield node


# --- tokens: whose and for what ----------------------------------------------------------------


def bearer(request: ClientRequest) -> str | None:
    value = request.headers.get("authorization", "")
    return value.split(" ", 1)[1] if value.lower().startswith("bearer ") else None


def token_purpose(run: ClientRun, request: ClientRequest) -> tuple[str | None, str]:
    """The purpose of use the request's access token was granted for, or None and why there is none.

    The token is followed back through the journal: the token response that issued it, the grant it
    was issued on (a refresh goes back to the token response that issued the refresh token), and for
    an authorization code the consent form that produced the code.
    """
    token = bearer(request)
    if token is None:
        return None, "no bearer token"
    issued = _token_response(run, "access_token", token, request.n)
    for _ in range(len(run.requests)):
        if issued is None:
            return None, "a token the platform did not issue in this run"
        grant = issued.param("grant_type")
        if grant == "refresh_token":
            issued = _token_response(run, "refresh_token", issued.param("refresh_token") or "", issued.n)
            continue
        if grant != "authorization_code":
            return None, f"a token of the {grant} grant, no user's"
        consent = _consent_of(run, issued.param("code") or "", issued.n)
        purpose = consent.param("purpose_of_use") if consent else None
        return (purpose, "") if purpose else (None, "a token granted without a purpose of use")
    return None, "a refresh chain without its start"


def _token_response(run: ClientRun, field: str, sealed: str, before: int) -> ClientRequest | None:
    """The last token request before ``before`` whose answer carried ``sealed`` as ``field``."""
    found = [
        r
        for r in token_requests(run)
        if r.n < before and isinstance(r.response_json, dict) and r.response_json.get(field) == sealed
    ]
    return found[-1] if found else None


def _consent_of(run: ClientRun, sealed_code: str, before: int) -> ClientRequest | None:
    """The request whose answer redirected the user agent back with this authorization code."""
    for request in run.requests:
        location = request.response_headers.get("location", "")
        if request.n < before and location and ("code", sealed_code) in parse_qsl(urlsplit(location).query):
            return request
    return None


def fhir_user(run: ClientRun, before: int) -> str | None:
    """The signed-in user's fhirUser (``Type/id``) as the platform told it before request ``before``
    (userinfo or introspection answers)."""
    told = [
        key
        for r in run.requests
        if r.n < before and isinstance(r.response_json, dict)
        for key in [reference_key(r.response_json.get("fhirUser"))]
        if key
    ]
    return told[-1] if told else None


def practitioner_of(run: ClientRun, role: str) -> str | None:
    """The Practitioner of a PractitionerRole, when the platform answered that role in the run."""
    for request in run.requests:
        for resource in resources_answered(request):
            if f"PractitionerRole/{resource.get('id')}" == role and resource.get("resourceType") == "PractitionerRole":
                practitioner = resource.get("practitioner")
                return reference_key(practitioner.get("reference")) if isinstance(practitioner, dict) else None
    return None
