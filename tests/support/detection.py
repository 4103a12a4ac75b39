"""Which runs of the detection matrix `make test` makes. `make detection` (`eqlab detection`) makes every
one: each fault of the reference implementation and of the reference client, about 2 minutes on two CPUs.
`make test` keeps to a fast sample of it: the first fault (by name) of each group, so that each service's
checks and each client plan still prove in every test run that they catch a fault."""

from __future__ import annotations

from collections.abc import Callable, Iterable


def first_of_each_group(names: Iterable[str], group: Callable[[str], str]) -> list[str]:
    """The first of ``names`` in sorted order for each value of ``group``, in sorted order."""
    firsts: dict[str, str] = {}
    for name in sorted(names):
        firsts.setdefault(group(name), name)
    return sorted(firsts.values())
