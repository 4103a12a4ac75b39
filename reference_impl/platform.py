"""The platform assembled: which national services it runs, and the migrations of the whole store.

Adding a service = one package under ``services/`` exporting a ``Service`` + one line in
``SERVICES``. Migration versions: 1-99 the platform's core (store, authorization server), then
100 per service in the order of ``SERVICES`` (the first service 100-199, the second 200-299...).
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson

from reference_impl.auth.principal import Principal
from reference_impl.auth.schema import AUTH_MIGRATIONS
from reference_impl.auth.scopes import Scopes
from reference_impl.fhir.errors import FhirError
from reference_impl.rest.routing import FhirRequest
from reference_impl.rest.server import FhirServer
from reference_impl.services import directory, dsp, mpi
from reference_impl.services.descriptor import Service
from reference_impl.settings import Settings
from reference_impl.store.database import Database
from reference_impl.store.migrations import STORE_MIGRATIONS, Migration, migrate

SERVICES: tuple[Service, ...] = (mpi.SERVICE, directory.SERVICE, dsp.SERVICE)
# The platform itself loads its terminology and the demo data: an internal principal, never a token anyone can hold.
INTERNAL = Principal("eqlab-seed", "eqlab-seed", "system", Scopes.parse("system/*.cruds"), jti="internal", expires_at=0)
INTERNAL_BASE = "urn:eqlab:seed"


def installed(settings: Settings, available: Iterable[Service] = SERVICES) -> tuple[Service, ...]:
    """The services ``settings.services`` names (all when it names none), in the platform's order."""
    services = tuple(available)
    if settings.services is None:
        return services
    unknown = sorted(settings.services - {s.name for s in services})
    if unknown:
        raise ValueError(f"unknown service(s) {', '.join(unknown)}; known: {', '.join(s.name for s in services)}")
    return tuple(s for s in services if s.name in settings.services)


def migrations(services: Iterable[Service] = SERVICES) -> tuple[Migration, ...]:
    return (*STORE_MIGRATIONS, *AUTH_MIGRATIONS, *(m for service in services for m in service.migrations))


def migrate_platform(db: Database, services: Iterable[Service] = SERVICES) -> list[int]:
    """Apply the pending migrations of the store, the authorization server and ``services``."""
    return migrate(db, migrations(services))


async def load_terminology(server: FhirServer, services: Iterable[Service]) -> None:
    """Store the services' CodeSystems and ValueSets that are not stored yet (restarts add no versions)."""
    entries = [
        {"resource": resource, "request": {"method": "PUT", "url": path}}
        for service in services
        for resource in service.terminology_resources()
        for path in [f"{resource['resourceType']}/{resource['id']}"]
        if not await is_stored(server, path)
    ]
    if entries:
        await run_internal(server, {"resourceType": "Bundle", "type": "transaction", "entry": entries})


async def run_internal(server: FhirServer, bundle: dict[str, object]) -> None:
    """Run a transaction Bundle as the platform itself, through the same pipeline as any request."""
    headers = {"content-type": "application/fhir+json"}
    await server.handle(FhirRequest("POST", "", (), headers, orjson.dumps(bundle), INTERNAL_BASE, principal=INTERNAL))


async def is_stored(server: FhirServer, path: str) -> bool:
    try:
        await server.handle(FhirRequest("GET", path, base_url=INTERNAL_BASE, principal=INTERNAL))
    except FhirError as exc:
        if exc.status != 404:
            raise
        return False
    return True
