"""Document source rules (SPEC §5, client side: provide ITI-65), judged on the Bundles and resources
a client run sent to the platform."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

import pytest

from eqlab.checks import ClientRequest, ClientRun, Target
from suites.client.dsp.documents import (
    DOCUMENT_TYPES,
    DOCUMENT_TYPES_SYSTEM,
    Sent,
    attachments,
    bundle_entries,
    bundles_sent,
    document_types,
    fhir_user,
    is_submission_set,
    practitioner_of,
    reference_key,
    report,
    resources_sent,
    subject_key,
    title,
)
from suites.client.support import nothing_to_judge

PROFESSIONALS = ("Practitioner/", "PractitionerRole/")


def _documents(client_run: ClientRun, target: Target) -> list[Sent]:
    sent = resources_sent(client_run, target, "DocumentReference")
    if not sent:
        nothing_to_judge("DocumentReference")
    return sent


def _cited(problems: list[tuple[Sent, str]]) -> list[tuple[ClientRequest, str]]:
    return [(s.request, f"{why}{s.where()}") for s, why in problems]


def _provide_problems(bundle: ClientRequest) -> list[str]:
    body = bundle.json_body
    entries = bundle_entries(bundle)
    documents = [s for s in entries if s.type == "DocumentReference"]
    if not documents:
        return []
    if body.get("type") != "transaction":
        return [f"documents in a {body.get('type')} Bundle, not a transaction"]
    sets = [s for s in entries if is_submission_set(s.resource)]
    if len(sets) != 1:
        return [f"{len(sets)} SubmissionSet Lists (code submissionset), not one"]
    listed = {
        str(item.get("item", {}).get("reference", ""))
        for item in sets[0].resource.get("entry") or []
        if isinstance(item, dict) and isinstance(item.get("item"), dict)
    }
    binaries = {s.full_url for s in entries if s.type == "Binary" and s.full_url}
    problems = []
    for document in documents:
        if document.full_url not in listed:
            problems.append(f"entry {document.entry} (DocumentReference) is not listed by the SubmissionSet")
        urls = [str(a.get("url", "")) for a in attachments(document.resource)]
        missing = [url or "(no url)" for url in urls or [""] if url not in binaries]
        if missing:
            problems.append(f"entry {document.entry} points to {missing}, not to a Binary of the Bundle")
    return problems


@pytest.mark.requirement("dsp@60")
def test_documents_are_provided_as_iti65_transactions(client_run: ClientRun, target: Target) -> None:
    """one transaction Bundle: a SubmissionSet List listing each DocumentReference, each pointing to a Binary of it"""
    documents = resources_sent(client_run, target, "DocumentReference", "Binary")
    if not documents:
        nothing_to_judge("DocumentReference or Binary")
    problems = [
        (s.request, f"a {s.type} sent on its own, not in an ITI-65 transaction") for s in documents if s.entry is None
    ]
    problems += [(b, why) for b in bundles_sent(client_run, target) for why in _provide_problems(b)]
    assert not problems, report(client_run, problems)


@pytest.mark.requirement("dsp@61")
def test_every_document_has_a_type_of_the_national_list(client_run: ClientRun, target: Target) -> None:
    """DocumentReference.type has a urn:oid:1.3.182.6.1 coding with one of the 27 codes"""
    problems = []
    for sent in _documents(client_run, target):
        codes = document_types(sent.resource)
        if not codes:
            problems.append((sent, f"no type coding of {DOCUMENT_TYPES_SYSTEM}"))
        elif unknown := sorted(set(codes) - DOCUMENT_TYPES):
            problems.append((sent, f"document type {unknown} is not one of SPEC §5"))
    assert not problems, report(client_run, _cited(problems))


@pytest.mark.requirement("dsp@62")
def test_documents_name_their_patient_by_the_platform(client_run: ClientRun, target: Target) -> None:
    """subject: Patient/<id> or the platform id, the same for the SubmissionSet and its documents"""
    sent = resources_sent(client_run, target, "DocumentReference", "List")
    if not [s for s in sent if s.type == "DocumentReference"]:
        nothing_to_judge("DocumentReference")
    problems = []
    for s in sent:
        if s.type == "List" and not is_submission_set(s.resource):
            continue
        key = subject_key(s.resource)
        if key is None:
            problems.append((s, f"the {s.type}'s subject {s.resource.get('subject')} is no patient of the platform"))
    for bundle in bundles_sent(client_run, target):
        subjects = {
            key
            for s in bundle_entries(bundle)
            if s.type == "DocumentReference" or is_submission_set(s.resource)
            if (key := subject_key(s.resource))
        }
        if len(subjects) > 1:
            problems.append((Sent(bundle, {}), f"one SubmissionSet for several patients {sorted(subjects)}"))
    assert not problems, report(client_run, _cited(problems))


@pytest.mark.requirement("dsp@63")
def test_documents_are_authored_by_the_signed_in_professional(client_run: ClientRun, target: Target) -> None:
    """DocumentReference.author names the user's fhirUser (or its Practitioner), and no other professional"""
    problems = []
    for sent in _documents(client_run, target):
        authors = sent.resource.get("author")
        keys = {
            key
            for a in (authors if isinstance(authors, list) else [])
            if isinstance(a, dict) and (key := reference_key(a.get("reference")))
        }
        professionals = {k for k in keys if k.startswith(PROFESSIONALS)}
        user = fhir_user(client_run, sent.request.n)
        if user is None:
            if not professionals:
                problems.append((sent, "no Practitioner or PractitionerRole among the authors"))
            continue
        the_user = {user} | ({p} if (p := practitioner_of(client_run, user)) else set())
        if not professionals & the_user:
            problems.append((sent, f"the signed-in professional {user} is not among the authors {sorted(keys)}"))
        elif others := sorted(professionals - the_user):
            problems.append((sent, f"authored by {others} besides the signed-in professional {user}"))
    assert not problems, report(client_run, _cited(problems))


def sniffed(content: bytes) -> str | None:
    """What the bytes are, by their first bytes: pdf, png, jpeg, xml, json or text (None: unknown)."""
    magic = {b"%PDF-": "pdf", b"\x89PNG\r\n\x1a\n": "png", b"\xff\xd8\xff": "jpeg"}
    for start, kind in magic.items():
        if content.startswith(start):
            return kind
    try:
        text = content.decode("utf-8").lstrip("\ufeff \t\r\n")
    except UnicodeDecodeError:
        return None
    if text.startswith("<"):
        return "xml"
    if text.startswith(("{", "[")):
        try:
            json.loads(text)
        except ValueError:
            return "text"
        return "json"
    return "text"


def admits(kind: str, media_type: str) -> bool:
    """Whether ``media_type`` names content of this kind."""
    essence = media_type.split(";", maxsplit=1)[0].strip().lower()
    family, _, subtype = essence.partition("/")
    return {
        "pdf": essence == "application/pdf",
        "png": essence == "image/png",
        "jpeg": essence == "image/jpeg",
        "xml": subtype == "xml" or subtype.endswith("+xml"),
        "json": subtype == "json" or subtype.endswith("+json"),
        "text": family == "text" and subtype not in ("xml", "html"),
    }[kind]


def _decoded(data: Any) -> bytes | None:
    try:
        return base64.b64decode(str(data), validate=True) if isinstance(data, str) else None
    except (binascii.Error, ValueError):
        return None


def _content_problems(document: Sent, binaries: dict[str, dict[str, Any]]) -> list[str]:
    problems = []
    for attachment in attachments(document.resource):
        declared = str(attachment.get("contentType", ""))
        if not declared:
            problems.append("an attachment without contentType")
            continue
        binary = binaries.get(str(attachment.get("url", "")))
        if binary is not None and str(binary.get("contentType", "")) != declared:
            problems.append(f"attachment.contentType {declared}, its Binary's contentType {binary.get('contentType')}")
            continue
        content = _decoded(binary.get("data") if binary is not None else attachment.get("data"))
        kind = sniffed(content) if content else None
        if kind is not None and not admits(kind, declared):
            problems.append(f"{kind} content labelled {declared}")
    return problems


@pytest.mark.requirement("dsp@64")
def test_document_content_has_its_true_media_type(client_run: ClientRun, target: Target) -> None:
    """attachment.contentType given, equal to its Binary's, and naming what the bytes are"""
    binaries = {s.full_url: s.resource for s in resources_sent(client_run, target, "Binary") if s.full_url is not None}
    problems = [
        (document, why) for document in _documents(client_run, target) for why in _content_problems(document, binaries)
    ]
    assert not problems, report(client_run, _cited(problems))


@pytest.mark.requirement("dsp@65")
def test_a_corrected_document_replaces_the_one_it_corrects(client_run: ClientRun, target: Target) -> None:
    """the same patient, type and title again only with relatesTo replaces naming the published document"""
    current: dict[tuple[str | None, tuple[str, ...], str], tuple[str, Sent]] = {}
    problems = []
    for sent in _documents(client_run, target):
        document = sent.resource
        replaced = [
            relation.get("target", {}).get("reference")
            for relation in document.get("relatesTo") or []
            if isinstance(relation, dict) and relation.get("code") == "replaces"
        ]
        targets = {key for ref in replaced if (key := reference_key(ref)) and key.startswith("DocumentReference/")}
        if len(targets) != len(replaced):
            problems.append((sent, f"relatesTo replaces {replaced}: not DocumentReference/<id> as the platform gave"))
        same = (subject_key(document), tuple(sorted(document_types(document))), title(document))
        if same in current and current[same][0] not in targets:
            earlier_id, earlier = current[same]
            problems.append(
                (
                    sent,
                    f"{same[2]!r} published again as a new document, not replacing {earlier_id} "
                    f"({client_run.cite(earlier.request)})",
                )
            )
        if sent.accepted:
            for superseded in [k for k, (published, _) in current.items() if published in targets]:
                del current[superseded]
            if (answered := sent.answered_key) is not None:
                current[same] = (answered, sent)
    assert not problems, report(client_run, _cited(problems))
