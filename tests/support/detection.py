"""Which runs of the detection matrix `make test` makes. `make detection` (`eqlab detection`) makes every
one: each fault of the reference implementation and of the reference client, under 3 minutes on two CPUs.
`make test` keeps to a fast sample of it: the first fault (by name) of each group, so that each service's
checks and each client plan still prove in every test run that they catch a fault."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

Run = TypeVar("Run", str, tuple[str, str])  # a fault's name, or a (client plan, fault) pair


def first_of_each_group(runs: Iterable[Run], group: Callable[[Run], str]) -> list[Run]:
    """The first of ``runs`` in sorted order for each value of ``group``, in sorted order."""
    firsts: dict[str, Run] = {}
    for run in sorted(runs):
        firsts.setdefault(group(run), run)
    return sorted(firsts.values())
