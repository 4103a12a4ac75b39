"""Child process of a load suite: runs locust headless and prints its statistics as JSON.

Kept apart from the lab's process because locust monkey-patches the standard library (gevent).
Usage: ``python -m eqlab.runner.load_worker CONFIG.json`` with base_url, locustfile, users,
spawn_rate and duration; prints one JSON object on the last line of standard output. The access
token, when the plan has auth settings, is in the environment (``EQLAB_LOAD_ACCESS_TOKEN``, set
by ``eqlab.runner.load``), where the scenario reads it: never in the configuration file.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import importlib.util  # noqa: E402 - after monkey patching, as gevent requires
import inspect  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402
from locust import User  # noqa: E402
from locust.env import Environment  # noqa: E402

from eqlab.evidence.redaction import printable  # noqa: E402
from eqlab.runner.load_user import LabHttpUser  # noqa: E402

PERCENTILES = (0.5, 0.95, 0.99)


def user_classes(locustfile: Path, scenario: str | None) -> list[type[User]]:
    spec = importlib.util.spec_from_file_location(f"eqlab_load_{locustfile.stem}", locustfile)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {locustfile}")
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
        raise SystemExit(f"no locust user class{' ' + scenario if scenario else ''} in {locustfile}")
    outside = [c.__name__ for c in found if not issubclass(c, LabHttpUser)]
    if outside:
        raise SystemExit(
            f"{locustfile}: {', '.join(outside)} must derive from eqlab.runner.load_user.LabHttpUser, which keeps "
            "the lab's rules (no redirect followed, bounded responses)"
        )
    return found


def run(config: dict[str, Any]) -> dict[str, Any]:
    classes = user_classes(Path(config["locustfile"]), config.get("scenario"))
    env = Environment(user_classes=classes, host=config["base_url"].rstrip("/") + "/")
    runner = env.create_local_runner()
    runner.start(int(config["users"]), spawn_rate=float(config["spawn_rate"]))
    gevent.sleep(float(config["duration"]))
    runner.quit()
    total = env.stats.total
    by_name = {
        name: {
            "requests": entry.num_requests,
            "failures": entry.num_failures,
            "p95_ms": entry.get_response_time_percentile(0.95),
        }
        for (name, _method), entry in sorted(env.stats.entries.items())
    }
    errors = [
        {"name": e.name, "error": printable(str(e.error)[:300]), "occurrences": e.occurrences}
        for e in env.stats.errors.values()
    ]
    return {
        "requests": total.num_requests,
        "failures": total.num_failures,
        "duration_s": float(config["duration"]),
        "throughput_rps": total.num_requests / float(config["duration"]),
        "error_rate": total.num_failures / total.num_requests if total.num_requests else 1.0,
        **{
            f"p{int(q * 100)}_ms": total.get_response_time_percentile(q) if total.num_requests else None
            for q in PERCENTILES
        },
        "by_request": by_name,
        "errors": errors[:20],
    }


if __name__ == "__main__":
    print(json.dumps(run(json.loads(Path(sys.argv[1]).read_text(encoding="utf-8")))))
