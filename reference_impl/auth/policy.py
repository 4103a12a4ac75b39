"""The access policy: the one place that decides allow or deny, with a reason (SPEC section 2).

Rules, in order: conformance and terminology resources are public; everything else needs a
valid token; AuditEvents are append-only and written by the platform alone; the token's SMART
scopes must grant the interaction on the type; AuditEvents are for their patient, auditors and
systems; a patient token reaches only the patient's own compartment (and directory data).
Further rules (the care relationship of the services) are added to ``AccessPolicy.rules`` and run
after these: each is asked a ``Question`` about every resource read, written or included, and about
every search before it runs (its criteria, so a rule can refuse the search itself, whatever data
exists); it gets the request's transaction, since such rules depend on data (care teams, consents).

The same decision covers every door into the data, not only the requested type: ``Visibility``
asks ``decide`` for each other type a request touches (included resources, chained and ``_has``
sub-queries, conditional matching) and the search SQL applies its answer, so a resource reaches a
caller through a side door only if the caller could read it directly.

A refusal is a 403 whose wording never depends on whether the other patient's data exists, so a
patient cannot probe for other patients (403 for "someone else's" and "nobody's" alike).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from sqlalchemy import Connection

from reference_impl.auth.principal import Principal
from reference_impl.auth.scopes import INTERACTION_LETTERS
from reference_impl.faults import FaultSwitches, declare
from reference_impl.fhir.errors import FhirError, Issue, not_found
from reference_impl.fhir.query import EVERYTHING, Reach, SearchRequest, SeesEverything, Visibility
from reference_impl.fhir.searchparams import SearchParamRegistry
from reference_impl.fhir.structure import patient_compartment

SCOPE_NOT_ENFORCED = declare(
    "scope-not-enforced",
    "the FHIR API checks the token but ignores its SMART scopes: any valid token may do anything",
    ("auth@22", "auth@23", "auth@30"),
)
PATIENT_COMPARTMENT_LEAK = declare(
    "patient-compartment-leak",
    "a patient token is not limited to the patient's compartment: it reads other patients' data",
    ("auth@31", "audit@9"),
)
PATIENT_PROBE_404 = declare(
    "patient-probe-404",
    "for a patient token, a record that does not exist answers 404 while another patient's answers 403",
    ("auth@32",),
)
AUDIT_EVENTS_WRITABLE = declare(
    "audit-events-writable",
    "clients may create AuditEvents, e.g. a patient's fake entry in another patient's access log",
    ("audit@13",),
)
AUDIT_EVENTS_DELETABLE = declare(
    "audit-events-deletable", "AuditEvents can be updated, patched and deleted like any resource (no 405)", ("audit@7",)
)

# Definitional resources anyone may read: they describe the platform, not people.
PUBLIC_TYPES = frozenset(
    {
        "CapabilityStatement",
        "StructureDefinition",
        "SearchParameter",
        "OperationDefinition",
        "ValueSet",
        "CodeSystem",
        "ConceptMap",
        "NamingSystem",
    }
)
# Data about the health system rather than a person: a patient may look it up (who treated me?).
DIRECTORY_TYPES = frozenset(
    {
        "Practitioner",
        "PractitionerRole",
        "Organization",
        "Location",
        "HealthcareService",
        "Endpoint",
        "Medication",
        "Substance",
    }
)
# Written by the platform itself, never by a client: read-only on the API.
PLATFORM_WRITTEN = frozenset({"AuditEvent"})
PUBLIC_READS = frozenset({"read", "vread", "search-type", "history-instance", "history-type"})
NOT_PERMITTED = "you are not permitted to access this data"


@cache
def bearer_challenge(error: str, description: str) -> str:
    """A ``WWW-Authenticate: Bearer`` challenge (RFC 6750 §3). The description may quote what a
    caller sent (a token's alg, a claim): it is cut to the characters RFC 6750 allows in it,
    printable ASCII without quote or backslash, so nothing a caller sends can end the quoted string,
    add a parameter or break the header's latin-1 encoding."""
    safe = "".join(c if " " <= c <= "~" and c not in '"\\' else "?" for c in description)[:200]
    return f'Bearer realm="eqlab", error="{error}", error_description="{safe}"'


def denied(status: int, reason: str, error: str) -> FhirError:
    code = "login" if status == 401 else "forbidden"
    return FhirError(status, [Issue(reason, code)], {"WWW-Authenticate": bearer_challenge(error, reason)})


def unauthenticated(reason: str) -> FhirError:
    return denied(401, reason, "invalid_token")


def forbidden(reason: str = NOT_PERMITTED, error: str = "insufficient_scope") -> FhirError:
    return denied(403, reason, error)


@dataclass(frozen=True)
class Access:
    """What the caller may do for this request: pass, or pass limited to one patient's compartment;
    ``visibility`` answers the same question for every other type the request touches."""

    principal: Principal | None
    compartment_patient: str | None = None  # the Patient id searches and reads are limited to
    visibility: Visibility = field(default_factory=SeesEverything, compare=False)
    conn: Connection | None = field(default=None, compare=False)  # the request's transaction, for the rules


class CallerVisibility:
    """A caller's reach into each resource type: ``AccessPolicy.decide``'s answer, asked per type."""

    def __init__(self, policy: AccessPolicy, principal: Principal | None) -> None:
        self._policy = policy
        self._principal = principal
        self._decided: dict[tuple[str, str], Reach] = {}

    def of(self, type_name: str, kind: str) -> Reach:
        key = (type_name, kind)
        reach = self._decided.get(key)
        if reach is None:
            reach = self._decided[key] = self._decide(type_name, kind)
        return reach

    def _decide(self, type_name: str, kind: str) -> Reach:
        try:
            patient = self._policy.decide(self._principal, kind, type_name, visibility=False).compartment_patient
        except FhirError as exc:
            return Reach(False, reason="; ".join(issue.diagnostics for issue in exc.issues))
        if patient is None:
            return EVERYTHING
        return Reach(True, patient, patient_compartment().get(type_name, ()))

    def limited(self, kind: str) -> dict[str, Reach]:
        served = self._policy.registry.structure.served_types
        return {t: reach for t in served if not (reach := self.of(t, kind)).unlimited}

    def judged_one_by_one(self, type_name: str) -> bool:
        return self._policy.judges(self._principal, type_name)


@dataclass(frozen=True)
class Question:
    """What a service's access rule is asked: may ``principal`` do ``kind`` on ``resource`` (read,
    written or included), or, when ``search`` is set, run that search of ``type_name`` at all?"""

    principal: Principal
    kind: str
    type_name: str
    resource: dict[str, Any] | None  # None for a search, or a read of something that does not exist
    conn: Connection | None  # the request's transaction (None when the platform asks outside a request)
    faults: FaultSwitches
    search: SearchRequest | None = None


Rule = Callable[[Question], None]  # raises FhirError to refuse
# The patients ("Patient/<id>") whose record holds a resource of a type outside the Patient
# compartment (a document's Binary): a patient token reads it only if it is theirs.
Owners = Callable[[Connection, dict[str, Any]], set[str]]


@dataclass
class AccessPolicy:
    registry: SearchParamRegistry
    rules: list[Rule] = field(default_factory=list)
    owners: dict[str, Owners] = field(default_factory=dict)  # per type outside the compartment (services')
    judged: set[str] = field(default_factory=set)  # types whose resources the services' rules judge one by one
    faults: FaultSwitches = field(default_factory=FaultSwitches)

    def judges(self, principal: Principal | None, type_name: str | None) -> bool:
        """Whether the services' rules judge ``type_name`` resource by resource for ``principal`` (systems
        are never judged so): its searches count only what the caller may read, and no chain or ``_has``
        reaches into it."""
        return type_name in self.judged and principal is not None and not principal.is_system

    def is_public(self, kind: str, type_name: str | None) -> bool:
        return kind == "capabilities" or (type_name in PUBLIC_TYPES and kind in PUBLIC_READS)

    def decide(
        self,
        principal: Principal | None,
        kind: str,
        type_name: str | None,
        visibility: bool = True,
        conn: Connection | None = None,
    ) -> Access:
        """Before the interaction runs: may this caller attempt it at all? (``visibility``: with the
        caller's reach into the other types, for a request that may touch them; ``conn``: the request's
        transaction, which the rules may read)"""
        access = self._decide(principal, kind, type_name)
        if not visibility:
            return access
        # Built, not dataclasses.replace()d: replace inspects the fields on every call.
        return Access(access.principal, access.compartment_patient, CallerVisibility(self, principal), conn)

    def _decide(self, principal: Principal | None, kind: str, type_name: str | None) -> Access:
        if self.is_public(kind, type_name):
            return Access(principal)
        if principal is None:
            raise unauthenticated("this request needs a valid bearer access token")
        if (
            type_name in PLATFORM_WRITTEN
            and kind in ("update", "patch", "delete")
            and not self.faults.on(AUDIT_EVENTS_DELETABLE)
        ):
            raise FhirError(
                405,
                [Issue("AuditEvents are append-only: they cannot be changed or deleted", "not-supported")],
                {"Allow": "GET"},
            )
        if type_name in PLATFORM_WRITTEN and kind == "create" and not self.faults.on(AUDIT_EVENTS_WRITABLE):
            # Only the platform records accesses: a client's event could put fake entries in a
            # patient's access log.
            raise forbidden("AuditEvents are written by the platform itself, never by a client", "access_denied")
        context = "patient" if principal.is_patient else "system" if principal.is_system else "user"
        letter = INTERACTION_LETTERS.get(kind)
        if letter is not None and not self.faults.on(SCOPE_NOT_ENFORCED):
            wanted = type_name or "*"
            if not principal.scopes.allows(context, wanted, letter):
                raise forbidden(f"the token's scopes do not grant {kind} on {wanted} ({context} context)")
        if type_name == "AuditEvent" and not (
            principal.is_patient or principal.is_system or principal.role == "auditor"
        ):
            raise forbidden("only auditors, systems and the patient concerned may read audit events", "access_denied")
        if principal.is_patient and not self.faults.on(PATIENT_COMPARTMENT_LEAK):
            return self._patient_access(principal, kind, type_name)
        return Access(principal)

    def _patient_access(self, principal: Principal, kind: str, type_name: str | None) -> Access:
        if principal.patient_id is None:
            raise forbidden("the patient token names no patient", "access_denied")
        if type_name is None or kind in ("history-type", "history-system"):
            raise forbidden(
                "a patient token reads one resource type at a time, without type-wide history", "access_denied"
            )
        if type_name in DIRECTORY_TYPES:
            return Access(principal)
        if type_name in self.owners and kind in ("read", "vread"):
            return Access(principal, principal.patient_id)
        if type_name != "Patient" and type_name not in patient_compartment():
            raise forbidden(NOT_PERMITTED, "access_denied")
        return Access(principal, principal.patient_id)

    def check_resource(self, access: Access, kind: str, resource: dict[str, Any] | None) -> None:
        """After a resource is known (read) or before it is stored (write): is it within reach?"""
        principal = access.principal
        if principal is None:
            return
        directory_data = resource is not None and resource.get("resourceType") in DIRECTORY_TYPES  # e.g. included
        if (
            access.compartment_patient is not None
            and not directory_data
            and (resource is None or not self._owned_by(access, resource, access.compartment_patient))
        ):
            if resource is None and self.faults.on(PATIENT_PROBE_404):
                raise not_found("the resource is not known")
            raise forbidden(NOT_PERMITTED, "access_denied")
        type_name = str((resource or {}).get("resourceType", ""))
        for rule in self.rules:
            rule(Question(principal, kind, type_name, resource, access.conn, self.faults))

    def check_search(self, access: Access, search: SearchRequest) -> None:
        """Before a search (or a conditional interaction's matching) runs: may the caller search
        this at all? A rule refusing here answers the same whatever data exists."""
        if access.principal is None or search.type_name is None:
            return
        for rule in self.rules:
            rule(Question(access.principal, search.kind, search.type_name, None, access.conn, self.faults, search))

    def permits(self, access: Access, kind: str, resource: dict[str, Any]) -> bool:
        """``check_resource`` as a yes or no, for resources a request may leave out (included ones)."""
        try:
            self.check_resource(access, kind, resource)
        except FhirError:
            return False
        return True

    def _owned_by(self, access: Access, resource: dict[str, Any], patient_id: str) -> bool:
        owners = self.owners.get(str(resource.get("resourceType")))
        if owners is None:
            return self.in_compartment(resource, patient_id)
        return access.conn is not None and f"Patient/{patient_id}" in owners(access.conn, resource)

    def in_compartment(self, resource: dict[str, Any], patient_id: str) -> bool:
        return f"Patient/{patient_id}" in self.patients_of(resource)

    def patients_of(self, resource: dict[str, Any]) -> set[str]:
        """The patients whose compartment holds ``resource`` ("Patient/<id>" references)."""
        found = self.registry.compartment_patients(resource)
        if resource.get("resourceType") == "Patient" and resource.get("id"):
            found.add(f"Patient/{resource['id']}")
        return found
