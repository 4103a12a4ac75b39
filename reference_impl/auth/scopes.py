"""SMART on FHIR scopes, v2 (``patient/Observation.rs``) and v1 (``user/*.read``).

A scope grants interactions on resource types in a context: ``patient`` (the patient in the
token), ``user`` (what the user may see) or ``system`` (a backend service). v2 letters are
c(reate) r(ead) u(pdate) d(elete) s(earch); v1 ``read`` is ``rs``, ``write`` is ``cud``, ``*`` all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CONTEXTS = ("patient", "user", "system")
V1 = {"read": "rs", "write": "cud", "*": "cruds"}
_SCOPE = re.compile(r"^(patient|user|system)/(\*|[A-Z][A-Za-z]+)\.(read|write|\*|[cruds]+)(\?.*)?\Z")
INTERACTION_LETTERS = {
    "read": "r",
    "vread": "r",
    "history-instance": "r",
    "history-type": "s",
    "history-system": "s",
    "search-type": "s",
    "search-system": "s",
    "create": "c",
    "update": "u",
    "patch": "u",
    "delete": "d",
}


@dataclass(frozen=True)
class ResourceScope:
    context: str
    type_name: str  # "*" for every type
    letters: frozenset[str]

    def covers(self, context: str, type_name: str, letter: str) -> bool:
        return self.context == context and self.type_name in ("*", type_name) and letter in self.letters


@dataclass(frozen=True)
class Scopes:
    raw: tuple[str, ...]
    resource: tuple[ResourceScope, ...]

    @classmethod
    def parse(cls, text: str) -> Scopes:
        raw = tuple(s for s in text.split() if s)
        resource = []
        for scope in raw:
            match = _SCOPE.match(scope)
            if match:
                context, type_name, permissions, _query = match.groups()
                letters = frozenset(V1.get(permissions, permissions))
                resource.append(ResourceScope(context, type_name, letters))
        return cls(raw, tuple(resource))

    def allows(self, context: str, type_name: str, letter: str) -> bool:
        return any(s.covers(context, type_name, letter) for s in self.resource)

    def contexts(self) -> set[str]:
        return {s.context for s in self.resource}

    def __str__(self) -> str:
        return " ".join(self.raw)


def is_valid(scope: str) -> bool:
    """A resource scope, or one of the non-resource scopes the server knows."""
    return bool(_SCOPE.match(scope)) or scope in ("openid", "fhirUser", "profile", "offline_access", "launch/patient")


def within(requested: Scopes, allowed: Scopes) -> bool:
    """Every requested scope is granted by the allowed ones (``patient/*.rs`` covers ``patient/Observation.r``)."""
    for scope in requested.raw:
        match = _SCOPE.match(scope)
        if match is None:
            if scope not in allowed.raw:
                return False
            continue
        wanted = Scopes.parse(scope).resource[0]
        for letter in wanted.letters:
            if not any(
                a.context == wanted.context and a.type_name in ("*", wanted.type_name) and letter in a.letters
                for a in allowed.resource
            ):
                return False
    return True
