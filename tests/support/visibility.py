"""A caller who sees one patient's record only (a patient's own token), as the store's searches take a
caller (``fhir.query.Visibility``): for tests that run searches on a store without the server's policy."""

from __future__ import annotations

from dataclasses import dataclass

from reference_impl.fhir.query import Reach
from reference_impl.fhir.structure import patient_compartment


@dataclass(frozen=True)
class OwnRecord:
    """``patient``'s record: each type reached by ``via``, or by the patient compartment's parameters of that
    type (as ``auth.policy`` reaches it); ``types`` are those the caller does not see in full."""

    patient: str
    types: tuple[str, ...]
    via: tuple[str, ...] | None = None

    def of(self, type_name: str, kind: str) -> Reach:
        via = self.via if self.via is not None else patient_compartment().get(type_name, ())
        return Reach(patient=self.patient, via=via)

    def limited(self, kind: str) -> dict[str, Reach]:
        return {type_name: self.of(type_name, kind) for type_name in self.types}

    def judged_one_by_one(self, type_name: str) -> bool:
        return False
