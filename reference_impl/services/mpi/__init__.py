"""Patient identity (MPI), SPEC section 3: so far, the matricule check on every Patient write."""

from __future__ import annotations

from typing import Any

from reference_impl.fhir.errors import FhirError, Issue
from reference_impl.rest.handler import Context
from reference_impl.services.descriptor import Service
from reference_impl.services.mpi import matricule


def check_matricules(_ctx: Context, patient: dict[str, Any]) -> None:
    """A Patient's national identifiers must be valid matricules (422 naming the identifier)."""
    issues = [
        Issue(
            f"invalid matricule {identifier.get('value')!r}: {why}", "value", expression=(f"Patient.identifier[{i}]",)
        )
        for i, identifier in enumerate(patient.get("identifier") or ())
        if isinstance(identifier, dict) and identifier.get("system") == matricule.SYSTEM
        for why in [matricule.problem(str(identifier.get("value", "")))]
        if why is not None
    ]
    if issues:
        raise FhirError(422, issues)


SERVICE = Service("mpi", "Patient identity (MPI)", checks={"Patient": (check_matricules,)})
