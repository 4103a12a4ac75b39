"""Patient identifier cross-referencing, IHE PIXm ITI-83: ``GET Patient/$ihe-pix``.

From one identifier of a person (``sourceIdentifier=<system>|<value>``) to the person's identifiers
in the other domains (``targetIdentifier``) and their Patient resources (``targetId``). A record
merged away (inactive, ``link.type=replaced-by``) answers for its survivor. The errors are those of
ITI-83: an unknown source domain is a bad request (400), a known domain without the value is not
found (404), a target domain the platform does not know is forbidden (403).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from reference_impl.faults import declare
from reference_impl.fhir.errors import FhirError, Issue, error, invalid, not_found
from reference_impl.naming import LOCAL_ID_PREFIX, NATIONAL_ID, PLATFORM_ID
from reference_impl.rest.handler import Context, FhirResponse, Operation
from reference_impl.rest.searching import parse_for_caller
from reference_impl.services.mpi.identity import identifiers, is_known_system, token
from reference_impl.store.resources import StoredResource
from reference_impl.store.search_run import run_search

UNKNOWN_DOMAIN_404 = declare(
    "pix-unknown-domain-404", "PIXm answers 404 instead of 403 for a targetSystem it does not know", ("mpi@12",)
)
NOT_FOUND_EMPTY = declare(
    "pix-not-found-empty",
    "PIXm answers 200 with no targetIdentifier when no patient has the sourceIdentifier (instead of 404)",
    ("mpi@11",),
)
DEFINITION = "https://profiles.ihe.net/ITI/PIXm/OperationDefinition/IHE.PIXm.pix"
MAX_RECORDS = 100  # Patient records of one person: a handful in practice
MAX_HOPS = 10  # replaced-by links followed from a merged-away record


def cross_reference(ctx: Context) -> FhirResponse:
    search_ctx = replace(ctx, access=ctx.policy.decide(ctx.access.principal, "search-type", "Patient"))
    source_system, source_value = _source(ctx)
    if not is_known_system(ctx, source_system):
        raise invalid(
            f"sourceIdentifier names the unknown identifier domain {source_system}: the platform knows the matricule "
            f"({NATIONAL_ID}), the platform id ({PLATFORM_ID}) and the local systems {LOCAL_ID_PREFIX}<n> of the "
            "institutions in the directory",
            ["sourceIdentifier"],
            code="code-invalid",
        )
    targets = _target_systems(ctx)
    records = _search(search_ctx, [("identifier", token({"system": source_system, "value": source_value}))])
    if not records and not ctx.faults.on(NOT_FOUND_EMPTY):
        raise not_found(f"no patient has the identifier {source_system}|{source_value}")
    person = _person(search_ctx, [_survivor(search_ctx, r) for r in records])
    source = (source_system, source_value)
    found: dict[tuple[str, str], dict[str, Any]] = {}
    holders: list[StoredResource] = []
    for record in person:
        wanted = [
            i
            for i in identifiers(record.parsed())
            if _in_domain(str(i.get("system", "")), targets) and i.get("use") != "old" and i.get("value")
        ]
        if wanted or not targets:
            holders.append(record)
        for identifier in wanted:
            key = (str(identifier["system"]), str(identifier["value"]))
            if key != source:
                found.setdefault(key, {"system": key[0], "value": key[1]})
    parameters = [{"name": "targetIdentifier", "valueIdentifier": i} for i in found.values()]
    parameters += [{"name": "targetId", "valueReference": {"reference": f"Patient/{r.id}"}} for r in holders]
    body: dict[str, Any] = {"resourceType": "Parameters"}
    if parameters:  # FHIR JSON has no empty arrays: a person without identifiers in the target domains
        body["parameter"] = parameters
    return FhirResponse(200, body, touched=tuple(person))


def _source(ctx: Context) -> tuple[str, str]:
    values = [v for k, v in ctx.request.query if k == "sourceIdentifier"]
    if len(values) != 1 or "|" not in values[0]:
        raise invalid("$ihe-pix needs exactly one sourceIdentifier=<system>|<value>", ["sourceIdentifier"])
    system, value = values[0].split("|", 1)
    if not system or not value:
        raise invalid("sourceIdentifier names both a system and a value: <system>|<value>", ["sourceIdentifier"])
    return system, value


def _target_systems(ctx: Context) -> list[str]:
    """The targetSystem values (repeated or comma-separated); a domain the platform does not know is a 403."""
    systems = [s for k, v in ctx.request.query if k == "targetSystem" for s in v.split(",") if s]
    unknown = [s for s in systems if not is_known_system(ctx, s)]
    if unknown:
        status = 404 if ctx.faults.on(UNKNOWN_DOMAIN_404) else 403
        raise FhirError(
            status,
            [
                Issue(
                    f"targetSystem {s} is not an identifier domain of the platform",
                    "code-invalid",
                    expression=("targetSystem",),
                )
                for s in unknown
            ],
        )
    return systems


def _in_domain(system: str, targets: list[str]) -> bool:
    if targets:
        return system in targets
    return system in (NATIONAL_ID, PLATFORM_ID) or system.startswith(LOCAL_ID_PREFIX)


def _search(ctx: Context, params: list[tuple[str, str]]) -> list[StoredResource]:
    request = parse_for_caller(ctx, "Patient", params, strict=True)
    request.count = MAX_RECORDS
    return run_search(ctx.conn, request, with_total=False).matches


def _survivor(ctx: Context, record: StoredResource) -> StoredResource:
    """The active record a merged-away one was replaced by (the record itself when it is active)."""
    seen = {record.id}
    for _ in range(MAX_HOPS):
        patient = record.parsed()
        if patient.get("active") is not False:
            return record
        successor = replaced_by(patient)
        found = _search(ctx, [("_id", successor)]) if successor and successor not in seen else []
        if not found:
            return record
        record = found[0]
        seen.add(record.id)
    raise error(500, f"Patient/{record.id}: more than {MAX_HOPS} replaced-by links in a row", "exception")


def replaced_by(patient: dict[str, Any]) -> str | None:
    """The id of the Patient that replaced ``patient`` (its ``link`` of type replaced-by), if any."""
    for link in patient.get("link") or ():
        reference = str((link.get("other") or {}).get("reference", "")) if isinstance(link, dict) else ""
        if link.get("type") == "replaced-by" and reference.startswith("Patient/"):
            return reference.removeprefix("Patient/")
    return None


def _person(ctx: Context, records: list[StoredResource]) -> list[StoredResource]:
    """``records`` and every active record sharing one of their platform ids (old ones too: a survivor
    keeps the platform id of the record merged into it), without duplicates."""
    platform_ids = {
        token(i) for r in records for i in identifiers(r.parsed()) if i.get("system") == PLATFORM_ID and i.get("value")
    }
    linked = (
        _search(ctx, [("identifier", ",".join(sorted(platform_ids))), ("active:not", "false")]) if platform_ids else []
    )
    return list({r.id: r for r in [*records, *linked]}.values())


OPERATION = Operation("ihe-pix", cross_reference, "Patient", definition=DEFINITION)
