"""Merging two records of one person: ``POST Patient/$merge`` (FHIR's Patient $merge operation).

The source record is retired, not deleted: it becomes ``active=false`` with ``link.type=replaced-by``
to the target, which gets ``link.type=replaces`` back and the source's identifiers (as ``old``), so
identifier searches and PIXm on any of them find the survivor. Whatever referenced the source
(observations, encounters, documents...) is re-pointed to the target as a new version. All of it
runs in the operation's one transaction (through the services' write hooks like any write) and the
pipeline audits it as one access to both patients' data. AuditEvents are never re-pointed: the trail
keeps what happened to whom.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from reference_impl.auth.policy import Access, forbidden
from reference_impl.faults import declare
from reference_impl.fhir.errors import error, information, invalid, not_found
from reference_impl.fhir.validation import parse_json
from reference_impl.rest import negotiation
from reference_impl.rest.handler import Context, FhirResponse, Operation
from reference_impl.services.mpi.identity import identifiers, search, token
from reference_impl.store import resources as store
from reference_impl.store.resources import StoredResource
from reference_impl.store.schema import idx_reference

SOURCE_STAYS_ACTIVE = declare(
    "merge-source-active", "$merge links the source to the target but leaves it active", ("mpi@20",)
)
IDENTIFIERS_NOT_MOVED = declare(
    "merge-identifiers-not-repointed",
    "$merge does not give the target the source's identifiers: searching by them misses the survivor",
    ("mpi@21",),
)
DEFINITION = "http://hl7.org/fhir/OperationDefinition/Patient-merge"
NEVER_REPOINTED = frozenset({"Patient", "AuditEvent"})  # links between records; the audit trail
MAX_REPOINTED = 10_000  # resources of one patient re-pointed in one merge


@dataclass(frozen=True)
class Merged:
    source: StoredResource
    target: StoredResource
    repointed: list[StoredResource]


def merge(ctx: Context) -> FhirResponse:
    access = ctx.policy.decide(ctx.access.principal, "update", "Patient")
    if access.compartment_patient is not None:  # before any lookup: a patient learns nothing of other records
        raise forbidden("records are merged by the institutions and the platform, not by a patient", "access_denied")
    negotiation.require_body_type(ctx.request, negotiation.FHIR_JSON_TYPES, "FHIR JSON (application/fhir+json)")
    parameters = parse_json(ctx.request.body, ctx.settings.max_json_depth)
    if not isinstance(parameters, dict) or parameters.get("resourceType") != "Parameters":
        raise invalid("$merge takes a Parameters resource", ["Parameters"], code="structure")
    source = _patient(ctx, access, parameters, "source-patient")
    target = _patient(ctx, access, parameters, "target-patient")
    if source.id == target.id:
        raise error(422, f"Patient/{source.id} cannot be merged into itself", "business-rule", ["target-patient"])
    if target.parsed().get("active") is False:
        raise error(422, f"the target Patient/{target.id} is inactive: merge into an active record", "business-rule")
    if source.parsed().get("active") is False:
        raise error(422, f"the source Patient/{source.id} is inactive: it was merged already", "business-rule")
    merged = _merge(ctx, source, target)
    outcome = information(
        f"Patient/{source.id} merged into Patient/{target.id}; {len(merged.repointed)} resources re-pointed"
    )
    body = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "input", "resource": parameters},
            {"name": "outcome", "resource": outcome},
            {"name": "result", "resource": merged.target.parsed()},
        ],
    }
    return FhirResponse(200, body, stored=merged.target, touched=(source, target, *merged.repointed))


def _patient(ctx: Context, access: Access, parameters: dict[str, Any], name: str) -> StoredResource:
    """The current Patient a parameter names by valueReference or valueIdentifier (404 when none)."""
    given = [p for p in parameters.get("parameter") or () if isinstance(p, dict) and p.get("name") == name]
    if len(given) != 1:
        raise invalid(f"$merge needs exactly one '{name}' parameter", [name], code="required")
    reference, identifier = given[0].get("valueReference"), given[0].get("valueIdentifier")
    if isinstance(reference, dict) and isinstance(reference.get("reference"), str):
        res_id = reference["reference"].rstrip("/").rsplit("Patient/", 1)[-1]
        found = store.current(ctx.conn, "Patient", res_id, for_update=True)
        if found is None or found.deleted:
            raise not_found(f"{name}: Patient/{res_id} is not known")
    elif isinstance(identifier, dict) and identifier.get("system") and identifier.get("value"):
        matches = search(ctx, "Patient", [("identifier", token(identifier))], 10)
        current = [m for m in matches if m.parsed().get("active") is not False] or matches
        if not current:
            raise not_found(f"{name}: no Patient has the identifier {token(identifier)}")
        if len(current) > 1:
            raise error(422, f"{name}: the identifier {token(identifier)} names several patients", "multiple-matches")
        found = store.current(ctx.conn, "Patient", current[0].id, for_update=True) or current[0]
    else:
        raise invalid(f"'{name}' names the patient by valueReference or valueIdentifier", [name], code="required")
    ctx.policy.check_resource(access, "update", found.parsed())
    return found


def _merge(ctx: Context, source: StoredResource, target: StoredResource) -> Merged:
    source_ref = {"reference": f"Patient/{source.id}"}
    target_ref = {"reference": f"Patient/{target.id}"}
    retired = source.parsed()
    if not ctx.faults.on(SOURCE_STAYS_ACTIVE):
        retired["active"] = False
    retired["link"] = [*(retired.get("link") or ()), {"other": target_ref, "type": "replaced-by"}]
    survivor = target.parsed()
    survivor["link"] = [*(survivor.get("link") or ()), {"other": source_ref, "type": "replaces"}]
    if not ctx.faults.on(IDENTIFIERS_NOT_MOVED):
        held = {(i.get("system"), i.get("value")) for i in identifiers(survivor)}
        moved = [{**i, "use": "old"} for i in identifiers(retired) if (i.get("system"), i.get("value")) not in held]
        survivor["identifier"] = [*identifiers(survivor), *moved]
    repointed = [_repointed(ctx, stored, source.id, target.id) for stored in _referring(ctx, source.id)]
    return Merged(_save(ctx, retired, source), _save(ctx, survivor, target), repointed)


def _referring(ctx: Context, patient_id: str) -> list[StoredResource]:
    """The current resources that reference Patient/<patient_id> (links between Patients and the audit trail aside)."""
    ref = idx_reference.c
    query = (
        select(ref.res_type, ref.res_id)
        .where(ref.target_type == "Patient", ref.target_id == patient_id, ref.res_type.not_in(list(NEVER_REPOINTED)))
        .distinct()
        .limit(MAX_REPOINTED + 1)
    )
    keys = [(row[0], row[1]) for row in ctx.conn.execute(query)]
    if len(keys) > MAX_REPOINTED:
        raise error(422, f"Patient/{patient_id} has more than {MAX_REPOINTED} resources to re-point", "too-costly")
    return [r for key in keys for r in [store.current(ctx.conn, *key, for_update=True)] if r and r.content]


def _repointed(ctx: Context, stored: StoredResource, source_id: str, target_id: str) -> StoredResource:
    access = ctx.policy.decide(ctx.access.principal, "update", stored.type_name)
    resource = _replace_references(stored.parsed(), f"Patient/{source_id}", f"Patient/{target_id}")
    ctx.policy.check_resource(access, "update", resource)
    return _save(ctx, resource, stored)


def _replace_references(value: Any, old: str, new: str) -> Any:
    """``value`` with every Reference to ``old`` (relative or absolute) pointing at ``new``."""
    if isinstance(value, list):
        return [_replace_references(item, old, new) for item in value]
    if not isinstance(value, dict):
        return value
    replaced = {key: _replace_references(item, old, new) for key, item in value.items()}
    reference = value.get("reference")
    if isinstance(reference, str) and (reference == old or reference.endswith("/" + old)):
        replaced["reference"] = reference.removesuffix(old) + new
    return replaced


def _save(ctx: Context, resource: dict[str, Any], current: StoredResource) -> StoredResource:
    """A new version of ``current``, between the services' checks and follow-ups like any update."""
    ctx.writes.before_write(ctx, resource)
    stored = store.save(ctx.conn, ctx.registry, resource, current.id, current, "PUT")
    ctx.writes.after_write(ctx, stored)
    return stored


OPERATION = Operation("merge", merge, "Patient", writes=True, definition=DEFINITION)
