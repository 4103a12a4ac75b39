"""The reference platform as an ASGI application: ``create_app(settings)``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from types import MappingProxyType
from typing import Any

from fastapi import FastAPI
from starlette._utils import get_route_path
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from reference_impl.auth.routes import auth_routes
from reference_impl.faults import declared
from reference_impl.platform import SERVICES, installed, load_terminology, migrate_platform
from reference_impl.rest.http import FHIR_PREFIX, FhirEndpoint, RequestIdMiddleware
from reference_impl.rest.server import FhirServer
from reference_impl.seed.accounts import seed_demo_accounts
from reference_impl.seed.demo import load_demo
from reference_impl.services.descriptor import Service
from reference_impl.settings import Settings
from reference_impl.store.database import Database
from reference_impl.store.documents import DocumentSealing, DocumentVault

# Every fault of the platform (each module declares its own; all are imported by now). Faults declared
# outside reference_impl (a test's own service) can be switched on but are not the platform's to detect.
FAULTS = MappingProxyType({name: f for name, f in declared().items() if f.module.startswith("reference_impl.")})
GZIP_MINIMUM_BYTES = 1024  # smaller answers are sent as they are, for clients that Accept-Encoding: gzip too


class PlatformApp(FastAPI):
    """FastAPI, with the FHIR API (everything under ``/fhir`` but the authorization server's paths there)
    served past its router and middleware stack, through the same layers as the other routes: the last
    resort 500, gzip, the request id. The FHIR routes came after every other route, and FastAPI's stack
    (telemetry, body limit, exception and exit-stack middleware) is for features the FHIR endpoint does
    not use: together 20-35 µs of a 170 µs anonymous read, measured in process."""

    def __init__(self, fhir: ASGIApp, not_fhir: frozenset[str], **options: Any) -> None:
        super().__init__(**options)
        self._fhir = ServerErrorMiddleware(GZipMiddleware(RequestIdMiddleware(fhir), minimum_size=GZIP_MINIMUM_BYTES))
        self._not_fhir = not_fhir

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = get_route_path(scope)  # as Starlette's routes read it (behind a proxy's root_path too)
            if (path == FHIR_PREFIX or path.startswith(FHIR_PREFIX + "/")) and path not in self._not_fhir:
                scope["app"] = self
                scope["path_params"] = {"path": path[len(FHIR_PREFIX) + 1 :]}
                await self._fhir(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def create_app(
    settings: Settings | None = None, available: Sequence[Service] = SERVICES, documents: DocumentSealing | None = None
) -> PlatformApp:
    """The platform with the services of ``available`` that the settings name (all by default).

    Documents are sealed with the settings' master key; ``documents`` replaces that only for
    ``benchmarks/dsp.py``, which measures the cost of sealing against a store that does not seal.
    """
    settings = settings or Settings()
    db = Database(settings.db_url, documents or DocumentVault(settings.master()), settings.max_statement_seconds)
    server = FhirServer(settings, db)
    services = installed(settings, available)
    for service in services:
        service.install(server)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        migrate_platform(db, services)
        await load_terminology(server, services)
        if settings.seed == "demo":
            await load_demo(server, services)
            await db.run_async(seed_demo_accounts, write=True)  # the demo clients and users (idempotent)
        if server.auth.revocations is not None:
            server.auth.revocations.start()
        try:
            yield
        finally:
            if server.auth.revocations is not None:
                server.auth.revocations.stop()
            db.dispose()

    authorization = auth_routes()
    app = PlatformApp(
        FhirEndpoint(),
        # /fhir/.well-known/smart-configuration is the authorization server's, not the FHIR endpoint's.
        frozenset(route.path for route in authorization if route.path.startswith(FHIR_PREFIX + "/")),
        title="eqlab reference platform",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.fhir = server
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(GZipMiddleware, minimum_size=GZIP_MINIMUM_BYTES)
    app.router.routes += authorization

    @app.get("/", include_in_schema=False)
    async def index(request: Request) -> JSONResponse:
        base = f"{request.url.scheme}://{request.url.netloc}{FHIR_PREFIX}"
        return JSONResponse({"service": "eqlab reference platform", "fhir": base, "capabilities": f"{base}/metadata"})

    return app
