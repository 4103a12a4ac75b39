"""What ``eqlab detection`` reports for one run of the reference plan against a deliberately broken server."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from eqlab.results import RunResults


@dataclass(frozen=True)
class Detection:
    """What the reference plan found against the reference implementation with some faults on."""

    faults: frozenset[str]
    expected: tuple[str, ...]  # the requirements the faults break
    verdict: str
    failed: list[str]  # requirements with status fail
    proof: str  # the requirement, check and HTTP exchange that proved the first expected failure
    run_dir: Path

    @property
    def caught(self) -> bool:
        if not self.faults:
            return self.verdict.startswith("granted")
        return self.verdict == "refused" and bool(set(self.expected) & set(self.failed))


def proof_of(results: RunResults, expected: tuple[str, ...]) -> str:
    """The requirement, check and HTTP exchange that proved the first expected failure."""
    for item in results.items:
        hits = [rid for rid in item.requirements if rid in expected]
        if item.outcome == "fail" and hits:
            exchange = item.exchanges[-1] if item.exchanges else None
            shown = f"{exchange.method} {exchange.url} -> {exchange.status}" if exchange else "no HTTP exchange"
            return f"{hits[0]} by {item.id.split('::')[-1]}: {shown}"
    return ""
