"""The scenarios the lab's client plans ask for, by name: each does its work or raises ``ScenarioFailed``."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from reference_client import dsp, mpi
from reference_client.client import Client
from reference_client.fhir import expect
from reference_client.smart import ScenarioFailed

MAX_PAGES = 50
IDENTIFIER_SYSTEM = "urn:eqlab:reference-client"


def sign_in(client: Client) -> None:
    token = client.smart.sign_in()
    client.fhir.token = str(token["access_token"])
    patient = str(token.get("patient") or client.patient)
    expect(client.fhir.request("GET", f"Patient/{patient}"), 200, what=f"read Patient/{patient}")


def refresh(client: Client) -> None:
    first = client.smart.sign_in()
    if "refresh_token" not in first:
        raise ScenarioFailed("the token response has no refresh_token (is offline_access granted?)")
    second = client.smart.refresh(first["refresh_token"])
    rotated = second.get("refresh_token", first["refresh_token"])
    client.smart.refresh(first["refresh_token"] if "refresh-reused" in client.faults else rotated)


def system_token(client: Client) -> None:
    client.smart.system_token()
    client.smart.system_token()


def read_patient(client: Client) -> None:
    """One read: the lab's plan makes the platform answer it with a 401, 412, 429 or 503 first."""
    expect(client.fhir.request("GET", f"Patient/{client.patient}"), 200, what=f"read Patient/{client.patient}")


def update(client: Client) -> None:
    path = f"Patient/{client.patient}"
    for _ in range(2):  # a 412 means someone else wrote in between: read again, then retry once
        read = client.fhir.request("GET", path)
        resource = expect(read, 200, what=f"read {path}")
        resource.setdefault("meta", {}).pop("lastUpdated", None)
        resource["active"] = True
        headers = {} if "no-if-match" in client.faults else {"If-Match": f'W/"{resource["meta"]["versionId"]}"'}
        written = client.fhir.request("PUT", path, resource, headers)
        if written.status_code != 412:
            expect(written, 200, what=f"update {path}")
            return
    raise ScenarioFailed(f"update {path}: HTTP 412 again after reading it again")


def paging(client: Client) -> None:
    search = client.config.input("search", "Patient?_count=10")
    bundle = expect(client.fhir.request("GET", search), 200, what=f"search {search}")
    total, seen = bundle.get("total"), len(bundle.get("entry", []))
    for page in range(1, MAX_PAGES):
        following = _next_link(bundle)
        if following is None or (total is not None and seen >= total):
            return
        url = _built_page_url(client, search, seen) if "page-urls-built" in client.faults else following
        bundle = expect(client.fhir.request("GET", url), 200, what=f"page {page + 1} of {search}")
        if not bundle.get("entry"):
            return
        seen += len(bundle["entry"])
    raise ScenarioFailed(f"search {search}: more than {MAX_PAGES} pages")


def _next_link(bundle: dict[str, Any]) -> str | None:
    return next((str(link["url"]) for link in bundle.get("link", []) if link.get("relation") == "next"), None)


def _built_page_url(client: Client, search: str, offset: int) -> str:
    parts = urlsplit(search)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "_getpagesoffset"]
    return f"{client.fhir.url(parts.path)}?{urlencode([*query, ('_getpagesoffset', str(offset))])}"


def conditional_create(client: Client) -> None:
    value = client.config.input("identifier", str(uuid.uuid4()))
    patient = {"resourceType": "Patient", "identifier": [{"system": IDENTIFIER_SYSTEM, "value": value}]}
    condition = {"If-None-Exist": urlencode({"identifier": f"{IDENTIFIER_SYSTEM}|{value}"})}
    first = client.fhir.request("POST", "Patient", patient, condition)
    expect(first, 200, 201, what="conditional create")
    again = client.fhir.request("POST", "Patient", patient, condition)
    expect(again, 200, 201, what="conditional create, sent again")
    if again.status_code != 200:
        raise ScenarioFailed("conditional create sent again made a second Patient instead of finding the first")


def transaction(client: Client) -> None:
    patient_url = f"urn:uuid:{uuid.uuid4()}"
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": patient_url,
                "resource": {"resourceType": "Patient", "name": [{"family": "Reference-Client"}]},
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"text": "reference client check"},
                    "subject": {"reference": patient_url},
                },
                "request": {"method": "POST", "url": "Observation"},
            },
        ],
    }
    answer = expect(client.fhir.request("POST", "", bundle), 200, what="transaction")
    if answer.get("type") != "transaction-response":
        raise ScenarioFailed(f"transaction: answered a {answer.get('type')} Bundle, not a transaction-response")


SCENARIOS: dict[str, Callable[[Client], None]] = {
    "sign-in": sign_in,
    "refresh": refresh,
    "system-token": system_token,
    "retry-after-401": read_patient,
    "update": update,
    "paging": paging,
    "retry-after": read_patient,
    "conditional-create": conditional_create,
    "transaction": transaction,
    "feed-new": mpi.feed_new,
    "feed-update": mpi.feed_update,
    "feed-second-institution": mpi.feed_new,
    "pix-resolve": mpi.pix_resolve,
    "pdq-find": mpi.pdq_find,
    "merged-patient": mpi.merged_patient,
    "publish": dsp.publish,
    "correct": dsp.correct,
    "read-record": dsp.read_record,
}
