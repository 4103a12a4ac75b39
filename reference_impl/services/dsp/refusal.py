"""How the DSP refuses a write: 422 (a business rule of SPEC section 5) naming the faulty element."""

from __future__ import annotations

from reference_impl.fhir.errors import FhirError, Issue


def refused(diagnostics: str, code: str, *expression: str) -> FhirError:
    return FhirError(422, [Issue(diagnostics, code, expression=expression)])
