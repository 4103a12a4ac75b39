"""Deliberate defects (``eqlab serve --faults a,b``) that prove the lab's checks catch what they target.

Each fault is a realistic way a vendor's server gets the SPEC wrong, and names the SHALL
requirements it breaks (``breaks``). A module declares the faults it can switch on next to the
code that checks them (``NO_ETAG = declare("no-etag", ...)``) and asks ``faults.on(NO_ETAG)`` at
the defect's hook point; with no fault switched on the server behaves exactly as without the hooks.
A national service declares its faults in its own package. ``reference_impl.app.FAULTS`` is the
registry of every declared fault that ``--list-faults`` and ``make detection`` read: each fault
must be caught (verdict refused), and the clean server granted.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True)
class Fault:
    name: str
    description: str
    breaks: tuple[str, ...]  # requirement IDs (suites/requirements) the defect violates
    module: str = ""  # the module that declared it: the platform's faults are those of reference_impl
    ignores: tuple[str, str] | None = None  # (type, search parameter) the search then ignores, for a service's faults


_DECLARED: dict[str, Fault] = {}


def declare(name: str, description: str, breaks: tuple[str, ...], ignores: tuple[str, str] | None = None) -> Fault:
    """Declare a fault of the module that calls this; a name is declared once in the whole platform.
    ``ignores`` (type, search parameter): the generic search drops that parameter while the fault is on,
    so a service's "parameter ignored" defects live in the service, not in the search code."""
    fault = Fault(name, description, breaks, sys._getframe(1).f_globals.get("__name__", ""), ignores)
    if _DECLARED.get(name, fault) != fault:
        raise ValueError(f"fault {name} is declared twice, differently")
    _DECLARED[name] = fault
    return fault


def declared() -> Mapping[str, Fault]:
    """Every fault declared by the modules imported so far (a live, read-only view)."""
    return MappingProxyType(_DECLARED)


class FaultSwitches:
    """The faults switched on for one server; ``on(fault)`` is asked at each defect's hook point."""

    def __init__(self, names: Iterable[str] = ()) -> None:
        self.active = frozenset(n.strip() for n in names if n.strip())
        unknown = sorted(self.active - _DECLARED.keys())
        if unknown:
            raise ValueError(f"unknown fault(s) {', '.join(unknown)}; known: {', '.join(sorted(_DECLARED))}")

    def on(self, fault: Fault) -> bool:
        return fault.name in self.active

    def ignored_search_parameters(self) -> frozenset[tuple[str, str]]:
        """The (type, search parameter) pairs the switched-on faults make the search ignore."""
        return frozenset(f.ignores for name in self.active if (f := _DECLARED[name]).ignores is not None)
