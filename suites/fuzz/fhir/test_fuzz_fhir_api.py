"""Property-based fuzzing of the generic FHIR REST surface (schemathesis): no input breaks the server.

Every generated request goes through the lab's evidence client, so a failing example is in the
report with its exact request and response.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from schemathesis import Case
from schemathesis.openapi import from_path

from eqlab.checks import EvidenceClient

SPEC = Path(__file__).with_name("openapi.yaml")


@pytest.fixture(scope="session")
def fhir_api(fuzz_params: dict[str, Any]) -> Any:
    api = from_path(SPEC)
    operations = [o.strip() for o in str(fuzz_params.get("operations", "")).split(",") if o.strip()]
    return api.include(operation_id=operations) if operations else api


schema = schemathesis.pytest.from_fixture("fhir_api")


def _send(case: Case[Any], client: EvidenceClient) -> Any:
    kwargs = case.as_transport_kwargs(base_url=str(client.base_url).rstrip("/"))
    body = kwargs.get("json")
    content = kwargs.get("data") if body is None else None
    return client.request(
        kwargs["method"],
        kwargs["url"],
        params=kwargs.get("params"),
        headers={k: str(v) for k, v in (kwargs.get("headers") or {}).items()},
        json=body,
        content=content,
    )


@pytest.mark.requirement("fhir@49", "fhir@24")
@schema.parametrize()
def test_no_generated_request_breaks_the_server(case: Case[Any], fhir_client: EvidenceClient) -> None:
    """Generated requests never cause a server error, and every error is an OperationOutcome."""
    response = _send(case, fhir_client)
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path} answered {response.status_code}: {response.text[:300]}"
    )
    if response.status_code >= 400:
        try:
            body = response.json()
        except ValueError:  # not JSON at all (text/plain, HTML, empty)
            body = None
        assert isinstance(body, dict) and body.get("resourceType") == "OperationOutcome", (
            f"a {response.status_code} answer is not an OperationOutcome "
            f"({response.headers.get('content-type', 'no Content-Type')}): {response.text[:300]}"
        )
