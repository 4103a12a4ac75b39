"""The patient index as a client (SPEC §3): an identity source feeding its institution's records
(ITI-104) and an identity consumer finding people (PIXm ITI-83, PDQm ITI-78) and following merges.

The person and the institution come from the scenario's inputs (``EQLAB_INPUT_*``): a source is
told its institution's directory code, the local id and the demographics of the record to feed.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from reference_client.fhir import expect
from reference_client.smart import ScenarioFailed

if TYPE_CHECKING:
    from reference_client.client import Client

NATIONAL_ID = "urn:oid:1.3.182.4.4"  # the matricule
PLATFORM_ID = "urn:oid:1.3.182.2.4.2"  # assigned by the index, never by a source
LOCAL_ID_PREFIX = PLATFORM_ID + "."  # + the institution's directory code
ORGANIZATION_ID = "urn:oid:1.3.182.3.2"  # an institution's directory code
FIRST_SITE = "1001"  # the source-wrong-local-system fault's one local system, whatever the institution
MAX_HOPS = 5  # replaced-by links followed: a chain of merges is short
FISHING_COUNT = 1000  # the consumer-fishing-search fault fetches this many patients and filters them itself
UPDATED_PHONE = "+352 20 00 00 01"


# --- identity source --------------------------------------------------------------------------


def _record(client: Client, institution: str, local_id: str) -> dict[str, Any]:
    """The Patient the source feeds: its own local id, the matricule and the demographics it holds."""
    inputs = client.config
    system = LOCAL_ID_PREFIX + (FIRST_SITE if "source-wrong-local-system" in client.faults else institution)
    matricule = inputs.input("matricule", "")
    if "source-invalid-matricule" in client.faults:
        matricule = matricule[:-1] + ("1" if matricule.endswith("0") else "0")  # another Verhoeff digit
    identifier = [
        {"use": "usual", "system": system, "value": local_id},
        {"use": "official", "system": NATIONAL_ID, "value": matricule},
    ]
    if "source-invents-platform-id" in client.faults:
        identifier.append({"use": "official", "system": PLATFORM_ID, "value": str(uuid.uuid4())})
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "identifier": identifier,
        "active": True,
        "managingOrganization": {"identifier": {"system": ORGANIZATION_ID, "value": institution}},
        "name": [{"use": "official", "family": inputs.input("family", ""), "given": [inputs.input("given", "")]}],
        "gender": inputs.input("gender", ""),
        "birthDate": inputs.input("birthdate", ""),
    }
    if "source-no-birthdate" in client.faults:
        del patient["birthDate"]
    return patient


def _feed(client: Client, patient: dict[str, Any], what: str) -> int:
    """ITI-104: the conditional update on the record's local id creates it or updates it; the status."""
    system, value = patient["identifier"][0]["system"], patient["identifier"][0]["value"]
    answer = client.fhir.request("PUT", "Patient?" + urlencode({"identifier": f"{system}|{value}"}), patient)
    expect(answer, 200, 201, what=what)
    return answer.status_code


SOURCE_INPUTS = ("institution", "local_id", "matricule", "family", "given", "birthdate", "gender")


def _source_inputs(client: Client) -> tuple[str, str]:
    """The institution and the local id of the record to feed, once every input a feed needs is given."""
    client.config.require(**{f"input_{name}": client.config.input(name, "") for name in SOURCE_INPUTS})
    return client.config.input("institution", ""), client.config.input("local_id", "")


def feed_new(client: Client) -> None:
    """A person the institution registers: fed once."""
    institution, local_id = _source_inputs(client)
    _feed(client, _record(client, institution, local_id), f"feed {local_id}")


def feed_update(client: Client) -> None:
    """A person fed, then their phone number changes: the same record is fed again (an update)."""
    institution, local_id = _source_inputs(client)
    patient = _record(client, institution, local_id)
    _feed(client, patient, f"feed {local_id}")
    patient["telecom"] = [{"system": "phone", "value": UPDATED_PHONE, "use": "mobile"}]
    if "source-posts-duplicates" in client.faults:
        expect(client.fhir.request("POST", "Patient", patient), 201, what=f"create {local_id} again")
        return
    if _feed(client, patient, f"update {local_id}") != 200:
        raise ScenarioFailed(f"update {local_id}: the platform created a second record instead of updating the first")


# --- identity consumer ------------------------------------------------------------------------


def open_patient(client: Client, patient_id: str) -> str:
    """Read a patient and their observations; a record merged away is left for the one replacing it.
    The id of the patient whose record was opened."""
    for _ in range(MAX_HOPS):
        patient = expect(client.fhir.request("GET", f"Patient/{patient_id}"), 200, what=f"read Patient/{patient_id}")
        replacing = replaced_by(patient)
        if replacing is None or "consumer-ignores-merge" in client.faults:
            break
        patient_id = replacing
    else:
        raise ScenarioFailed(f"more than {MAX_HOPS} merges from Patient/{patient_id}: stopped")
    search = "Observation?" + urlencode({"subject": f"Patient/{patient_id}", "_count": "10"})
    expect(client.fhir.request("GET", search), 200, what=f"search {search}")
    return patient_id


def replaced_by(patient: dict[str, Any]) -> str | None:
    """The id of the Patient replacing a record merged away (active=false, link replaced-by), else None."""
    if patient.get("active") is not False:
        return None
    for link in patient.get("link", []):
        reference = str(link.get("other", {}).get("reference", ""))
        if link.get("type") == "replaced-by" and "Patient/" in reference:
            return reference.rsplit("Patient/", 1)[1]
    return None


def pix_resolve(client: Client) -> None:
    """From a local id to the person's records (PIXm), then open the first of them."""
    system, value = client.config.input("source_system", ""), client.config.input("local_id", "")
    client.config.require(input_source_system=system, input_local_id=value)
    source = value if "consumer-pix-without-system" in client.faults else f"{system}|{value}"
    query = [("sourceIdentifier", source)]
    if target := client.config.input("target_system", ""):
        query.append(("targetSystem", target))
    answer = expect(client.fhir.request("GET", "Patient/$ihe-pix?" + urlencode(query)), 200, what="PIXm query")
    records = [
        str(part["valueReference"]["reference"]).rsplit("Patient/", 1)[-1]
        for part in answer.get("parameter", [])
        if part.get("name") == "targetId" and isinstance(part.get("valueReference"), dict)
    ]
    if not records:
        raise ScenarioFailed(f"PIXm found no record of {system}|{value}")
    open_patient(client, records[0])


def pdq_find(client: Client) -> None:
    """Find a person by name and birth date (PDQm), then open their record."""
    family, given, born = (client.config.input(name, "") for name in ("family", "given", "birthdate"))
    client.config.require(input_family=family, input_given=given, input_birthdate=born)
    if "consumer-fishing-search" in client.faults:
        search = [("_count", str(FISHING_COUNT))]
    else:
        birth = "birthDate" if "consumer-element-as-parameter" in client.faults else "birthdate"
        search = [("family:exact", family), ("given", given), (birth, born)]
    bundle = expect(client.fhir.request("GET", "Patient?" + urlencode(search)), 200, what="PDQm search")
    found = [
        entry["resource"] for entry in bundle.get("entry", []) if _is(entry.get("resource", {}), family, given, born)
    ]
    if not found:
        raise ScenarioFailed(f"PDQm found nobody named {given} {family} born {born}")
    current = [p for p in found if replaced_by(p) is None] or found
    open_patient(client, str(current[0]["id"]))


def _is(patient: dict[str, Any], family: str, given: str, born: str) -> bool:
    names = patient.get("name", [])
    return patient.get("birthDate") == born and any(
        n.get("family") == family and given in n.get("given", []) for n in names
    )


def merged_patient(client: Client) -> None:
    """Open a patient's record by id (the platform may answer that it was merged away)."""
    open_patient(client, client.patient)
