"""What a national service declares, and how the platform installs it.

A service (MPI, directory, DSP, ePrescription...) is one package under ``reference_impl/services/``
exporting a ``Service``: its FHIR operations, its business rules on writes per resource type (checks
before a version is stored, follow-ups after), its access rules (added to the one access policy),
its login rules (who may not sign in or be issued tokens, and why: asked by the authorization server),
its CodeSystems and ValueSets as shipped JSON, its migrations and its demo data. Its fault switches
are declared beside the code that checks them (``reference_impl.faults.declare``). The platform
installs the services its settings name (``reference_impl/platform.py``); the REST pipeline and the
store are never edited for a service: every write, by HTTP or inside a Bundle, calls the hooks.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reference_impl.auth.policy import Owners, Rule
from reference_impl.auth.service import LoginRule
from reference_impl.rest.handler import AfterWrite, Operation, WriteCheck
from reference_impl.rest.server import FhirServer
from reference_impl.store.migrations import Migration

Resource = dict[str, Any]


@dataclass(frozen=True)
class Service:
    name: str  # as the settings name it: EQLAB_SERVICES=mpi,directory
    title: str
    operations: tuple[Operation, ...] = ()
    checks: Mapping[str, tuple[WriteCheck, ...]] = field(default_factory=dict)  # per resource type, before a write
    followers: Mapping[str, tuple[AfterWrite, ...]] = field(default_factory=dict)  # per type, after a write
    access_rules: tuple[Rule, ...] = ()
    owners: Mapping[str, Owners] = field(default_factory=dict)  # whose record holds a type outside the compartment
    judged_types: tuple[str, ...] = ()  # types its access rules judge one resource at a time (never via chains)
    login_rules: tuple[LoginRule, ...] = ()  # at sign-in, code exchange and refresh: why a user may not act
    terminology: tuple[Path, ...] = ()  # CodeSystem and ValueSet JSON files, served as they are
    migrations: tuple[Migration, ...] = ()  # versions from the service's own range (see platform.py)
    demo_data: Callable[[], list[Resource]] | None = None  # added to the demo dataset's transaction

    def install(self, server: FhirServer) -> None:
        for operation in self.operations:
            server.add_operation(operation)
        for type_name, checks in self.checks.items():
            for check in checks:
                server.writes.add(type_name, check=check)
        for type_name, followers in self.followers.items():
            for follow in followers:
                server.writes.add(type_name, after=follow)
        server.policy.rules.extend(self.access_rules)
        server.policy.owners.update(self.owners)
        server.policy.judged.update(self.judged_types)
        server.auth.login_rules.extend(self.login_rules)

    def terminology_resources(self) -> list[Resource]:
        resources: list[Resource] = []
        for path in self.terminology:
            resource = json.loads(path.read_text(encoding="utf-8"))
            if resource.get("resourceType") not in ("CodeSystem", "ValueSet") or not resource.get("id"):
                raise ValueError(f"{path}: a service's terminology is CodeSystems and ValueSets, each with an id")
            resources.append(resource)
        return resources
