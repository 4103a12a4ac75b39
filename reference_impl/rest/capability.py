"""The CapabilityStatement, generated from what is really registered: types, parameters, operations."""

from __future__ import annotations

from typing import Any

from reference_impl.auth.policy import PLATFORM_WRITTEN
from reference_impl.auth.service import FHIR_PREFIX, issuer_for
from reference_impl.faults import declare
from reference_impl.fhir.dates import now_instant
from reference_impl.fhir.structure import FHIR_VERSION, structure
from reference_impl.fhir.subsetting import subset
from reference_impl.rest.handler import Context, FhirResponse
from reference_impl.store.counting import EXACT_UP_TO

CAPABILITY_OVERCLAIMS = declare(
    "capability-overclaims", "the CapabilityStatement lists a resource type the server does not serve", ("fhir@2",)
)

TYPE_INTERACTIONS = (
    "read",
    "vread",
    "update",
    "patch",
    "delete",
    "history-instance",
    "history-type",
    "create",
    "search-type",
)
READ_INTERACTIONS = frozenset({"read", "vread", "history-instance", "history-type", "search-type"})
SYSTEM_INTERACTIONS = ("transaction", "batch", "search-system", "history-system")
OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
RESTFUL_SECURITY_SERVICE = "http://terminology.hl7.org/CodeSystem/restful-security-service"
SOFTWARE = {"name": "eqlab reference implementation", "version": "0.1.0"}


def capabilities(ctx: Context) -> FhirResponse:
    """The CapabilityStatement; ``_summary=true`` gives its summary form (without the large ``rest``)."""
    summary = dict(ctx.request.query).get("_summary")
    return FhirResponse(200, subset(capability_statement(ctx), summary, None))


def smart_security(fhir_base: str) -> dict[str, Any]:
    """``rest.security`` as SMART App Launch 1.0 declares it: the service coding and the oauth-uris extension."""
    issuer = issuer_for(fhir_base.rstrip("/").removesuffix(FHIR_PREFIX))
    uris = {name: f"{issuer}/{name}" for name in ("authorize", "token", "introspect", "revoke")}
    return {
        "extension": [
            {
                "url": OAUTH_URIS,
                "extension": [{"url": name, "valueUri": uri} for name, uri in uris.items()],
            }
        ],
        "service": [
            {
                "coding": [{"system": RESTFUL_SECURITY_SERVICE, "code": "SMART-on-FHIR"}],
                "text": "OAuth2 using SMART-on-FHIR profile",
            }
        ],
        "cors": True,
    }


SEARCH_TOTALS = (
    f"Search totals (`_total`): `accurate` counts every match; `none` leaves `Bundle.total` out; without `_total`, "
    f"or with `estimate`, the total is exact up to {EXACT_UP_TO:,} matches and estimated beyond (the database "
    "planner's estimate), so that a page never costs a count of millions. `_summary=count` always counts exactly. "
    "Next links never depend on the total."
)


def capability_statement(ctx: Context) -> dict[str, Any]:

    revincludes: dict[str, list[str]] = {}
    for source in structure().served_types:
        for code, p in ctx.registry.for_type(source).items():
            for target in p.targets if p.type == "reference" else ():
                revincludes.setdefault(target, []).append(f"{source}:{code}")
    resources = []
    for type_name in structure().served_types:
        params = ctx.registry.for_type(type_name)
        reference_params = sorted(code for code, p in params.items() if p.type == "reference")
        writable = type_name not in PLATFORM_WRITTEN
        entry: dict[str, Any] = {
            "type": type_name,
            "profile": f"http://hl7.org/fhir/StructureDefinition/{type_name}",
            "interaction": [{"code": code} for code in TYPE_INTERACTIONS if writable or code in READ_INTERACTIONS],
            "versioning": "versioned",
            "readHistory": True,
            "updateCreate": writable,
            "conditionalCreate": writable,
            "conditionalRead": "modified-since",
            "conditionalUpdate": writable,
            "conditionalDelete": "single" if writable else "not-supported",
            "searchInclude": [f"{type_name}:{code}" for code in reference_params],
            "searchRevInclude": sorted(revincludes.get(type_name, [])),
            "searchParam": [
                {"name": code, "definition": p.url, "type": p.type, "documentation": p.description}
                for code, p in sorted(params.items())
            ],
        }
        operations = [op for op in ctx.operations.values() if op.type_name == type_name]
        if operations:
            entry["operation"] = [{"name": op.name, "definition": op.definition} for op in operations]
        resources.append(entry)
    if ctx.faults.on(CAPABILITY_OVERCLAIMS):
        resources.append({**resources[0], "type": "MedicinalProduct"})  # an R4 type this server does not serve
    rest: dict[str, Any] = {
        "mode": "server",
        "documentation": SEARCH_TOTALS,
        "security": smart_security(ctx.request.base_url),
        "resource": resources,
        "interaction": [{"code": code} for code in SYSTEM_INTERACTIONS],
    }
    system_operations = [op for op in ctx.operations.values() if op.type_name is None]
    if system_operations:
        rest["operation"] = [{"name": op.name, "definition": op.definition} for op in system_operations]
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": now_instant()[1],
        "kind": "instance",
        "software": SOFTWARE,
        "implementation": {
            "description": "eqlab national platform reference implementation",
            "url": ctx.request.base_url,
        },
        "fhirVersion": FHIR_VERSION,
        "format": ["application/fhir+json", "json"],
        "patchFormat": ["application/json-patch+json"],
        "rest": [rest],
    }
