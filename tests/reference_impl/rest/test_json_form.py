"""FHIR JSON answers hold no empty arrays or objects; large answers are gzipped; /metadata?_summary=true is small."""

from __future__ import annotations

import copy
from typing import Any

import httpx
from hypothesis import given
from hypothesis import strategies as st

from reference_impl.rest.http import without_empty
from tests.reference_impl.rest.helpers import JSON_HEADERS, patient

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=2), inner, max_size=4),
    max_leaves=30,
)


def empties(value: Any, path: str = "$") -> list[str]:
    if value in ([], {}):
        return [path]
    if isinstance(value, dict):
        return [found for key, item in value.items() for found in empties(item, f"{path}.{key}")]
    if isinstance(value, list):
        return [found for i, item in enumerate(value) for found in empties(item, f"{path}[{i}]")]
    return []


def pruned_plainly(value: Any) -> Any:
    """What ``without_empty`` must give, said the plainest way: prune the children, then drop the empty."""
    if isinstance(value, dict):
        pruned = {key: pruned_plainly(item) for key, item in value.items()}
        return {key: item for key, item in pruned.items() if item not in ([], {})}
    if isinstance(value, list):
        return [kept for kept in (pruned_plainly(item) for item in value) if kept not in ([], {})]
    return value


@given(JSON_VALUES)
def test_empty_arrays_and_objects_are_left_out_at_any_depth_and_nothing_else(value: Any) -> None:
    before = copy.deepcopy(value)
    pruned = without_empty(value)
    assert pruned == pruned_plainly(value)
    assert value == before  # the answer's own body is never changed in place
    if pruned == value and value not in ([], {}):
        assert pruned is value  # nothing to leave out: no copy


def test_falsy_values_that_are_not_empty_containers_are_kept() -> None:
    value = {"a": 0, "b": False, "c": "", "d": None, "e": [[], {}, 0], "f": {"g": []}}
    assert without_empty(value) == {"a": 0, "b": False, "c": "", "d": None, "e": [0]}


def test_batch_answer_and_capability_statement_hold_no_empty_arrays(fhir: httpx.Client) -> None:
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [{"resource": patient("Leer"), "request": {"method": "POST", "url": "Patient"}}],
    }
    answer = fhir.post("", json=batch, headers=JSON_HEADERS)
    assert answer.status_code == 200
    assert empties(answer.json()) == []
    assert empties(fhir.get("metadata").json()) == []


def test_large_answers_are_gzipped_when_asked(fhir: httpx.Client) -> None:
    zipped = fhir.get("metadata", headers={"Accept-Encoding": "gzip"})
    plain = fhir.get("metadata", headers={"Accept-Encoding": "identity"})
    assert zipped.headers.get("content-encoding") == "gzip"
    assert "content-encoding" not in plain.headers
    assert zipped.json()["rest"] == plain.json()["rest"]
    small = fhir.get("Patient/missing-one", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in small.headers  # under the 1 KB threshold


def test_metadata_summary_is_much_smaller(fhir: httpx.Client) -> None:
    whole = fhir.get("metadata")
    summary = fhir.get("metadata", params={"_summary": "true"})
    assert summary.status_code == 200
    body = summary.json()
    assert body["resourceType"] == "CapabilityStatement" and "searchParam" not in body["rest"][0]["resource"][0]
    assert any(t.get("code") == "SUBSETTED" for t in body["meta"]["tag"])
    assert len(summary.content) * 4 < len(whole.content)
