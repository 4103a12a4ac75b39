"""No request, however malformed, gets a server error (fhir@49).

A battery of hostile requests: malformed JSON, wrong JSON types, huge and strange ids, impossible
dates, SQL metacharacters, unknown modifiers, garbage headers and broken Bundles. Every answer must
be a client error (or a success); a 5xx means the server failed to validate what it was sent.
``{id}`` in a case stands for a Patient the check creates first; searches are narrowed to the check's own
data (an extra ``identifier`` criterion) so that a server holding other data answers small pages.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

from eqlab.checks import EvidenceClient
from suites.contract.fhir_toolkit import FHIR_JSON, JSON_PATCH, create, patient, scope, shown


@dataclass(frozen=True)
class Hostile:
    label: str
    method: str
    path: str
    params: tuple[tuple[str, str], ...] = ()
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None


def _post(label: str, body: bytes | str, path: str = "Patient", **headers: str) -> Hostile:
    raw = body.encode() if isinstance(body, str) else body
    return Hostile(label, "POST", path, headers={"Content-Type": FHIR_JSON, **headers}, body=raw)


def _get(label: str, path: str, *params: tuple[str, str], **headers: str) -> Hostile:
    return Hostile(label, "GET", path, params, headers)


def _patient_with(fragment: str) -> str:
    return '{"resourceType":"Patient",' + fragment + "}"


def _bundle(kind: str, entries: object) -> str:
    return json.dumps({"resourceType": "Bundle", "type": kind, "entry": entries})


MALFORMED_JSON = [
    _post("truncated JSON", '{"resourceType": "Patient", "name": ['),
    _post("empty body", b""),
    _post("JSON null", "null"),
    _post("JSON array", "[]"),
    _post("JSON string", '"Patient"'),
    _post("JSON number out of range", '{"resourceType":"Patient","multipleBirthInteger":1e999999}'),
    _post("NaN literal", '{"resourceType":"Patient","multipleBirthInteger":NaN}'),
    _post("invalid UTF-8", b'{"resourceType":"Patient","name":[{"family":"\xff\xfe\xfd"}]}'),
    _post("lone surrogate escape", '{"resourceType":"Patient","name":[{"family":"\\ud800"}]}'),
    _post("byte order mark", b'\xef\xbb\xbf{"resourceType":"Patient"}'),
    _post("duplicate keys", '{"resourceType":"Patient","gender":"male","gender":"female"}'),
    _post("trailing garbage", '{"resourceType":"Patient"} trailing'),
    _post("single quotes", "{'resourceType':'Patient'}"),
    _post("100k-character key", _patient_with('"' + "k" * 100_000 + '":1')),
    _post("operator object", _patient_with('"name":{"$gt":""}')),
]

WRONG_TYPES = [
    _post("resourceType null", '{"resourceType":null}'),
    _post("resourceType number", '{"resourceType":5}'),
    _post("resourceType list", '{"resourceType":["Patient"]}'),
    _post("resourceType unknown", '{"resourceType":"NotAType"}'),
    _post("meta as string", _patient_with('"meta":"x"')),
    _post("versionId as number", _patient_with('"meta":{"versionId":5,"lastUpdated":"x"}')),
    _post("id as number", _patient_with('"id":12')),
    _post("extension as string", _patient_with('"extension":"x"')),
    _post("contained numbers", _patient_with('"contained":[5]')),
    _post("contained unknown type", _patient_with('"contained":[{"resourceType":"NotAType"}]')),
    _post("narrative div as number", _patient_with('"text":{"status":"generated","div":5}')),
    _post("birthDate as boolean", _patient_with('"birthDate":true')),
    _post("null in a list", _patient_with('"name":[null]')),
    _post("reference as number", _patient_with('"managingOrganization":{"reference":5}')),
    _post("primitive extension as string", _patient_with('"_birthDate":"x"')),
    _post("period as string", _patient_with('"identifier":[{"period":"x"}]')),
    _post("huge integer", _patient_with('"multipleBirthInteger":' + "9" * 400)),
]

IDS_AND_PATHS = [
    _get("5000-character id", "Patient/" + "a" * 5000),
    _get("65-character id", "Patient/" + "1" * 65),
    Hostile("update of a 200-character id", "PUT", "Patient/" + "a" * 200, body=b'{"resourceType":"Patient"}'),
    Hostile("delete of a 300-character id", "DELETE", "Patient/" + "x" * 300),
    _get("encoded path traversal", "Patient/%2e%2e%2f%2e%2e%2fetc%2fpasswd"),
    _get("dot-dot id", "Patient/%2E%2E"),
    _get("NUL in an id", "Patient/a%00b"),
    _get("emoji id", "Patient/%F0%9F%92%A9"),
    _get("non-numeric version", "Patient/{id}/_history/abc"),
    _get("negative version", "Patient/{id}/_history/-1"),
    _get("fractional version", "Patient/{id}/_history/1.5"),
    _get("deep path", "Patient/{id}/x/y/z/w"),
    _get("non-ASCII type", "%E2%82%AC/1"),
    _get("unknown operation", "Patient/{id}/$eqlab-unknown"),
    Hostile("POST to metadata", "POST", "metadata", headers={"Content-Type": FHIR_JSON}, body=b"{}"),
    Hostile("TRACE", "TRACE", "Patient"),
]

BAD_DATES = [
    _get("30 February", "Patient", ("birthdate", "2020-02-30")),
    _get("five-digit year", "Patient", ("birthdate", "99999")),
    _get("year zero", "Patient", ("birthdate", "0000-00-00")),
    _get("hour 25", "Patient", ("birthdate", "2020-01-01T25:61:61Z")),
    _get("exponent as date", "Patient", ("birthdate", "1e10")),
    _get("prefix without date", "Patient", ("birthdate", "gt")),
    _get("negative last updated", "Patient", ("_lastUpdated", "gt-1")),
    _get("offset +25:00", "Observation", ("date", "2020-01-01T00:00:00+25:00")),
    _get("far future", "Patient", ("birthdate", "gt9999-12-31T23:59:59.999999999+14:00")),
    _get("far past", "Patient", ("birthdate", "lt0001-01-01T00:00:00-14:00")),
    _get("garbage _since", "_history", ("_since", "xyz")),
    _get("far future _since", "Patient/_history", ("_since", "9999-12-31T23:59:59+14:00")),
    _get("garbage _at", "Patient/_history", ("_at", "2020-13-01")),
    _post("impossible birthDate", _patient_with('"birthDate":"2020-02-30"')),
]

INJECTION = [
    _get("quote and comment", "Patient", ("family", "' OR 1=1--")),
    _get("LIKE wildcards", "Patient", ("family:contains", "%_\\")),
    _get("percent only", "Patient", ("family", "%")),
    _get("backslash", "Patient", ("family:exact", "\\")),
    _get("NUL in a value", "Patient", ("family", "a\x00b")),
    _get("token with pipes", "Patient", ("identifier", "a|b|c")),
    _get("statement in a token", "Patient", ("identifier", "';DROP TABLE resources;--|x")),
    _get("quoted _id", "Patient", ("_id", "' or ''='")),
    _get("statement in _sort", "Patient", ("_sort", "family;DROP TABLE resources")),
    _get("statement in _count", "Patient", ("_count", "1;DROP TABLE resources")),
    _get("statement in _elements", "Patient", ("_elements", "name);--")),
    _get("quoted reference", "Observation", ("subject", "Patient/1' OR '1'='1")),
    _get("statement in a quantity", "Observation", ("value-quantity", "1|';--|x")),
    _get("quote in _has", "Patient", ("_has:Observation:subject:code", "'")),
    _get("6000-character value", "Patient", ("identifier", "x" * 6000)),
    _get("huge _count", "Patient", ("_count", "9" * 30)),
]

MODIFIERS = [
    _get("unknown string modifier", "Patient", ("family:eqlab", "x")),
    _get(":exact on a date", "Patient", ("birthdate:exact", "2020")),
    _get(":below on _id", "Patient", ("_id:below", "x")),
    _get("unknown type modifier", "Observation", ("subject:NotAType", "x")),
    _get(":above on a token", "Patient", ("gender:above", "x")),
    _get("modifier in _has", "Patient", ("_has:Observation:subject:code:eqlab", "x")),
    _get("two-level chain", "Observation", ("subject.organization.name", "x")),
    _get("chain to an unknown parameter", "Observation", ("patient.eqlab", "x")),
    _get("nested _has", "Patient", ("_has:Observation:subject:_has:X:y:z", "1")),
    _get("_include=*", "Patient", ("_include", "*")),
    _get("unknown _include", "Patient", ("_include", "Patient:eqlab")),
    _get("unknown _revinclude", "Patient", ("_revinclude", "NotAType:x")),
    _get("_include with unknown target", "Patient", ("_include", "Patient:organization:NotAType")),
    _get("_sort=-", "Patient", ("_sort", "-")),
    _get("unknown _sort", "Patient", ("_sort", "eqlab")),
    _get("garbage _elements", "Patient", ("_elements", "!!!,,,")),
    _get("unknown _type", "", ("_type", "NotAType")),
    _get("empty names", "Patient", ("", ""), ("", "x")),
    _get("non-ASCII parameter name", "Patient", ("fämily", "x")),
    _get("empty _count", "Patient", ("_count", "")),
    _get(":missing=maybe", "Patient", ("active:missing", "maybe")),
    _get("quantity pipes only", "Observation", ("value-quantity", "||")),
]

HEADERS = [
    _get("Accept of separators", "metadata", **{"Accept": ";;;,,,"}),
    _get("Accept with a bad q", "metadata", **{"Accept": "application/fhir+json; q=abc"}),
    _get("Accept with a negative q", "metadata", **{"Accept": "*/*;q=-1"}),
    _get("Accept of FHIR 9.9", "metadata", **{"Accept": "application/fhir+json; fhirVersion=9.9"}),
    _post(
        "Content-Type charset ebcdic",
        _patient_with('"gender":"male"'),
        **{"Content-Type": f"{FHIR_JSON}; charset=ebcdic"},
    ),
    _post("Content-Type garbage", _patient_with('"gender":"male"'), **{"Content-Type": "garbage"}),
    _post("Content-Type separators", _patient_with('"gender":"male"'), **{"Content-Type": ";;;"}),
    Hostile(
        "If-Match garbage",
        "PUT",
        "Patient/{id}",
        headers={"Content-Type": FHIR_JSON, "If-Match": "garbage"},
        body=b'{"resourceType":"Patient","id":"{id}"}',
    ),
    _get("If-None-Match garbage", "Patient/{id}", **{"If-None-Match": "garbage"}),
    _get("If-Modified-Since garbage", "Patient/{id}", **{"If-Modified-Since": "yesterday"}),
    _post("If-None-Exist garbage", _patient_with('"gender":"male"'), **{"If-None-Exist": "%%%&&&==="}),
    _post("If-None-Exist unknown parameter", _patient_with('"gender":"male"'), **{"If-None-Exist": "eqlab=1"}),
    _get("Prefer garbage", "Patient", ("_id", "x"), **{"Prefer": "handling=strict;;;==="}),
    _post("Prefer return garbage", _patient_with('"gender":"male"'), **{"Prefer": "return=eqlab"}),
    _get("1000-character request id", "metadata", **{"X-Request-Id": "r" * 1000}),
    _get("markup request id", "metadata", **{"X-Request-Id": "<script>alert(1)</script>"}),
    _get("Range garbage", "Patient/{id}", **{"Range": "bytes=abc"}),
]

BODIES = [
    Hostile("JSON Patch of numbers", "PATCH", "Patient/{id}", headers={"Content-Type": JSON_PATCH}, body=b'[5, "x"]'),
    Hostile("JSON Patch object", "PATCH", "Patient/{id}", headers={"Content-Type": JSON_PATCH}, body=b'{"op":"add"}'),
    Hostile(
        "JSON Patch move from nowhere",
        "PATCH",
        "Patient/{id}",
        headers={"Content-Type": JSON_PATCH},
        body=b'[{"op":"move","from":"/eqlab","path":"/x"}]',
    ),
    Hostile(
        "JSON Patch removing resourceType",
        "PATCH",
        "Patient/{id}",
        headers={"Content-Type": JSON_PATCH},
        body=b'[{"op":"remove","path":"/resourceType"}]',
    ),
    Hostile(
        "JSON Patch bad pointer",
        "PATCH",
        "Patient/{id}",
        headers={"Content-Type": JSON_PATCH},
        body=b'[{"op":"replace","path":"name/0/~9","value":1}]',
    ),
    Hostile("conditional delete without criteria", "DELETE", "Patient"),
    Hostile(
        "conditional update without criteria",
        "PUT",
        "Patient",
        headers={"Content-Type": FHIR_JSON},
        body=b'{"resourceType":"Patient"}',
    ),
    Hostile(
        "_search with binary form",
        "POST",
        "Patient/_search",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        body=b"\xff\xfe=\x00&&&=%%",
    ),
    _post("searchset posted as a batch", _bundle("searchset", []), path=""),
    _post("entry that is a number", _bundle("transaction", [5]), path=""),
    _post("entry without request", _bundle("batch", [{"resource": {"resourceType": "Patient"}}]), path=""),
    _post(
        "entry with method TRACE", _bundle("transaction", [{"request": {"method": "TRACE", "url": "Patient"}}]), path=""
    ),
    _post(
        "entry with a foreign URL",
        _bundle("batch", [{"request": {"method": "GET", "url": "http://evil.example/x"}}]),
        path="",
    ),
    _post("entry with an empty URL", _bundle("batch", [{"request": {"method": "DELETE", "url": ""}}]), path=""),
    _post(
        "nested batch",
        _bundle(
            "batch",
            [{"request": {"method": "POST", "url": ""}, "resource": {"resourceType": "Bundle", "type": "batch"}}],
        ),
        path="",
    ),
    _post(
        "self-referencing urn",
        _bundle(
            "transaction",
            [
                {
                    "fullUrl": "urn:uuid:00000000-0000-4000-8000-000000000001",
                    "request": {"method": "POST", "url": "Patient"},
                    "resource": {
                        "resourceType": "Patient",
                        "link": [
                            {"type": "seealso", "other": {"reference": "urn:uuid:00000000-0000-4000-8000-000000000001"}}
                        ],
                    },
                }
            ],
        ),
        path="",
    ),
    _post(
        "duplicate fullUrls",
        _bundle(
            "transaction",
            [
                {
                    "fullUrl": "urn:uuid:00000000-0000-4000-8000-000000000002",
                    "request": {"method": "POST", "url": "Patient"},
                    "resource": {"resourceType": "Patient"},
                },
                {
                    "fullUrl": "urn:uuid:00000000-0000-4000-8000-000000000002",
                    "request": {"method": "POST", "url": "Patient"},
                    "resource": {"resourceType": "Patient"},
                },
            ],
        ),
        path="",
    ),
    _post(
        "entry resource as string",
        _bundle("batch", [{"request": {"method": "POST", "url": "Patient"}, "resource": "x"}]),
        path="",
    ),
    _post("bundle entry not a list", '{"resourceType":"Bundle","type":"batch","entry":{"x":1}}', path=""),
]

BATTERY = {
    "malformed JSON": MALFORMED_JSON,
    "wrong JSON types": WRONG_TYPES,
    "huge and strange ids and paths": IDS_AND_PATHS,
    "impossible dates": BAD_DATES,
    "SQL and pattern metacharacters": INJECTION,
    "unknown modifiers and result parameters": MODIFIERS,
    "garbage headers": HEADERS,
    "broken patches and Bundles": BODIES,
}


@pytest.mark.requirement("fhir@49")
@pytest.mark.parametrize("family", list(BATTERY))
def test_hostile_requests_get_no_server_error(fhir_client: EvidenceClient, unique: str, family: str) -> None:
    """malformed requests are answered without a server error"""
    res_id = create(fhir_client, patient(unique))["id"]
    failures = []
    for case in BATTERY[family]:
        path = case.path.replace("{id}", res_id)
        body = case.body.replace(b"{id}", res_id.encode()) if case.body is not None else None
        params = list(case.params)
        if case.method == "GET" and "/" not in path and path not in ("metadata", "_history"):
            params.append(("identifier", scope(unique)) if path else ("_id", unique))  # only this check's data
        response = fhir_client.request(case.method, path, params=tuple(params), headers=case.headers, content=body)
        if response.status_code >= 500:
            failures.append(f"{case.label} ({case.method} {path[:80]}) answered {shown(response)[:160]}")
    assert not failures, (
        f"{len(failures)} of {len(BATTERY[family])} hostile requests ({family}) got a server error instead of a 4xx: "
        + " | ".join(failures)
    )
