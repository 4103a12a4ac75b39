"""Who is asking: what the access token says about the caller."""

from __future__ import annotations

from dataclasses import dataclass

from reference_impl.auth.scopes import Scopes


@dataclass(frozen=True)
class Principal:
    client_id: str
    subject: str  # "sub": the user's username, or the client id for a system token
    role: str  # "subject_role": a practitioner role code, "patient", "auditor" or "system"
    scopes: Scopes
    jti: str
    expires_at: int  # epoch seconds
    person_id: str | None = None  # the national identification number of the person
    patient_id: str | None = None  # for patient tokens: the Patient resource they may see
    fhir_user: str | None = None  # e.g. "PractitionerRole/role-001"
    purpose_of_use: str | None = None  # TREAT, EMERGENCY or PATRQT

    @property
    def is_patient(self) -> bool:
        return self.role == "patient"

    @property
    def is_system(self) -> bool:
        return self.role == "system"
