"""Bad input gets the right status and an OperationOutcome, and changes nothing."""

from __future__ import annotations

import httpx
import pytest

from tests.reference_impl.rest.helpers import FHIR_JSON, JSON_HEADERS, assert_outcome, create, patient, put

MIB = 1024 * 1024


def _count(fhir: httpx.Client, type_name: str = "Patient") -> int:
    total: int = fhir.get(type_name, params={"_summary": "count"}).json()["total"]
    return total


def test_malformed_json(fhir: httpx.Client) -> None:
    assert_outcome(fhir.post("Patient", content=b'{"resourceType": "Patient",', headers=JSON_HEADERS), 400, "structure")
    assert_outcome(fhir.post("Patient", content=b"\xff\xfe not utf-8", headers=JSON_HEADERS), 400)
    assert_outcome(fhir.post("Patient", content=b"[1, 2]", headers=JSON_HEADERS), 400)
    assert_outcome(fhir.post("Patient", content=b"", headers=JSON_HEADERS), 400)
    assert _count(fhir) == 0


def test_wrong_resource_type_for_url(fhir: httpx.Client) -> None:
    outcome = assert_outcome(fhir.post("Patient", json={"resourceType": "Observation"}, headers=JSON_HEADERS), 400)
    assert outcome["issue"][0]["expression"] == ["resourceType"]
    assert_outcome(fhir.post("Patient", json={"name": []}, headers=JSON_HEADERS), 400, "required")


def test_id_mismatch_on_update(fhir: httpx.Client) -> None:
    created = create(fhir, patient())
    outcome = assert_outcome(
        fhir.put(f"Patient/{created['id']}", json={**created, "id": "other"}, headers=JSON_HEADERS), 400
    )
    assert outcome["issue"][0]["expression"] == ["id"]


def test_unknown_resource_type_and_path(fhir: httpx.Client) -> None:
    assert_outcome(fhir.get("Foo/1"), 404)
    assert_outcome(fhir.post("Foo", json={"resourceType": "Foo"}, headers=JSON_HEADERS), 404)
    assert_outcome(fhir.get("patient/1"), 404)  # type names are case sensitive
    # R4B models differ from R4 for these: not served rather than validated wrongly
    assert_outcome(fhir.get("MedicinalProduct"), 404)
    assert_outcome(fhir.get("Patient/1/foo/bar/baz"), 404)


def test_invalid_resource_id_in_url(fhir: httpx.Client) -> None:
    assert_outcome(fhir.get("Patient/" + "x" * 65), 400)
    assert_outcome(fhir.get("Patient/a_b"), 400)
    # A line break ends the web framework's path pattern: the FHIR router must still answer (the fuzz
    # suite found a bare {"detail": "Not Found"} here).
    assert_outcome(fhir.put("Patient/%0Aabc", json=patient(), headers=JSON_HEADERS), 400)
    assert_outcome(fhir.get("Patient/a%0Ab/_history"), 400)
    assert_outcome(fhir.get("%0APatient"), 404)
    # "$" in a pattern matches before a final line break: an id may not end with one either.
    assert_outcome(fhir.get("Patient/abc%0A"), 400)
    assert_outcome(fhir.get("Observation", params={"subject": "abc\n"}), 400)


@pytest.mark.parametrize(
    ("resource", "expression"),
    [
        ({"resourceType": "Patient", "gender": "robot"}, "Patient.gender"),
        ({"resourceType": "Patient", "name": [{"family": 42}]}, "Patient.name[0].family"),
        ({"resourceType": "Patient", "birthDate": "17/05/1980"}, "Patient.birthDate"),
        ({"resourceType": "Patient", "favouriteColour": "blue"}, "Patient.favouriteColour"),
        ({"resourceType": "Patient", "link": [{"type": "seealso"}]}, "Patient.link[0].other"),
        ({"resourceType": "Observation", "status": "final"}, "Observation.code"),
        ({"resourceType": "Patient", "contained": [{"resourceType": "Nonsense"}]}, "Patient.contained[0]"),
    ],
)
def test_invalid_element_names_its_path(
    fhir_unwritten: httpx.Client, resource: dict[str, object], expression: str
) -> None:
    response = fhir_unwritten.post(str(resource["resourceType"]), json=resource, headers=JSON_HEADERS)
    outcome = assert_outcome(response, 400)
    expressions = [e for issue in outcome["issue"] for e in issue.get("expression", [])]
    assert expression in expressions, outcome


def test_unknown_type_inside_bundle_does_not_crash(fhir: httpx.Client) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": {"resourceType": "Nonsense", "x": 1}}],
    }
    outcome = assert_outcome(fhir.post("Bundle", json=bundle, headers=JSON_HEADERS), 400, "not-supported")
    assert "Nonsense" in outcome["issue"][0]["diagnostics"]
    transaction = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": {"resourceType": "Nonsense"}, "request": {"method": "POST", "url": "Nonsense"}}],
    }
    assert_outcome(fhir.post("", json=transaction, headers=JSON_HEADERS), 404)


def test_wrong_if_match(fhir: httpx.Client) -> None:
    created = create(fhir, patient())
    for value in ('W/"2"', '"0"', "garbage"):
        assert_outcome(put(fhir, created, **{"If-Match": value}), 412)
    assert_outcome(put(fhir, {**created, "id": "new-one"}, **{"If-Match": 'W/"1"'}), 412)


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/xml", "application/fhir+xml", "application/x-www-form-urlencoded"]
)
def test_unsupported_media_type(fhir_unwritten: httpx.Client, content_type: str) -> None:
    response = fhir_unwritten.post(
        "Patient", content=b'{"resourceType":"Patient"}', headers={"Content-Type": content_type}
    )
    assert_outcome(response, 415)
    assert _count(fhir_unwritten) == 0


def test_missing_content_type_and_wrong_charset(fhir: httpx.Client) -> None:
    assert_outcome(fhir.post("Patient", content=b'{"resourceType":"Patient"}'), 415)
    assert_outcome(
        fhir.post(
            "Patient", content=b'{"resourceType":"Patient"}', headers={"Content-Type": f"{FHIR_JSON}; charset=latin-1"}
        ),
        415,
    )
    assert (
        fhir.post(
            "Patient", content=b'{"resourceType":"Patient"}', headers={"Content-Type": f"{FHIR_JSON}; charset=UTF-8"}
        ).status_code
        == 201
    )


@pytest.mark.parametrize(
    "accept", ["application/fhir+xml", "text/html", "application/xml", "application/fhir+json; fhirVersion=3.0"]
)
def test_unacceptable_accept_is_406_and_nothing_is_written(fhir: httpx.Client, accept: str) -> None:
    assert_outcome(fhir.get("metadata", headers={"Accept": accept}), 406)
    assert_outcome(fhir.post("Patient", json=patient(), headers={**JSON_HEADERS, "Accept": accept}), 406)
    assert _count(fhir) == 0


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, FHIR_JSON),
        ("*/*", FHIR_JSON),
        ("application/json", "application/json"),
        ("application/fhir+json;q=0.9, application/xml", FHIR_JSON),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", FHIR_JSON),
        ("application/fhir+json; fhirVersion=4.0", FHIR_JSON),
    ],
)
def test_accept_negotiation(fhir_unwritten: httpx.Client, accept: str | None, expected: str) -> None:
    response = fhir_unwritten.get("metadata", headers={"Accept": accept} if accept else {})
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == expected


def test_a_repeated_accept_header_counts_all_its_values(fhir: httpx.Client) -> None:
    # RFC 9110 5.3: two Accept fields mean the same as one listing both values.
    for both in (
        [("Accept", "application/xml"), ("Accept", "application/json")],
        [("Accept", "application/json"), ("Accept", "application/xml")],
    ):
        assert fhir.get("metadata", headers=both).headers["content-type"].startswith("application/json")
    assert_outcome(fhir.get("metadata", headers=[("Accept", "application/xml"), ("Accept", "text/html")]), 406)


@pytest.mark.parametrize("host", ["fhir.example.lu", "fhir.example.lu:8443", "127.0.0.1:9"])
def test_the_base_in_answers_is_the_host_the_client_named(fhir: httpx.Client, host: str) -> None:
    del fhir.headers["Authorization"]  # its token is for the server's own address
    for _ in range(2):  # the second answer from what the first remembered
        capabilities = fhir.get("metadata", headers={"Host": host}).json()
        assert capabilities["implementation"]["url"] == f"http://{host}/fhir"


def test_format_parameter(fhir: httpx.Client) -> None:
    assert fhir.get("metadata", params={"_format": "json"}).status_code == 200
    assert (
        fhir.get("metadata", params={"_format": "application/json"})
        .headers["content-type"]
        .startswith("application/json")
    )
    assert_outcome(fhir.get("metadata", params={"_format": "xml"}), 406)


def test_body_over_10_mib_is_413(fhir: httpx.Client) -> None:
    filler = "a" * (11 * MIB)
    body = ('{"resourceType":"Patient","text":{"status":"generated","div":"' + filler + '"}}').encode()
    assert_outcome(fhir.post("Patient", content=body, headers=JSON_HEADERS), 413, "too-costly")

    def chunks() -> object:
        for _ in range(11):
            yield b" " * MIB

    assert_outcome(fhir.post("Patient", content=chunks(), headers=JSON_HEADERS), 413)  # no Content-Length
    assert _count(fhir) == 0


def test_deep_nesting_is_400(fhir: httpx.Client) -> None:
    deep = '{"resourceType":"Patient","extension":' + "[" * 1000 + "]" * 1000 + "}"
    assert_outcome(fhir.post("Patient", content=deep, headers=JSON_HEADERS), 400, "too-costly")
    nested: dict[str, object] = {"url": "urn:x"}
    for _ in range(70):
        nested = {"url": "urn:x", "extension": [nested]}
    assert_outcome(
        fhir.post("Patient", json={"resourceType": "Patient", "extension": [nested]}, headers=JSON_HEADERS), 400
    )


def test_method_not_allowed_has_allow_header(fhir: httpx.Client) -> None:
    response = fhir.delete("metadata")
    assert_outcome(response, 405)
    assert response.headers["allow"] == "GET"
    assert_outcome(fhir.patch("Patient", json=[], headers=JSON_HEADERS), 405)


def test_request_id_is_echoed_or_generated(fhir: httpx.Client) -> None:
    assert fhir.get("metadata", headers={"X-Request-Id": "abc-123"}).headers["x-request-id"] == "abc-123"
    generated = fhir.get("Patient/unknown").headers["x-request-id"]
    assert len(generated) == 36
    assert (
        fhir.get("metadata", headers={"X-Request-Id": "bad id <script>"}).headers["x-request-id"] != "bad id <script>"
    )


def test_the_fhir_api_is_everything_under_its_base_but_the_authorization_servers_paths(fhir: httpx.Client) -> None:
    """``PlatformApp`` serves /fhir and below past FastAPI's router; the other routes keep the same outer
    layers (the request id here) and /fhir/.well-known/smart-configuration stays the authorization server's."""

    def at(path: str) -> str:
        return str(fhir.base_url.copy_with(path=path))

    smart = fhir.get(".well-known/smart-configuration")
    assert smart.status_code == 200 and "token_endpoint" in smart.json()
    assert fhir.get(at("/fhir")).json()["resourceType"] == "Bundle"  # the base itself: a search of every type
    jwks = fhir.get(at("/auth/jwks"), headers={"X-Request-Id": "jwks-1"})
    assert jwks.status_code == 200 and jwks.headers["x-request-id"] == "jwks-1"
    beside = fhir.get(at("/fhirish/Patient"))
    assert beside.status_code == 404 and "resourceType" not in beside.json()  # not under the base


def test_every_error_names_itself_in_an_operation_outcome(fhir: httpx.Client) -> None:
    for response in (
        fhir.get("Patient/nope"),
        fhir.post("Patient", content=b"{", headers=JSON_HEADERS),
        fhir.get("Patient", params={"birthdate": "never"}),
        fhir.put("Patient", json=patient(), headers=JSON_HEADERS),
        fhir.post("", json={"resourceType": "Bundle", "type": "document"}, headers=JSON_HEADERS),
        fhir.get("$nonexistent-operation"),
    ):
        assert response.status_code >= 400
        assert_outcome(response, response.status_code)


@pytest.mark.parametrize("method", ["OPTIONS", "TRACE", "PROPFIND", "QUERY"])
def test_any_method_gets_an_operation_outcome(fhir_unwritten: httpx.Client, method: str) -> None:
    assert_outcome(fhir_unwritten.request(method, "metadata"), 405)


@pytest.mark.parametrize(
    "query",
    [
        "Patient?_offset=99999999999999999999999",
        "Patient/_history?_offset=99999999999999999999999",
        "Patient?_count=٣",  # a non-ASCII digit
        "Patient?birthdate=ap9999-12-31T23:59:59-14:00",
        "Patient?birthdate=ap0001-01-01T00:00:00%2B14:00",
        "Patient/x/_history/99999999999999999999999",
    ],
)
def test_extreme_values_are_answered_not_crashed(fhir_unwritten: httpx.Client, query: str) -> None:
    response = fhir_unwritten.get(query)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert_outcome(response, response.status_code)


@pytest.mark.parametrize(
    ("resource", "expression"),
    [
        ({"resourceType": "Patient", "active": "yes"}, "Patient.active"),
        ({"resourceType": "Patient", "active": 1}, "Patient.active"),
        ({"resourceType": "Patient", "multipleBirthInteger": "2"}, "Patient.multipleBirthInteger"),
        ({"resourceType": "Patient", "deceasedBoolean": "false"}, "Patient.deceasedBoolean"),
        ({"resourceType": "Patient", "name": [{"family": "Nul\u0000Byte"}]}, "Patient.name[0].family"),
        ({"resourceType": "Patient", "name": [{"given": ["Bell\u0007"]}]}, "Patient.name[0].given[0]"),
    ],
)
def test_wrong_json_types_and_control_characters_are_refused(
    fhir_unwritten: httpx.Client, resource: dict[str, object], expression: str
) -> None:
    outcome = assert_outcome(fhir_unwritten.post("Patient", json=resource, headers=JSON_HEADERS), 400)
    assert expression in [e for issue in outcome["issue"] for e in issue.get("expression", [])]
    assert _count(fhir_unwritten) == 0
