"""No side door into data the token may not read: includes, chains, _has and conditional matching
answer as if every resource they touch were read directly (auth@36-38).

The other patient, their observation and the practitioner linking them are created by the check
with the plan's system token, so the data a patient must not reach surely exists; the system token
first proves that the include, chain or condition does reach it.
"""

from __future__ import annotations

import httpx
import pytest

from eqlab.checks import EvidenceClient
from suites.contract.auth.support import Tokens
from suites.contract.fhir_toolkit import (
    Resource,
    body_of,
    create,
    entries,
    observation,
    patient,
    search,
    shown,
    tag,
)

NOBODY = "no-such-patient-{unique}"


def _other_patients_world(fhir_client: EvidenceClient, unique: str) -> tuple[Resource, Resource, Resource]:
    """A practitioner, another patient whose general practitioner they are, and that patient's
    observation performed by them: (practitioner, patient, observation)."""
    doctor = create(
        fhir_client, {"resourceType": "Practitioner", "identifier": [tag(unique)], "name": [{"family": "Kieffer"}]}
    )
    other = create(
        fhir_client,
        patient(unique, f"Other{unique[-6:]}", generalPractitioner=[{"reference": f"Practitioner/{doctor['id']}"}]),
    )
    obs = create(
        fhir_client,
        observation(unique, f"Patient/{other['id']}", performer=[{"reference": f"Practitioner/{doctor['id']}"}]),
    )
    return doctor, other, obs


def _leaked(bundle: Resource, forbidden: set[str]) -> list[str]:
    return sorted({f"{r.get('resourceType')}/{r.get('id')}" for r in entries(bundle, "include")} & forbidden)


def _included_answer(client: EvidenceClient, path: str, params: list[tuple[str, str]], who: str) -> Resource | None:
    """The Bundle of an include search, or None when the server refuses it (403): both are safe."""
    response = client.get(path, params=tuple(params))
    if response.status_code == 403:
        return None
    assert response.status_code == 200, f"{who}'s search {path} with includes answered {shown(response)}"
    return body_of(response, f"{who}'s search {path}")


@pytest.mark.requirement("auth@36")
def test_a_patient_gets_no_other_patients_data_through_revinclude(
    fhir_client: EvidenceClient, tokens: Tokens, unique: str
) -> None:
    """_revinclude from a directory resource never hands a patient's token another patient's data"""
    doctor, other, obs = _other_patients_world(fhir_client, unique)
    params = [
        ("_id", doctor["id"]),
        ("_revinclude", "Patient:general-practitioner"),
        ("_revinclude", "Observation:performer"),
    ]
    forbidden = {f"Patient/{other['id']}", f"Observation/{obs['id']}"}
    everything = search(fhir_client, "Practitioner", params)
    assert forbidden <= {f"{r.get('resourceType')}/{r.get('id')}" for r in entries(everything, "include")}, (
        "the system token's Practitioner search with _revinclude did not include the other patient's data, "
        "so this check cannot show what a patient's token gets (see fhir@32)"
    )
    with tokens.client_for("patient") as client:
        bundle = _included_answer(client, "Practitioner", params, "the patient")
    leaked = _leaked(bundle, forbidden) if bundle else []
    assert not leaked, (
        f"a patient's token searching Practitioner/{doctor['id']} with _revinclude received another patient's "
        f"{', '.join(leaked)}: included resources must pass the same compartment check as a direct read"
    )


@pytest.mark.requirement("auth@36")
@pytest.mark.parametrize("who", ["patient", "system"])
def test_includes_never_reach_a_type_outside_the_scopes(
    fhir_client: EvidenceClient, tokens: Tokens, unique: str, who: str
) -> None:
    """a token scoped to Patient alone receives no Observation through _revinclude"""
    if who == "patient":
        own = tokens.user("patient").patient
        assert own, "the patient's token response names no patient (SMART launch context)"
        create(fhir_client, observation(unique, f"Patient/{own}"))
        subject, principal, scope = own, "patient", "openid fhirUser launch/patient patient/Patient.rs"
    else:
        subject = create(fhir_client, patient(unique))["id"]
        create(fhir_client, observation(unique, f"Patient/{subject}"))
        principal, scope = "system", "system/Patient.rs"
    params = [("_id", subject), ("_revinclude", "Observation:subject")]
    assert any(
        r.get("resourceType") == "Observation" for r in entries(search(fhir_client, "Patient", params), "include")
    )
    with tokens.client_for(principal, scope) as client:
        direct = client.get("Observation", params={"subject": f"Patient/{subject}"})
        bundle = _included_answer(client, "Patient", params, f"the {who} token scoped {scope}")
    assert direct.status_code == 403, f"a token scoped {scope!r} searching Observation got {shown(direct)}"
    leaked = [r for r in entries(bundle, "include") if r.get("resourceType") == "Observation"] if bundle else []
    assert not leaked, (
        f"a {who} token scoped {scope!r} may not search Observation (403), yet Patient?_revinclude=Observation:subject "
        f"gave it {len(leaked)} Observation(s): includes must pass the token's scopes"
    )


def _total(client: EvidenceClient, path: str, params: dict[str, str], what: str) -> tuple[int, int | None]:
    response = client.get(path, params=params)
    if response.status_code != 200:
        return response.status_code, None
    total = body_of(response, what).get("total")
    return 200, total if isinstance(total, int) else len(entries(body_of(response, what)))


def _patient_totals(
    tokens: Tokens, path: str, first: dict[str, str], second: dict[str, str]
) -> tuple[tuple[int, int | None], tuple[int, int | None]]:
    """What the patient's token gets for two searches of ``path``: (status, total) of each."""
    with tokens.client_for("patient") as client:
        return _total(client, path, first, f"the patient's search of {path}"), _total(
            client, path, second, f"the patient's search of {path}"
        )


@pytest.mark.requirement("auth@37")
def test_a_chain_does_not_reveal_another_patients_name(
    fhir_client: EvidenceClient, tokens: Tokens, unique: str
) -> None:
    """a patient's chained search over a reference to another patient answers alike for their true and a false name"""
    own = tokens.user("patient").patient
    assert own, "the patient's token response names no patient (SMART launch context)"
    family = f"Other{unique[-6:]}"
    other = create(fhir_client, patient(unique, family))
    code = f"chain-{unique}"
    mine = observation(unique, f"Patient/{own}", performer=[{"reference": f"Patient/{other['id']}"}])
    create(fhir_client, {**mine, "code": {"text": code}})
    params = {"code:text": code, "performer:Patient.family": family}
    wrong = {**params, "performer:Patient.family": "Zz" + unique[-6:]}
    assert (_total(fhir_client, "Observation", params, "x"), _total(fhir_client, "Observation", wrong, "x")) == (
        (200, 1),
        (200, 0),
    ), "the system token's chained search does not select by the performer's family: see fhir@43"
    true_name, false_name = _patient_totals(tokens, "Observation", params, wrong)
    assert true_name == false_name, (
        f"a patient's chained search performer:Patient.family answered {true_name} for the other patient's real "
        f"family name and {false_name} for a false one: the chain looks into another patient's record"
    )


@pytest.mark.requirement("auth@37")
def test_has_does_not_reveal_another_patients_record(fhir_client: EvidenceClient, tokens: Tokens, unique: str) -> None:
    """a patient's _has search naming another patient answers as for a patient who does not exist"""
    _, other, _ = _other_patients_world(fhir_client, unique)
    name = "_has:Observation:performer:subject"
    theirs, nobodys = {name: f"Patient/{other['id']}"}, {name: f"Patient/{NOBODY.format(unique=unique)}"}
    assert _total(fhir_client, "Practitioner", theirs, "x")[1], (
        "the system token's _has search found nothing: see fhir@44"
    )
    real, missing = _patient_totals(tokens, "Practitioner", theirs, nobodys)
    assert real == missing, (
        f"a patient's Practitioner?{name}=<another patient> answered {real}, and {missing} for a patient who does not "
        f"exist: _has looks into another patient's record"
    )


def _comparable(response: httpx.Response, *blanked: str) -> tuple[int, str]:
    text = response.text
    for value in blanked:
        text = text.replace(value, "<id>")
    return response.status_code, text if response.status_code >= 400 else ""


@pytest.mark.requirement("auth@38")
@pytest.mark.parametrize("interaction", ["delete", "create", "update"])
def test_conditional_interactions_do_not_reveal_another_patients_data(
    fhir_client: EvidenceClient, tokens: Tokens, unique: str, interaction: str
) -> None:
    """a patient's conditional delete, create or update answers alike whether its criteria match another
    patient's data or nothing"""
    own = tokens.user("patient").patient
    assert own, "the patient's token response names no patient (SMART launch context)"
    other = create(fhir_client, patient(unique))
    obs = create(fhir_client, observation(unique, f"Patient/{other['id']}"))
    missing = f"nothing-{unique}"
    with tokens.client_for("patient") as client:
        if interaction == "delete":
            theirs, nobodys = (client.delete("Observation", params={"_id": i}) for i in (obs["id"], missing))
        elif interaction == "create":
            mine = observation(unique, f"Patient/{own}")
            theirs, nobodys = (
                client.post("Observation", json=mine, headers={"If-None-Exist": f"_id={i}"})
                for i in (obs["id"], missing)
            )
        else:
            mine = observation(unique, f"Patient/{own}")
            theirs, nobodys = (client.put("Observation", params={"_id": i}, json=mine) for i in (obs["id"], missing))
    blanked = (obs["id"], missing)
    assert _comparable(theirs, *blanked) == _comparable(nobodys, *blanked), (
        f"a patient's conditional {interaction} matching another patient's Observation answered {shown(theirs)}, "
        f"and matching nothing {shown(nobodys)}: the answer tells whether the other patient's data exists"
    )
