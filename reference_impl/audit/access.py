"""Which accesses to the FHIR API are audited, and the AuditRecords that describe them.

The pipeline (``rest/server.py``) describes each interaction as an ``Attempt`` and asks here: a
successful access to patient data gets one record per patient whose data it touched (IHE BALP),
each naming that patient and that patient's resources only, so each lands in that patient's log
alone; a refused attempt (401, 403) and a failed access to patient data get one record of their own.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import Connection, select

from reference_impl.audit.balp import FAILED, REFUSED, SUCCESS, Action, Agent, AuditRecord
from reference_impl.faults import FaultSwitches, declare
from reference_impl.fhir.searchparams import SearchParamRegistry
from reference_impl.fhir.structure import patient_compartment
from reference_impl.lru import LruMemory
from reference_impl.store.resources import StoredResource
from reference_impl.store.schema import idx_reference

EMERGENCY_NOT_FLAGGED = declare(
    "emergency-not-flagged",
    "an access with a token of purpose EMERGENCY is audited like any other, without the break-the-glass label",
    ("dsp@40",),
)
READS_NOT_AUDITED = declare(
    "reads-not-audited", "reads of patient data (read, vread) write no AuditEvent", ("audit@1",)
)
DENIALS_NOT_AUDITED = declare("denials-not-audited", "refused attempts (401, 403) write no AuditEvent", ("audit@4",))
AUDIT_PER_SEARCH = declare(
    "audit-per-search",
    "a search writes one AuditEvent naming every patient it touched, so each sees the others in the log",
    ("audit@12",),
)
ACTIONS: dict[str, Action] = {
    "create": "C",
    "update": "U",
    "patch": "U",
    "delete": "D",
    "read": "R",
    "vread": "R",
    "history-instance": "R",
}
MAX_ENTITIES = 50  # resources named in one AuditEvent; a search's query entity says what was asked
SEARCHES = frozenset({"search-type", "search-system", "history-type", "history-system"})


@dataclass(frozen=True)
class Attempt:
    """One interaction as the audit sees it: who asked what, from where."""

    method: str
    path: str  # below the FHIR base, without leading slash
    kind: str | None  # the RESTful interaction (read, search-type...); None when the path made no sense
    type_name: str | None = None
    res_id: str | None = None
    query: tuple[tuple[str, str], ...] = ()
    principal: Agent | None = None
    network_address: str | None = None
    request_id: str | None = None

    @property
    def description(self) -> str:
        return f"{self.method} /{self.path}"


def touches_patient_data(attempt: Attempt, with_request: bool = True) -> bool:
    """Whether the interaction may reach patient data (and so must be audited); a search of other
    data may too, through what it includes (``_include``, ``_revinclude``, or a POST form's) —
    unless ``with_request`` is False: then only the type decides."""
    if attempt.kind == "capabilities":
        return False
    type_name = attempt.type_name
    if type_name is None or type_name == "Patient" or type_name in patient_compartment():
        return True
    if not with_request or attempt.kind != "search-type":
        return False
    return attempt.method == "POST" or any(k in ("_include", "_revinclude") for k, _ in attempt.query)


def success_records(
    compartments: CompartmentMemory,
    attempt: Attempt,
    status: int,
    touched: Sequence[StoredResource],
    faults: FaultSwitches,
    owned: Mapping[str, Callable[[dict[str, Any]], set[str]]] = MappingProxyType({}),
) -> list[AuditRecord]:
    """The AuditEvents of a successful access that touched ``touched`` (the resource versions it read,
    returned or changed): one per patient whose data it touched, one naming no patient when it touched
    none but may have (a search of a patient-data type); none when it cannot reach patient data at all.
    ``owned``: the patients of a resource of a type outside the compartment whose owners a service knows
    (a Binary: the patient of the document pointing to it)."""
    if not touches_patient_data(attempt) and attempt.type_name not in owned:
        return []
    if faults.on(READS_NOT_AUDITED) and attempt.kind in ("read", "vread"):
        return []
    owners = patients_in_bodies(compartments, touched, owned)
    patients = sorted({p for found in owners.values() for p in found})
    if not patients and not touches_patient_data(attempt, with_request=False):
        return []  # a search of other data whose includes reached no patient's
    kind = attempt.kind or "unknown"
    record = AuditRecord(
        action=ACTIONS.get(kind, "E"),
        subtype=kind,
        outcome=SUCCESS,
        description=f"{attempt.description} -> {status}",
        principal=attempt.principal,
        break_glass=is_emergency(attempt, faults),
        query=urlencode(list(attempt.query)) if kind in SEARCHES else None,
        network_address=attempt.network_address,
        request_id=attempt.request_id,
    )

    keys = list(dict.fromkeys((stored.type_name, stored.id) for stored in touched))

    def entities(keys: list[tuple[str, str]]) -> tuple[str, ...]:
        return tuple(f"{t}/{i}" for t, i in keys if t != "Patient")[:MAX_ENTITIES]

    if not patients:
        return [replace(record, entities=entities(keys))]
    if faults.on(AUDIT_PER_SEARCH):
        return [replace(record, patients=tuple(patients), entities=entities(keys))]
    return [
        replace(record, patients=(patient,), entities=entities([k for k in keys if patient in owners.get(k, ())]))
        for patient in patients
    ]


def is_emergency(attempt: Attempt, faults: FaultSwitches) -> bool:
    """Whether the access claims an emergency (break the glass): the audit flags it."""
    principal = attempt.principal
    return principal is not None and principal.purpose_of_use == "EMERGENCY" and not faults.on(EMERGENCY_NOT_FLAGGED)


def failure_record(attempt: Attempt, status: int, reasons: str, faults: FaultSwitches) -> AuditRecord | None:
    """The AuditEvent of a refused attempt (401, 403) or of a failed access to patient data; None
    when the failure is neither (a malformed search of directory data, say)."""
    refused = status in (401, 403)
    if refused and faults.on(DENIALS_NOT_AUDITED):
        return None
    if not refused and (attempt.kind is None or not touches_patient_data(attempt, with_request=False)):
        return None
    target = [f"{attempt.type_name}/{attempt.res_id}"] if attempt.type_name and attempt.res_id else []
    patients = tuple(r for r in target if r.startswith("Patient/"))
    return AuditRecord(
        action=ACTIONS.get(attempt.kind or "", "E"),
        subtype=attempt.kind or "unknown",
        outcome=REFUSED if status < 500 else FAILED,
        description=f"{attempt.description} -> {status}: {reasons}",
        principal=attempt.principal,
        break_glass=is_emergency(attempt, faults),
        patients=patients,
        entities=tuple(r for r in target if r not in patients),
        query=urlencode(list(attempt.query)) if attempt.query else None,
        network_address=attempt.network_address,
        request_id=attempt.request_id,
    )


def naming_its_patients(conn: Connection, record: AuditRecord) -> AuditRecord:
    """A refused or failed access to a resource, named in the log of the patients whose data it is (a
    blocked professional's attempt shows in the patient's access log); a resource nobody holds names none."""
    if record.patients or len(record.entities) != 1 or "/" not in record.entities[0]:
        return record
    type_name, res_id = record.entities[0].split("/", 1)
    owners = patients_by_resource(conn, ((type_name, res_id),))
    return replace(record, patients=tuple(sorted({p for found in owners.values() for p in found})))


COMPARTMENT_VERSIONS = 100_000  # resource versions whose patients a server remembers (~25 MB)


class CompartmentMemory:
    """The patients whose compartment holds each resource version, remembered per version (type, id,
    version and the instant it was written, which a version overwritten in place changes too): a version
    never changes, and the same ones come back search after search (a patient's access log, a patient's
    documents). Reading them off the body again (parsing it, following the compartment's paths) cost
    ~20 µs a resource, 440 µs for an access log page of 20 AuditEvents (py-spy on
    ``benchmarks/national_scale.py``). One per server (``rest/server.py``): the versions of one store.
    The least recently used goes first once ``size`` are remembered."""

    def __init__(self, params: SearchParamRegistry, size: int = COMPARTMENT_VERSIONS) -> None:
        self._params = params
        self._known: LruMemory[tuple[str, str, int, int], tuple[str, ...]] = LruMemory(size)

    def patients(self, stored: StoredResource) -> tuple[str, ...]:
        """The patients (``Patient/<id>``) the compartment parameters of ``stored`` (not a deletion) name."""
        key = (stored.type_name, stored.id, stored.version_id, stored.last_updated)
        found = self._known.get(key)
        if found is None:
            found = tuple(sorted(self._params.compartment_patients(stored.parsed())))
            self._known.put(key, found)
        return found

    def __len__(self) -> int:
        return len(self._known)


def patients_in_bodies(
    compartments: CompartmentMemory,
    touched: Sequence[StoredResource],
    owned: Mapping[str, Callable[[dict[str, Any]], set[str]]] = MappingProxyType({}),
) -> dict[tuple[str, str], set[str]]:
    """For each touched resource, the patients whose compartment holds it, read off the version touched
    by the parameters of the patient compartment: the same references its index rows hold (the answer of
    ``patients_by_resource`` for a current version), without a query (a round trip on PostgreSQL); for a
    type in ``owned``, the patients its owners rule names."""
    owners: dict[tuple[str, str], set[str]] = {}
    compartment = patient_compartment()
    for stored in touched:
        key = (stored.type_name, stored.id)
        patients: Collection[str] = ()
        if stored.type_name == "Patient":  # a Patient record is about that patient
            patients = {f"Patient/{stored.id}"}
        elif stored.content is not None and stored.type_name in owned:
            patients = owned[stored.type_name](stored.parsed())
        elif stored.content is not None and stored.type_name in compartment:
            patients = compartments.patients(stored)
        if patients:
            owners.setdefault(key, set()).update(patients)
    return owners


def patients_by_resource(conn: Connection, touched: tuple[tuple[str, str], ...]) -> dict[tuple[str, str], set[str]]:
    """For each touched resource, the patients whose compartment holds it (from the search index)."""
    owners: dict[tuple[str, str], set[str]] = {}
    compartment = patient_compartment()
    by_type: dict[str, list[str]] = {}
    for type_name, res_id in touched:
        if type_name == "Patient":  # a Patient record is about that patient
            owners.setdefault((type_name, res_id), set()).add(f"Patient/{res_id}")
        elif type_name in compartment:
            by_type.setdefault(type_name, []).append(res_id)
    ref = idx_reference.c
    for type_name, ids in by_type.items():
        query = select(ref.res_id, ref.target_id).where(
            ref.res_type == type_name,
            ref.res_id.in_(ids),
            ref.param.in_(compartment[type_name]),
            ref.target_type == "Patient",
        )
        for res_id, patient_id in conn.execute(query):
            if patient_id:
                owners.setdefault((type_name, res_id), set()).add(f"Patient/{patient_id}")
    return owners
