"""Child process of a load suite: runs locust headless and prints its statistics as JSON.

Kept apart from the lab's process because locust monkey-patches the standard library (gevent).

``python -m eqlab.runner.load_worker CONFIG.json`` runs the suite the configuration describes
(base_url, locustfile, users, spawn_rate, duration, scenario; with ``workers`` a locust master and
that many workers, see ``eqlab.runner.load_distributed``) and prints one JSON object on the last
line of standard output: the statistics, or ``{"error": ...}`` (exit status 3) when the lab could
not measure. The access token, when the plan has auth settings, is in the environment
(``EQLAB_LOAD_ACCESS_TOKEN``, set by ``eqlab.runner.load``), where the scenario reads it: never in
the configuration file.

``python -m eqlab.runner.load_worker --master HOST:PORT`` is one worker of a distributed run: the
lab starts these itself on this machine; an operator starts them on other machines.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402 - after monkey patching, as gevent requires
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402
import locust  # noqa: E402
from locust.env import Environment  # noqa: E402

from eqlab import paths  # noqa: E402
from eqlab.runner.load_distributed import run_master, run_worker  # noqa: E402
from eqlab.runner.load_locust import LoadFailure, summarize, user_classes  # noqa: E402

EXIT_NOT_MEASURED = 3
DEFAULT_LOCUSTFILE = "load/fhir/locustfile.py"  # under suites/: what a worker runs unless told otherwise


def run(config: dict[str, Any]) -> dict[str, Any]:
    classes = user_classes(Path(config["locustfile"]), config.get("scenario"))
    # locust's global events, as its own command uses: a locustfile's @events hooks then work here too
    env = Environment(user_classes=classes, host=config["base_url"].rstrip("/") + "/", events=locust.events)
    if int(config.get("workers") or 0) > 0:
        return run_master(env, config)
    runner = env.create_local_runner()
    runner.start(int(config["users"]), spawn_rate=float(config["spawn_rate"]))
    gevent.sleep(float(config["duration"]))
    runner.quit()
    return {**summarize(env.stats, float(config["duration"])), "workers": 0}


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m eqlab.runner.load_worker",
        description="Run a load suite (CONFIG.json, as the lab does), or be a worker of a distributed one (--master).",
    )
    parser.add_argument("config", nargs="?", type=Path, help="the suite's configuration, written by the lab")
    parser.add_argument("--master", metavar="HOST:PORT", help="be a worker of the lab's locust master at HOST:PORT")
    parser.add_argument(
        "--locustfile",
        type=Path,
        default=paths.suites_dir() / DEFAULT_LOCUSTFILE,
        help="the scenario the master runs (default: the FHIR load suite)",
    )
    parser.add_argument("--scenario", default=None, help="the user class the master runs, when the file has several")
    arguments = parser.parse_args(argv)
    if (arguments.config is None) == (arguments.master is None):
        parser.error("give CONFIG.json, or --master HOST:PORT to be a worker")
    return arguments


def main(argv: list[str]) -> int:
    arguments = _arguments(argv)
    try:
        if arguments.master is not None:
            run_worker(arguments.master, user_classes(arguments.locustfile, arguments.scenario))
            return 0
        result = run(json.loads(arguments.config.read_text(encoding="utf-8")))
    except LoadFailure as exc:
        print(json.dumps({"error": str(exc)}), flush=True)
        return EXIT_NOT_MEASURED
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
