"""What the patient index's client checks share: the identifier systems of SPEC §3, and the Patient
writes, Patient searches and Patients answered that a client run's journal holds.

A write may come alone (``PUT Patient?identifier=…``, ``POST Patient``) or as an entry of a batch
or transaction Bundle: both reach the index, so both are judged.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from stdnum import luhn, verhoeff

from eqlab.checks import ClientRequest, ClientRun, Target

NATIONAL_ID = "urn:oid:1.3.182.4.4"  # the matricule
PLATFORM_ID = "urn:oid:1.3.182.2.4.2"  # the id the patient index assigns
LOCAL_ID_PREFIX = PLATFORM_ID + "."  # + <n>: the local ids of the institution with directory code <n>
ORGANIZATION_ID = "urn:oid:1.3.182.3.2"  # an institution's directory code
ABSOLUTE_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:\S+")
SHOWN = 5  # requests cited for one problem


def base_path(target: Target) -> str:
    return urlsplit(target.base_url).path.rstrip("/")


def local_system_code(system: str) -> str | None:
    """``<n>`` of a local id system ``urn:oid:1.3.182.2.4.2.<n>``, else None."""
    code = system.removeprefix(LOCAL_ID_PREFIX)
    return code if system.startswith(LOCAL_ID_PREFIX) and code.isascii() and code.isdigit() else None


def matricule_problem(value: str) -> str | None:
    """Why ``value`` is no valid matricule (SPEC §3), or None."""
    if len(value) != 13 or not value.isascii() or not value.isdigit():
        return "not 13 digits"
    year, month, day = int(value[:4]), int(value[4:6]), int(value[6:8])
    if month > 12 or day > (calendar.monthrange(year, month)[1] if month else 31):
        return f"{value[:8]} is no birth date YYYYMMDD"
    if value[11] != luhn.calc_check_digit(value[:11]):
        return "wrong Luhn check digit (12th)"
    if value[12] != verhoeff.calc_check_digit(value[:11]):
        return "wrong Verhoeff check digit (13th)"
    return None


def identifiers(resource: dict[str, Any]) -> list[tuple[str, str]]:
    found = resource.get("identifier")
    return [
        (str(i.get("system", "")), str(i.get("value", "")))
        for i in (found if isinstance(found, list) else [])
        if isinstance(i, dict)
    ]


@dataclass(frozen=True)
class PatientWrite:
    """A Patient sent to the platform: alone, or as entry ``entry`` (from 0) of a Bundle."""

    request: ClientRequest
    method: str
    search: list[tuple[str, str]] | None  # a conditional write's search; None for a write by id or a create
    resource: dict[str, Any]
    conditional_create: bool
    entry: int | None = None

    @property
    def accepted(self) -> bool:
        """The platform stored it (2xx for the request, or for the entry of a Bundle)."""
        if self.entry is None:
            return self.request.status is not None and 200 <= self.request.status < 300
        entries = self.request.response_json.get("entry") if isinstance(self.request.response_json, dict) else None
        if not isinstance(entries, list) or self.entry >= len(entries) or not isinstance(entries[self.entry], dict):
            return False
        status = str(entries[self.entry].get("response", {}).get("status", ""))
        return status[:1] == "2"

    def where(self) -> str:
        return "" if self.entry is None else f" (Bundle entry {self.entry})"


def patient_writes(run: ClientRun, target: Target) -> list[PatientWrite]:
    """Every Patient the client sent to be stored, in arrival order."""
    base = base_path(target)
    writes: list[PatientWrite] = []
    for request in run.requests:
        body = request.json_body
        if request.method in ("PUT", "POST") and re.fullmatch(
            rf"{re.escape(base)}/Patient(/[^/$][^/]*)?", request.path
        ):
            if isinstance(body, dict) and body.get("resourceType") == "Patient":
                search = request.query if request.method == "PUT" and request.query else None
                conditional = request.method == "POST" and bool(request.headers.get("if-none-exist"))
                writes.append(PatientWrite(request, request.method, search, body, conditional))
        elif request.method == "POST" and request.path.rstrip("/") == base and _is_bundle(body):
            writes += list(_bundle_writes(request, body))
    return writes


def _is_bundle(body: Any) -> bool:
    return (
        isinstance(body, dict) and body.get("resourceType") == "Bundle" and body.get("type") in ("batch", "transaction")
    )


def _bundle_writes(request: ClientRequest, bundle: dict[str, Any]) -> Iterator[PatientWrite]:
    for n, entry in enumerate(bundle.get("entry") or []):
        resource, asked = (entry.get("resource"), entry.get("request")) if isinstance(entry, dict) else (None, None)
        if not isinstance(resource, dict) or resource.get("resourceType") != "Patient" or not isinstance(asked, dict):
            continue
        method, url = str(asked.get("method", "")).upper(), urlsplit(str(asked.get("url", "")))
        if method in ("PUT", "POST"):
            search = parse_qsl(url.query, keep_blank_values=True) if method == "PUT" and url.query else None
            conditional = method == "POST" and bool(asked.get("ifNoneExist"))
            yield PatientWrite(request, method, search, resource, conditional, n)


def patient_searches(run: ClientRun, target: Target) -> list[ClientRequest]:
    """Patient searches (PDQm): ``GET Patient?…`` and ``POST Patient/_search``."""
    base = re.escape(base_path(target))
    return run.where(
        keep=lambda r: (
            (r.method == "GET" and re.fullmatch(rf"{base}/Patient/?", r.path) is not None)
            or (r.method == "POST" and re.fullmatch(rf"{base}/Patient/_search", r.path) is not None)
        )
    )


def search_parameters(request: ClientRequest) -> list[tuple[str, str]]:
    return [*request.query, *(request.form or [])]


def link_parameters(run: ClientRun, before: int) -> set[str]:
    """The parameter names of every link (self, next, previous…) the platform answered before request ``before``:
    paging parameters are the platform's own, a client following its links sends them back."""
    names = set()
    for request in run.requests:
        body = request.response_json
        if request.n >= before or not isinstance(body, dict) or body.get("resourceType") != "Bundle":
            continue
        for link in body.get("link") or []:
            if isinstance(link, dict):
                names |= {k for k, _ in parse_qsl(urlsplit(str(link.get("url", ""))).query, keep_blank_values=True)}
    return names


def patients_answered(request: ClientRequest) -> list[dict[str, Any]]:
    """The Patients in the platform's answer: the answer itself, or the entries of a Bundle."""
    body = request.response_json
    if not isinstance(body, dict):
        return []
    if body.get("resourceType") == "Patient":
        return [body]
    if body.get("resourceType") != "Bundle":
        return []
    resources = [e.get("resource") for e in body.get("entry") or [] if isinstance(e, dict)]
    return [r for r in resources if isinstance(r, dict) and r.get("resourceType") == "Patient"]


def platform_ids_answered(node: Any) -> set[str]:
    """Every platform id value anywhere in an answer (Patients, Bundles, PIXm Parameters)."""
    if isinstance(node, dict):
        own = {str(node["value"])} if node.get("system") == PLATFORM_ID and node.get("value") else set()
        return own.union(*(platform_ids_answered(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(platform_ids_answered(v) for v in node))
    return set()


def names_patient(request: ClientRequest, patient_id: str) -> bool:
    """Whether the request is about ``Patient/<patient_id>``: in its path, a parameter, or a reference in its body."""
    reference = re.compile(rf"(^|/)Patient/{re.escape(patient_id)}(/|$)")
    if reference.search(request.path):
        return True
    if any(value == patient_id or reference.search(value) for _, value in search_parameters(request)):
        return True
    return any(reference.search(ref) for ref in references(request.json_body))


def references(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [str(node["reference"])] if isinstance(node.get("reference"), str) else []
        return found + [ref for value in node.values() for ref in references(value)]
    if isinstance(node, list):
        return [ref for item in node for ref in references(item)]
    return []
