"""What the single-process load run and the distributed one share: the scenario's user classes, what
the lab keeps of locust's statistics, and how it says that it could not measure.

Imported only in the load child processes (``eqlab.runner.load_worker`` patches the standard library
for gevent before anything imports locust).
"""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path
from typing import Any

from locust import User
from locust.stats import RequestStats

from eqlab.evidence.redaction import printable
from eqlab.runner.load_user import LabHttpUser

PERCENTILES = (0.5, 0.95, 0.99)


class LoadFailure(Exception):
    """The lab could not measure (a worker crashed or never came, a refused setting): one clear sentence."""


def user_classes(locustfile: Path, scenario: str | None) -> list[type[User]]:
    """The scenario's user classes, every one a ``LabHttpUser``."""
    spec = importlib.util.spec_from_file_location(f"eqlab_load_{locustfile.stem}", locustfile)
    if spec is None or spec.loader is None:
        raise LoadFailure(f"cannot load {locustfile}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    found = [
        c
        for _, c in inspect.getmembers(module, inspect.isclass)
        if issubclass(c, User) and c.__module__ == module.__name__
    ]
    if scenario:
        found = [c for c in found if c.__name__ == scenario]
    if not found:
        raise LoadFailure(f"no locust user class{' ' + scenario if scenario else ''} in {locustfile}")
    outside = [c.__name__ for c in found if not issubclass(c, LabHttpUser)]
    if outside:
        raise LoadFailure(
            f"{locustfile}: {', '.join(outside)} must derive from eqlab.runner.load_user.LabHttpUser, which keeps "
            "the lab's rules (no redirect followed, bounded responses)"
        )
    return found


def summarize(stats: RequestStats, duration_s: float) -> dict[str, Any]:
    """What the lab keeps of locust's statistics (in a distributed run, the master's merged ones)."""
    total = stats.total
    by_name = {
        name: {
            "requests": entry.num_requests,
            "failures": entry.num_failures,
            "p95_ms": entry.get_response_time_percentile(0.95),
        }
        for (name, _method), entry in sorted(stats.entries.items())
    }
    errors = [
        {"name": e.name, "error": printable(str(e.error)[:300]), "occurrences": e.occurrences}
        for e in stats.errors.values()
    ]
    return {
        "requests": total.num_requests,
        "failures": total.num_failures,
        "duration_s": duration_s,
        "throughput_rps": total.num_requests / duration_s,
        "error_rate": total.num_failures / total.num_requests if total.num_requests else 1.0,
        **{
            f"p{int(q * 100)}_ms": total.get_response_time_percentile(q) if total.num_requests else None
            for q in PERCENTILES
        },
        "by_request": by_name,
        "errors": errors[:20],
    }
